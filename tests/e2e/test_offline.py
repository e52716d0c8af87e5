"""Working with no DHT: cached versions with no network, the latest within a bound, --offline,
--timeout.

The test runs its own testnet and stops it (and the publisher) after the first pull, so the
consumer's home knows the model but no node answers any more.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from hubless.config import CHECK_TIMEOUT
from hubless.lab.modelgen import make_model

from tests.conftest import read_line, start_testnet, stop_process

from . import cli

pytestmark = pytest.mark.e2e

# Runs the CLI with every way out to the network broken: any socket made from Python, and
# any libtorrent session, fails the command.
NO_NETWORK = """
import socket, sys
def refuse(*args, **kwargs):
    raise AssertionError("a socket was opened")
socket.socket = refuse
socket.create_connection = refuse
import hubless.net.session as session
def no_session(*args, **kwargs):
    raise AssertionError("a libtorrent session was started")
session.Session.__init__ = no_session
from hubless.cli.main import main
main(sys.argv[1:])
"""

# Runs the CLI and writes a JSON line on stderr for every wait on the DHT, with its bound in
# seconds: joining it (`Dht.wait_for_nodes`) and each lookup (`Dht.get`).
DHT_BOUNDS = """
import inspect, json, sys
from hubless.net.dht import Dht
def record(name):
    original = getattr(Dht, name)
    signature = inspect.signature(original)
    def recorded(*args, **kwargs):
        call = signature.bind(*args, **kwargs)
        call.apply_defaults()
        line = {"dht_wait": name, "timeout": call.arguments["timeout"]}
        sys.stderr.write(json.dumps(line) + "\\n")
        return original(*args, **kwargs)
    setattr(Dht, name, recorded)
record("wait_for_nodes")
record("get")
from hubless.cli.main import main
main(sys.argv[1:])
"""


def dht_bounds(stderr: str) -> list[float]:
    """The bound of every DHT wait a command run with `DHT_BOUNDS` made, in order."""
    lines = (json.loads(line) for line in stderr.splitlines() if line.startswith('{"dht_wait"'))
    return [float(line["timeout"]) for line in lines]


def hubless(
    home: Path, bootstrap: str, *args: str, wrapper: str | None = None
) -> tuple[int, Any, str, float]:
    """Run the CLI; return (exit code, JSON result or None, stderr, seconds)."""
    argv = ["--home", str(home), "--bootstrap", bootstrap, "--json", *args]
    program = (
        [sys.executable, "-c", wrapper, *argv]
        if wrapper
        else [
            sys.executable,
            "-m",
            "hubless.cli",
            *argv,
        ]
    )
    started = time.monotonic()
    done = subprocess.run(
        program, capture_output=True, text=True, timeout=120, check=False, env={**os.environ}
    )
    took = time.monotonic() - started
    lines = done.stdout.strip().splitlines()
    return done.returncode, json.loads(lines[-1]) if lines else None, done.stderr, took


def test_cached_versions_without_a_dht(tmp_path: Path) -> None:
    testnet = start_testnet(4)
    publisher_proc = None
    try:
        publisher, consumer = tmp_path / "publisher", tmp_path / "consumer"
        key = cli.run(publisher, testnet, "key", "new", "--no-passphrase")["public_key"]
        make_model(tmp_path / "model", seed=31, size=1 << 20, shards=2)
        publisher_proc = cli.spawn(
            publisher,
            testnet,
            "publish",
            tmp_path / "model",
            "--name",
            "m",
            "--version",
            "v1",
            "--seed",
        )
        json.loads(read_line(publisher_proc, 120))
        ref = f"{key}/m"
        first = cli.run(consumer, testnet, "pull", ref)
        assert first["stale"] is False
    finally:
        if publisher_proc is not None:
            stop_process(publisher_proc)
        stop_process(testnet.process)
    dead = testnet.bootstrap_arg  # nobody answers there any more

    # An exact version complete in the cache: no lookup at all, not even a socket.
    code, result, err, took = hubless(consumer, dead, "pull", f"{ref}@v1", wrapper=NO_NETWORK)
    assert code == 0, err
    assert result["path"] == first["path"] and result["fetched_files"] == 0
    print(f"pull @v1 with no DHT: {took:.2f}s")

    # The latest: the DHT is asked within the bound, then the newest known is used, stale.
    # (Without a version to fall back on, a lookup's bound is the 30 s DHT timeout.)
    code, result, err, took = hubless(consumer, dead, "pull", ref, wrapper=DHT_BOUNDS)
    assert code == 0, err
    assert result["stale"] is True and result["version"] == "v1"
    print(f"pull of the latest with no DHT: {took:.2f}s (stale)")
    bounds = dht_bounds(err)
    assert bounds and max(bounds) <= CHECK_TIMEOUT, err
    assert "no answer from the DHT; using the newest version known here" in err

    # --offline and HUBLESS_OFFLINE=1: answered without a single socket or session.
    code, result, err, _ = hubless(consumer, dead, "--offline", "pull", ref, wrapper=NO_NETWORK)
    assert code == 0, err
    assert result["stale"] is True and result["path"] == first["path"]
    os.environ["HUBLESS_OFFLINE"] = "1"
    try:
        code, result, err, _ = hubless(consumer, dead, "resolve", ref, wrapper=NO_NETWORK)
        assert code == 0, err
        assert result["stale"] is True
        code, _, err, _ = hubless(consumer, dead, "pull", f"{key}/other", wrapper=NO_NETWORK)
        assert code == 1 and "nothing is known here about 'other'" in err, err
        assert "socket" not in err and "session" not in err
    finally:
        del os.environ["HUBLESS_OFFLINE"]

    # --timeout bounds a lookup that cannot be answered from the cache: the DHT is waited
    # for, 3 s and no longer, and the error says so.
    code, _, err, took = hubless(
        consumer, dead, "--timeout", "3", "resolve", f"{key}/unknown", wrapper=DHT_BOUNDS
    )
    assert code == 1, err
    print(f"--timeout 3 resolve of an unknown model: {took:.2f}s")
    assert dht_bounds(err) == [3.0], err
    assert "after 3s" in json.loads(err.strip().splitlines()[-1])["error"], err
