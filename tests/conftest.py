"""Shared test fixtures: a private loopback DHT in its own process, and subprocess helpers.

`testnet` (session scope) runs `python -m hubless.net.testnet --json` and yields its
bootstrap endpoints and a local `NetProfile`. `spawn_python` runs a code snippet in a fresh
interpreter, for tests where publisher and consumer must be separate processes. Every
in-process `Session` a test creates is checked to stay on loopback with LSD/UPnP/NAT-PMP off.
"""

from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import pytest

TESTNET_NODES = 8
_STARTUP_TIMEOUT = 30.0


@dataclass(frozen=True)
class RunningTestnet:
    """A testnet process: where to bootstrap, and a profile for clients of it."""

    bootstrap: list[str]
    nodes: int
    process: subprocess.Popen[str]

    def profile(self) -> Any:  # NetProfile; imported lazily so collecting tests stays light
        from hubless.config import parse_endpoints
        from hubless.net.profile import NetProfile

        return NetProfile.local(parse_endpoints(",".join(self.bootstrap), "testnet"))

    @property
    def bootstrap_arg(self) -> str:
        """The endpoints as one `host:port,...` string (for --bootstrap / HUBLESS_BOOTSTRAP)."""
        return ",".join(self.bootstrap)


def read_line(proc: subprocess.Popen[str], timeout: float) -> str:
    """The next line `proc` prints on stdout; fails the test if none comes in `timeout` s."""
    assert proc.stdout is not None
    deadline = time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            raise AssertionError(f"no output from {proc.args!r} within {timeout:g}s")
        ready, _, _ = select.select([proc.stdout], [], [], left)
        if ready:
            line = proc.stdout.readline()
            if not line:
                raise AssertionError(f"{proc.args!r} exited ({proc.wait()}) without output")
            return line


def start_testnet(nodes: int = TESTNET_NODES, port: int = 0) -> RunningTestnet:
    """Start a testnet process on loopback and wait until it is serving; node i listens on
    `port` + i (0: any free ports)."""
    from hubless.net.testnet import spawn_testnet

    proc, bootstrap = spawn_testnet(nodes, "127.0.0.1", _STARTUP_TIMEOUT, port)
    return RunningTestnet(bootstrap, nodes, proc)


def stop_process(proc: subprocess.Popen[str], timeout: float = 10.0) -> None:
    """SIGTERM, then SIGKILL if it does not exit in `timeout` seconds."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    if proc.stdout is not None:
        proc.stdout.close()


@pytest.fixture(scope="session")
def testnet() -> Iterator[RunningTestnet]:
    net = start_testnet()
    try:
        yield net
    finally:
        stop_process(net.process)


def spawn_python(
    code: str, *args: str, env: Mapping[str, str] | None = None
) -> subprocess.Popen[str]:
    """Run a dedented Python snippet in a new interpreter; `sys.argv[1:]` are `args`.

    stdout is a text pipe (read it with `read_line`); stderr goes to the test's stderr.
    """
    full_env = {**os.environ, **(env or {})}
    return subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(code), *args],
        stdout=subprocess.PIPE,
        text=True,
        env=full_env,
    )


def run_python(code: str, *args: str, timeout: float = 60.0) -> str:
    """Run a snippet to completion and return its stdout; fails the test if it fails."""
    proc = spawn_python(code, *args)
    try:
        out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        raise AssertionError(f"snippet did not finish in {timeout:g}s") from None
    assert proc.returncode == 0, f"snippet exited {proc.returncode}:\n{out}"
    return out


@pytest.fixture(name="spawn_python")
def spawn_python_fixture() -> Iterator[Any]:
    """`spawn_python` that also stops, at teardown, every process the test left running."""
    started: list[subprocess.Popen[str]] = []

    def spawn(code: str, *args: str, env: Mapping[str, str] | None = None) -> Any:
        proc = spawn_python(code, *args, env=env)
        started.append(proc)
        return proc

    yield spawn
    for proc in started:
        stop_process(proc)


@pytest.fixture(autouse=True)
def _sessions_stay_on_loopback(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fail any test whose in-process `Session` could reach beyond loopback."""
    try:
        from hubless.net import session as net_session
        from hubless.net.profile import loopback_violations
    except ImportError:  # the network layer is not installed: nothing to guard
        return

    original = net_session.Session.__init__

    def checked(self: Any, *args: Any, **kwargs: Any) -> None:
        original(self, *args, **kwargs)
        problems = loopback_violations(self.get_settings())
        if problems:
            self.close()
            raise AssertionError("session leaves loopback: " + "; ".join(problems))

    monkeypatch.setattr(net_session.Session, "__init__", checked)
