"""A mirror is a daemon with follows (spec §8.7), across processes on a loopback testnet.

It fetches every new version of what it follows, keeps the records alive, and serves all of
it while the publisher is gone and every DHT node has forgotten everything. Stopped
(SIGTERM) or killed (SIGKILL) mid-download, it finishes without fetching again what was
verified; offline while versions came out it catches up on each, in order; a dead
publisher and dead DHT nodes do not stop it.
"""

from __future__ import annotations

import random
import re
import signal
import subprocess
import time
from pathlib import Path

import pytest
from hubless.core.errors import HublessError
from hubless.lab.modelgen import make_model

from tests.conftest import RunningTestnet, start_testnet, stop_process

from . import cli
from .test_daemon import (
    HAS_VERBATIM_PUT,
    Daemon,
    model,
    new_key,
    own_testnet,
    start_daemon,
)
from .test_main_job import verified_bytes_on_disk

pytestmark = pytest.mark.e2e
POLL = 2.0
RATE = 4_000_000  # bytes/s a publisher serves when a test must catch a download mid-way
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
        # Within a couple of polls (the deadline is a hang guard): a poll found it, then it
        # was fetched, verified and seeded.
        mirroring.wait_for(f"now holds {key}/{name}@{version}", timeout=2 * POLL + 20)
        *before, held = mirroring.seen
        assert any(f"new version {key}/{name}@{version} " in m for m in before), before
        assert "verified, seeded" in held, held

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


def test_a_mirror_stopped_then_killed_mid_download_finishes_without_fetching_again(
    testnet: RunningTestnet, tmp_path: Path, processes: list[subprocess.Popen[str]]
) -> None:
    publisher, mirror = tmp_path / "publisher", tmp_path / "mirror"
    key = new_key(publisher, testnet)
    # The publisher serves at 4 MB/s: the 32 MiB take about 8 s, time to stop mid-way twice.
    start_daemon(publisher, testnet, processes, "--upload-limit", str(RATE))
    folder = tmp_path / "big"
    make_model(folder, seed=51, size=32 << 20, shards=1)
    total = sum(p.stat().st_size for p in folder.iterdir())
    v1 = cli.run(publisher, testnet, "publish", folder, "--name", "big", "--version", "v1")
    ih = v1["content_infohash"]
    snapshots = mirror / "cache" / "models" / key / "big" / "snapshots"
    cli.run(mirror, testnet, "follow", key)
    # A poll interval longer than the test: each start must go on with the download at
    # once, not an interval after the poll that found the version.
    poll = ("--poll-interval", "600")

    # 1. SIGTERM a quarter of the way: the daemon stops now, not once the download is done.
    first = start_daemon(mirror, testnet, processes, *poll)
    _downloaded_past(first, total // 4)
    assert first.stop() == 0
    first.wait_for("stopped before holding", timeout=5)
    first.wait_for(f"daemon {first.proc.pid} stopped", timeout=5)
    assert not [m for m in first.seen if "now holds" in m], "it finished instead of stopping"
    assert not list(snapshots.glob("*")), "a half download looks finished"
    stopped_with, _ = verified_bytes_on_disk(mirror, ih)
    assert 0 < stopped_with < total

    # 2. SIGKILL two thirds of the way, after the restart went on from what was verified.
    second = start_daemon(mirror, testnet, processes, *poll)
    past = min(max(total * 2 // 3, stopped_with + RATE), total - RATE)
    done_at_kill = _downloaded_past(second, past)
    second.proc.send_signal(signal.SIGKILL)
    second.proc.wait(10)
    assert done_at_kill < total, "the download was complete before the kill"
    assert not [m for m in second.seen if "now holds" in m]
    assert not list(snapshots.glob("*")), "a half download looks finished"
    # Verified pieces on disk: what a restart must not fetch again (SIGKILL loses what
    # libtorrent had not yet written; see the killed pull of the main job).
    on_disk, piece = verified_bytes_on_disk(mirror, ih)
    assert on_disk > stopped_with, "the second run did not go on with the first"

    # 3. The last start finishes: the rest only, one snapshot, one delivery, verified.
    third = start_daemon(mirror, testnet, processes, *poll)
    third.wait_for(f"now holds {key}/big@v1", timeout=30)
    held_at = time.time()
    line = third.seen[-1]
    found = re.search(r"([\d,]+) bytes downloaded", line)
    assert found is not None, line
    downloaded = int(found[1].replace(",", ""))
    # No piece that was verified on disk is fetched again; a few in flight at the kill may be.
    assert downloaded <= total - on_disk + 4 * piece, (downloaded, on_disk, total)
    assert downloaded + on_disk >= total  # the restart fetched the rest
    # All runs together, as the publisher counts what it sent: the model, plus what each
    # interrupted run had in flight (received, not yet verified or written), under 2 s of
    # transfer each (fetching a verified part again would be more: see `on_disk` above).
    # libtorrent adds bytes sent to its all-time counter at its once-a-second tick: a sample
    # taken right after the delivery missed the last 1.5 MB once (a fresh-clone CI run).
    sent = _uploaded_since(publisher, testnet, ih, held_at + 3)
    assert total <= sent <= total + 2 * 2 * RATE, (sent, total, stopped_with, on_disk)

    assert [m for m in third.seen if "now holds" in m] == [line]
    assert sorted(p.name for p in snapshots.iterdir()) == ["1"]
    assert not list((mirror / "cache" / "partial").iterdir())
    assert cli.run(mirror, testnet, "verify", snapshots / "1", "--publisher", key)["ok"]
    (followed,) = cli.run(mirror, testnet, "following")["models"]
    assert (followed["name"], followed["held_seq"], followed["error"]) == ("big", 1, None)


def _downloaded_past(daemon: Daemon, done: int) -> int:
    """Wait for a download progress line of `daemon` past `done` bytes; its bytes done."""
    _, event = daemon.wait_until(
        lambda _, e: e.get("event") == "download" and e.get("done", 0) >= done,
        f"with {done:,} bytes downloaded",
        timeout=2 * POLL + 30,
    )
    return int(event["done"])


def _uploaded_since(home: Path, net: RunningTestnet, infohash: str, since: float) -> int:
    """Payload bytes `home`'s daemon sent of a torrent, as its status says once updated after
    `since` (Unix seconds; the daemon writes its counters every few seconds)."""
    deadline = time.monotonic() + 20
    while True:
        (row,) = [t for t in cli.run(home, net, "status")["torrents"] if t["infohash"] == infohash]
        if row["updated_at"] is not None and row["updated_at"] > since:
            return int(row["uploaded"])
        assert time.monotonic() < deadline, f"the daemon's counters are not updated: {row}"
        time.sleep(1)


def test_a_mirror_offline_for_three_versions_catches_up_in_order(
    testnet: RunningTestnet, tmp_path: Path, processes: list[subprocess.Popen[str]]
) -> None:
    publisher, mirror = tmp_path / "publisher", tmp_path / "mirror"
    key = new_key(publisher, testnet)
    start_daemon(publisher, testnet, processes)
    folder = model(tmp_path / "m", "v1")
    publish(publisher, testnet, folder, "m", "v1")
    cli.run(mirror, testnet, "follow", key)
    poll = ("--poll-interval", f"{POLL:g}")
    before = start_daemon(mirror, testnet, processes, *poll)
    before.wait_for(f"now holds {key}/m@v1", timeout=2 * POLL + 20)
    assert before.stop() == 0  # the mirror is offline

    for version in ("v2", "v3", "v4"):
        publish(publisher, testnet, model(folder, version), "m", version)
    after = start_daemon(mirror, testnet, processes, *poll)
    for seq, version in enumerate(("v2", "v3", "v4"), 2):  # in this order, one event each
        after.wait_for(f"now holds {key}/m@{version} (seq {seq})", timeout=2 * POLL + 30)
    held = [m for m in before.seen + after.seen if "now holds" in m]
    assert [m.split("now holds ")[1].split(" ")[0] for m in held] == [
        f"{key}/m@{v}" for v in ("v1", "v2", "v3", "v4")
    ]
    snapshots = mirror / "cache" / "models" / key / "m" / "snapshots"
    assert sorted(p.name for p in snapshots.iterdir()) == ["1", "2", "3", "4"]
    for seq in range(1, 5):
        checked = cli.run(mirror, testnet, "verify", snapshots / str(seq), "--publisher", key)
        assert checked["ok"] and checked["seq"] == seq, checked
        config = (snapshots / str(seq) / "config.json").read_text()
        assert f'"v{seq}"' in config
    (followed,) = cli.run(mirror, testnet, "following")["models"]
    assert (followed["held_seq"], followed["error"]) == (4, None)


def test_a_mirror_outlives_a_dead_publisher_and_dead_nodes(
    tmp_path: Path, processes: list[subprocess.Popen[str]]
) -> None:
    port, net = _testnet_on_fixed_ports()
    try:
        publisher, mirror = tmp_path / "publisher", tmp_path / "mirror"
        key = new_key(publisher, net)
        serving = start_daemon(publisher, net, processes)
        folder = model(tmp_path / "m", "v1")
        publish(publisher, net, folder, "m", "v1")
        cli.run(mirror, net, "follow", key)
        # --timeout: a lookup nobody answers fails after 3 s instead of the default 30 s
        poll = ("--poll-interval", f"{POLL:g}", "--timeout", "3")
        mirroring = start_daemon(mirror, net, processes, *poll)
        mirroring.wait_for(f"now holds {key}/m@v1", timeout=2 * POLL + 20)

        serving.proc.send_signal(signal.SIGKILL)  # the publisher dies ...
        serving.proc.wait(10)
        stop_process(net.process)  # ... and so does every DHT node
        # told, with a back-off: the index's own failure (a model's may come first)
        mirroring.wait_for("index lookup failed", timeout=2 * POLL + 20)
        assert mirroring.proc.poll() is None, "the daemon stopped"
        status = cli.run(mirror, net, "status")
        assert status["running"] and status["pid"] == mirroring.proc.pid
        (followed,) = cli.run(mirror, net, "following")["publishers"]
        assert followed["failures"] >= 1 and "no answer" in followed["error"], followed

        net = start_testnet(port=port)  # the nodes come back where they were, and the
        start_daemon(publisher, net, processes)  # publisher too, with a new version
        publish(publisher, net, model(folder, "v2"), "m", "v2")
        mirroring.wait_for(f"now holds {key}/m@v2", timeout=60)
        assert cli.run(mirror, net, "verify", Path(_held_path(mirroring.seen[-1])))["ok"]
    finally:
        stop_process(net.process)


def _held_path(line: str) -> str:
    """The snapshot path of a "now holds REF (seq N) at PATH: ..." line."""
    return line.split(") at ", 1)[1].rsplit(": ", 1)[0]


def _testnet_on_fixed_ports() -> tuple[int, RunningTestnet]:
    """A testnet whose nodes listen on ports P..P+7, to be started again on the same ones."""
    for _ in range(10):
        port = random.randrange(20000, 60000)
        try:
            return port, start_testnet(port=port)
        except HublessError:  # a port was taken: the testnet exits at once
            continue
    raise AssertionError("no free run of ports for a testnet")
