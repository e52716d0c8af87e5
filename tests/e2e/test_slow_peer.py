"""`--timeout` bounds waiting, not a transfer: a slow peer that keeps sending is waited for,
and a peer that stops sending fails the pull with a message that says so (spec §8.4)."""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path

import pytest
from hubless.lab.modelgen import make_model

from tests.conftest import RunningTestnet

from . import cli
from .test_daemon import new_key, start_daemon

pytestmark = pytest.mark.e2e
RATE = 1_000_000  # bytes/s the publisher serves
TIMEOUT = 4  # seconds: far below the time the whole model takes at RATE


def _partial_bytes(home: Path) -> int:
    return sum(p.stat().st_blocks * 512 for p in home.rglob("*") if "partial" in p.parts)


def test_a_slow_peer_is_waited_for_and_a_silent_one_is_named(
    testnet: RunningTestnet, tmp_path: Path, processes: list[subprocess.Popen[str]]
) -> None:
    publisher = tmp_path / "publisher"
    key = new_key(publisher, testnet)
    daemon = start_daemon(publisher, testnet, processes, "--upload-limit", str(RATE))
    folder = tmp_path / "slow"
    make_model(folder, seed=61, size=10 << 20, shards=1)  # ~10 s at RATE
    cli.run(publisher, testnet, "publish", folder, "--name", "slow", "--version", "v1")
    daemon.wait_for("serving slow seq 1 (content", timeout=30)

    began = time.monotonic()
    pulled = cli.run(
        tmp_path / "patient", testnet, "--timeout", str(TIMEOUT), "pull", f"{key}/slow"
    )
    assert pulled["version"] == "v1"
    assert time.monotonic() - began > 2 * TIMEOUT  # it took longer than --timeout: waited

    waiting = tmp_path / "waiting"
    proc = cli.spawn(
        waiting, testnet, "--timeout", str(TIMEOUT), "pull", f"{key}/slow", stderr=subprocess.PIPE
    )
    processes.append(proc)
    deadline = time.monotonic() + 60
    while _partial_bytes(waiting) < RATE and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _partial_bytes(waiting) >= RATE, "the download never began"
    daemon.proc.send_signal(signal.SIGSTOP)  # the only peer stops sending, stays connected
    try:
        _, err = proc.communicate(timeout=60)
    finally:
        daemon.proc.send_signal(signal.SIGCONT)
    assert proc.returncode == 1, err
    assert f"no data arrived for {TIMEOUT}s from 1 peer(s)" in err, err
    assert "raise --timeout" in err and "--bootstrap" not in err, err
