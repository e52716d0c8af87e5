"""Run the `hubless` command as separate processes, one home folder per identity."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from tests.conftest import RunningTestnet


def command(home: Path, testnet: RunningTestnet, *args: str | Path) -> list[str]:
    return [
        sys.executable,
        "-m",
        "hubless.cli",
        "--home",
        str(home),
        "--bootstrap",
        testnet.bootstrap_arg,
        "--json",
        *map(str, args),
    ]


def run(
    home: Path,
    testnet: RunningTestnet,
    *args: str | Path,
    timeout: float = 120,
    env: Mapping[str, str] | None = None,
) -> Any:
    """Run one command to completion; return its JSON result (fails the test on error)."""
    done = subprocess.run(
        command(home, testnet, *args),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        env={**os.environ, **(env or {})},
    )
    assert done.returncode == 0, f"hubless {args} exited {done.returncode}:\n{done.stderr}"
    return json.loads(done.stdout.strip().splitlines()[-1])


def run_failing(
    home: Path,
    testnet: RunningTestnet,
    *args: str | Path,
    env: Mapping[str, str] | None = None,
    timeout: float = 120,
) -> tuple[int, str]:
    """Run one command to completion; return its exit code and stderr."""
    done = subprocess.run(
        command(home, testnet, *args),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        env={**os.environ, **(env or {})},
    )
    return done.returncode, done.stderr


def spawn(
    home: Path,
    testnet: RunningTestnet,
    *args: str | Path,
    stderr: int | None = None,
    env: Mapping[str, str] | None = None,
) -> subprocess.Popen[str]:
    """Start a long-running command (publish --seed, pull); stdout is a text pipe."""
    return subprocess.Popen(
        command(home, testnet, *args),
        stdout=subprocess.PIPE,
        stderr=stderr,
        text=True,
        env={**os.environ, **(env or {})},
    )


def run_patched(
    home: Path,
    testnet: RunningTestnet,
    patch: str,
    *args: str | Path,
    timeout: float = 120,
) -> subprocess.CompletedProcess[str]:
    """Run one command in an interpreter that first runs `patch` (fault injection: a kill -9
    or a full disk at one exact line); return the finished process."""
    code = textwrap.dedent(patch) + (
        "\nimport sys\nfrom hubless.cli.main import main\nmain(sys.argv[1:])\n"
    )
    return subprocess.run(
        [sys.executable, "-c", code, *command(home, testnet, *args)[3:]],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def seed_until(
    home: Path, testnet: RunningTestnet, marker: str, *args: str, timeout: float = 120
) -> list[str]:
    """Run `hubless seed *args` until a log line holds `marker` (or `timeout` s passed);
    stop it and return its log lines up to that one.

    The pipe is drained while it stops: a full stderr pipe would block its stop. A daemon
    finishes the DHT lookups under way (each at most 30 s); one that takes over 90 s on a
    loaded machine is killed, which is not what the callers test.
    """
    seeder = spawn(home, testnet, "seed", *args, stderr=subprocess.PIPE)
    deadline = threading.Timer(timeout, seeder.terminate)  # the daemon runs until stopped
    deadline.start()
    lines = []
    try:
        assert seeder.stderr is not None
        for line in seeder.stderr:
            lines.append(line)
            if marker in line:
                break
    finally:
        deadline.cancel()
        seeder.terminate()
        try:
            seeder.communicate(timeout=90)
        except subprocess.TimeoutExpired:
            seeder.kill()
            seeder.communicate()
    return lines
