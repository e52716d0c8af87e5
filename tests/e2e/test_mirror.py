"""A mirror is a daemon with follows (spec §8.7), across processes on a loopback testnet.

It fetches every new version of what it follows, keeps the records alive, and serves all of
it while the publisher is gone and every DHT node has forgotten everything.
"""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.conftest import RunningTestnet, start_testnet, stop_process

from . import cli
from .test_daemon import HAS_VERBATIM_PUT, model, new_key, own_testnet, start_daemon

pytestmark = pytest.mark.e2e
POLL = 2.0
__all__ = ["own_testnet"]  # the fixture, used by name below


def publish(home: Path, net: RunningTestnet, folder: Path, name: str, version: str) -> None:
    cli.run(home, net, "publish", folder, "--name", name, "--version", version)


@pytest.mark.skipif(not HAS_VERBATIM_PUT, reason="needs the verbatim re-put")
def test_a_mirror_follows_a_key_and_serves_it_when_the_publisher_is_gone(
    own_testnet: list[RunningTestnet], tmp_path: Path, processes: list[subprocess.Popen[str]]
) -> None:
    net = own_testnet[0]
    publisher, mirror, fresh = tmp_path / "publisher", tmp_path / "mirror", tmp_path / "fresh"
    key = new_key(publisher, net)
    serving = start_daemon(publisher, net, processes)
    publish(publisher, net, model(tmp_path / "a", "v1"), "a", "v1")
    cli.run(mirror, net, "follow", key)
    poll = ("--poll-interval", f"{POLL:g}", "--republish-interval", "3")
    mirroring = start_daemon(mirror, net, processes, *poll)
    mirroring.wait_for(f"now holds {key}/a@v1", timeout=2 * POLL + 15)

    for name, version in (("b", "v1"), ("a", "v2")):
        publish(publisher, net, model(tmp_path / name, version), name, version)
        started = time.monotonic()
        at = mirroring.wait_for(f"now holds {key}/{name}@{version}", timeout=2 * POLL + 20)
        assert at - started <= 2 * POLL + 10, f"{name}@{version} took {at - started:.1f}s"

    serving.proc.send_signal(signal.SIGTERM)
    assert serving.proc.wait(90) == 0  # the publisher is gone
    mirroring.proc.send_signal(signal.SIGTERM)
    assert mirroring.proc.wait(90) == 0
    stop_process(net.process)  # every node forgets every item
    net = start_testnet()
    own_testnet.append(net)
    mirroring = start_daemon(mirror, net, processes, *poll)
    mirroring.wait_for("put again", timeout=15)

    deadline = time.monotonic() + 30
    while True:  # the index and both records are put back within a few rounds
        try:
            listed = cli.run(fresh, net, "models", key)
            names = sorted(m["name"] for m in listed["models"] if m.get("version"))
            if names == ["a", "b"]:
                break
        except AssertionError:
            pass
        assert time.monotonic() < deadline, "the mirror did not bring the catalogue back"
        time.sleep(1)
    for name, version in (("a", "v2"), ("b", "v1")):
        pulled = cli.run(fresh, net, "pull", f"{key}/{name}")
        assert (pulled["version"], pulled["publisher"]) == (version, key)
        assert pulled["downloaded_bytes"] > 0  # from the mirror: nobody else serves it
        assert cli.run(fresh, net, "verify", pulled["path"], "--publisher", key)["ok"]


def test_the_exec_hook_runs_once_per_new_version_and_may_fail(
    testnet: RunningTestnet, tmp_path: Path, processes: list[subprocess.Popen[str]]
) -> None:
    publisher, consumer = tmp_path / "publisher", tmp_path / "consumer"
    key = new_key(publisher, testnet)
    start_daemon(publisher, testnet, processes)
    publish(publisher, testnet, model(tmp_path / "m", "v1"), "m", "v1")
    log = tmp_path / "hook.log"
    hook = f'echo "$HUBLESS_REFERENCE $HUBLESS_VERSION $HUBLESS_SEQ $HUBLESS_PATH" >> {log}; exit 3'
    cli.run(consumer, testnet, "follow", f"{key}/m")
    daemon = start_daemon(
        consumer, testnet, processes, "--poll-interval", f"{POLL:g}", "--exec", hook
    )
    daemon.wait_for(f"hook for {key}/m@v1 exited 3", timeout=2 * POLL + 20)
    publish(publisher, testnet, model(tmp_path / "m", "v2"), "m", "v2")
    daemon.wait_for(f"hook for {key}/m@v2 exited 3", timeout=2 * POLL + 20)
    time.sleep(2 * POLL)  # more rounds: no hook runs again for a version already held
    lines = log.read_text().splitlines()
    assert [line.split()[:3] for line in lines] == [
        [f"{key}/m@v1", "v1", "1"],
        [f"{key}/m@v2", "v2", "2"],
    ]
    for line in lines:
        snapshot = Path(line.split()[3])
        assert (snapshot / ".hubless" / "manifest").is_file()
    assert daemon.proc.poll() is None  # a failing hook does not stop the daemon
