"""The mirror round a daemon runs (spec §8.7): every new version fetched in order, the hook
and the program told once each, older snapshots beyond `keep` removed, a full disk reported
and retried."""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import signal
import time
from pathlib import Path

import pytest
from hubless.core.refs import Reference
from hubless.core.webseeds import BEP19, WebSeed
from hubless.services.client import Client
from hubless.services.events import Event
from hubless.services.mirror import Delivered, HookRunner, MirrorOptions, mirror_round
from hubless.services.poll import PollPolicy
from hubless.store import cache as cache_module

from .conftest import PUBLISHER
from .fakenet import Swarm
from .test_follow import KEY, A, B, Publishing, files

POLICY = PollPolicy(interval=100.0, max_backoff=1000.0, jitter=0.1)


def test_a_round_fetches_each_new_version_in_order_and_keeps_the_newest_n(
    publisher: Client, consumer: Client, tmp_path: Path
) -> None:
    pub = Publishing(publisher, tmp_path / "work")
    pub.release(A, "v1")
    consumer.follow(KEY)
    told: list[Delivered] = []
    options = MirrorOptions(policy=POLICY, keep=2, on_new_version=told.append)
    now = time.time()
    assert mirror_round(consumer.ctx, options, now) == 1
    for version in ("v2", "v3"):
        pub.release(A, version)
    now += 10 * POLICY.max_backoff
    assert mirror_round(consumer.ctx, options, now) == 2
    assert [(d.version.reference.version, d.version.seq) for d in told] == [
        ("v1", 1),
        ("v2", 2),
        ("v3", 3),
    ]
    snapshots = consumer.cache.model_dir(PUBLISHER.public, A) / "snapshots"
    assert sorted(p.name for p in snapshots.iterdir()) == ["2", "3"]
    v1_only = files(f"{A} v1")["model.safetensors"]
    blobs = {p.read_bytes() for p in consumer.cache.blobs.iterdir()}
    assert v1_only not in blobs  # freed: no kept snapshot uses it
    seeded = {(e.kind, e.seq) for e in consumer.state.seeds() if e.name == A}
    assert ("content", 1) not in seeded and {("content", 2), ("content", 3)} <= seeded
    assert ("manifest", 1) in seeded  # the history stays walkable
    now += 10 * POLICY.max_backoff
    assert mirror_round(consumer.ctx, options, now) == 0  # nothing is told twice
    assert len(told) == 3
    assert consumer.resolve(Reference(PUBLISHER.public, A)).latest.manifest.seq == 3


def test_a_mirrored_update_starts_from_the_cached_file_and_never_writes_a_blob(
    publisher: Client, consumer: Client, swarm: Swarm, tmp_path: Path
) -> None:
    """A follower downloads through pull (spec §8.4, §8.7): the changed file starts from the
    held revision's copy, the download writes that copy and not the blob it came from, and
    the manifest's web seeds reach the download."""
    pub = Publishing(publisher, tmp_path / "work")
    pub.release(A, "v1")
    consumer.follow(KEY)
    options = MirrorOptions(policy=POLICY)
    now = time.time()
    assert mirror_round(consumer.ctx, options, now) == 1
    old = files(f"{A} v1")["model.safetensors"]
    blob = consumer.cache.blob(hashlib.sha256(old).digest())
    seed = WebSeed(BEP19, "https://mirror.example/models/")
    pub.release(A, "v2", web_seeds=(seed,))
    events: list[Event] = []
    with consumer.ctx.listening(events.append):
        assert mirror_round(consumer.ctx, options, now + 10 * POLICY.max_backoff) == 1
    assert any("starting 1 files from cached versions" in e.message for e in events), events
    assert blob.read_bytes() == old  # the fake download overwrote a copy, not the blob
    new = consumer.cache.snapshot_dir(PUBLISHER.public, A, 2) / "model.safetensors"
    assert new.read_bytes() == files(f"{A} v2")["model.safetensors"]
    v2 = consumer.resolve(Reference(PUBLISHER.public, A)).target.manifest
    assert swarm.web_seeds[v2.content_infohash] == (seed,)


def test_a_full_disk_fails_the_fetch_clearly_leaves_nothing_and_the_next_poll_retries(
    publisher: Client, consumer: Client, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pub = Publishing(publisher, tmp_path / "work")
    pub.release(A, "v1")
    consumer.follow(KEY)
    events: list[Event] = []
    consumer.ctx.on_event = events.append
    told: list[Delivered] = []
    options = MirrorOptions(policy=POLICY, on_new_version=told.append)
    usage = shutil.disk_usage
    monkeypatch.setattr(  # the cache's disk has 1,000 bytes free: v1 needs about 51,000
        cache_module.shutil, "disk_usage", lambda path: usage(path)._replace(free=1000)
    )
    now = time.time()
    assert mirror_round(consumer.ctx, options, now) == 0
    (failed,) = [e.message for e in events if "could not fetch" in e.message]
    assert f"{KEY}/{A}@v1" in failed and "only 1,000 are free" in failed, failed
    assert told == []
    snapshots = consumer.cache.model_dir(PUBLISHER.public, A) / "snapshots"
    assert not snapshots.exists() or not list(snapshots.iterdir())
    assert not list(consumer.cache.blobs.iterdir())
    assert not list(consumer.cache.partial_root.iterdir())
    (model,) = consumer.following().models
    assert model.poll is not None and model.poll.delivered_seq is None
    assert model.poll.last_error is not None and "only 1,000 are free" in model.poll.last_error
    retry_at = model.poll.next_poll
    assert now < retry_at <= now + POLICY.interval * (1 + POLICY.jitter)  # no back-off

    monkeypatch.undo()  # room was made
    assert mirror_round(consumer.ctx, options, retry_at - 1) == 0  # not before its time
    assert mirror_round(consumer.ctx, options, retry_at) == 1
    assert [(d.version.reference.version, d.path.name) for d in told] == [("v1", "1")]
    assert sorted(p.name for p in snapshots.iterdir()) == ["1"]
    (model,) = consumer.following().models
    assert model.poll is not None and model.poll.delivered_seq == 1
    assert model.poll.last_error is None


def test_a_stop_mid_download_gives_it_up_and_the_next_start_goes_on_at_once(
    publisher: Client, consumer: Client, tmp_path: Path
) -> None:
    pub = Publishing(publisher, tmp_path / "work")
    pub.release(A, "v1")
    pub.release(B, "v1")
    consumer.follow(KEY)
    seen: list[str] = []

    def stop_mid_download(event: Event) -> None:
        seen.append(event.message)
        if event.stage == "download":  # the daemon is asked to stop while A downloads
            consumer.ctx.cancel.set()

    consumer.ctx.on_event = stop_mid_download
    told: list[Delivered] = []
    options = MirrorOptions(policy=POLICY, on_new_version=told.append)
    now = time.time()
    assert mirror_round(consumer.ctx, options, now) == 0
    assert any(f"stopped before holding {KEY}/{A}@v1" in m for m in seen), seen
    assert not any("could not fetch" in m for m in seen)  # a stop is not a failure
    assert told == [] and not list(consumer.cache.blobs.iterdir())
    for model in consumer.following().models:  # both due at once for the next start
        assert model.poll is not None and model.poll.next_poll <= now, model
        assert model.poll.last_error is None and model.poll.delivered_seq is None

    consumer.ctx.cancel.clear()  # the next start
    consumer.ctx.on_event = lambda event: None
    assert mirror_round(consumer.ctx, options, now + 1) == 2
    assert sorted(d.version.reference.name for d in told) == [A, B]


class Killed(BaseException):
    """The process dies here (what SIGKILL does, as far as the store can tell)."""


def test_a_process_killed_mid_download_leaves_the_model_due_at_once(
    publisher: Client, consumer: Client, tmp_path: Path
) -> None:
    pub = Publishing(publisher, tmp_path / "work")
    pub.release(A, "v1")
    consumer.follow(f"{KEY}/{A}")

    def die_mid_download(event: Event) -> None:
        if event.stage == "download":
            raise Killed

    consumer.ctx.on_event = die_mid_download
    options = MirrorOptions(policy=POLICY)
    now = time.time()
    with pytest.raises(Killed):
        mirror_round(consumer.ctx, options, now)
    (model,) = consumer.following().models
    # Not an interval later: the next start goes on with the download at once.
    assert model.poll is not None and model.poll.next_poll <= now
    assert model.poll.delivered_seq is None
    consumer.ctx.on_event = lambda event: None
    assert mirror_round(consumer.ctx, options, now + 1) == 1
    (model,) = consumer.following().models
    assert model.poll is not None and model.poll.delivered_seq == 1
    assert now + 1 < model.poll.next_poll  # held: back to the poll interval


def running(pid: int) -> bool:
    """Whether our child process `pid` has not ended."""
    try:
        return os.waitpid(pid, os.WNOHANG) == (0, 0)
    except ChildProcessError:  # ended, and reaped already
        return False


def test_a_slow_hook_holds_up_neither_the_round_nor_a_stop(
    publisher: Client, consumer: Client, tmp_path: Path
) -> None:
    """A daemon's hooks run on their own thread, in order: a round returns while a hook
    still runs, a stop does not wait for it, and a hook not yet started is named."""
    pub = Publishing(publisher, tmp_path / "work")
    pub.release(A, "v1")
    pub.release(B, "v1")
    consumer.follow(KEY)
    started = tmp_path / "started"
    events: list[Event] = []
    consumer.ctx.on_event = events.append
    hooks = HookRunner(consumer.ctx, f'echo "$HUBLESS_NAME $$" >> {started}; exec sleep 30')
    options = MirrorOptions(policy=POLICY, exec_cmd="unused: the runner's runs", hooks=hooks)
    # The round returns while the first hook (`sleep 30`) runs: it is found running below.
    assert mirror_round(consumer.ctx, options, time.time()) == 2
    (model,) = [m for m in consumer.following().models if m.name == A]
    assert model.poll is not None and model.poll.delivered_seq == 1  # held before the hook
    deadline = time.monotonic() + 10
    while not (started.exists() and started.read_text().endswith("\n")):
        assert time.monotonic() < deadline, "the first hook did not start"
        time.sleep(0.05)
    name, pid = started.read_text().splitlines()[0].split()
    assert name == A  # one at a time, in order: B waits
    left = f"hook for {KEY}/{A}@v1 left running (pid {pid})"
    try:
        hooks.close()
        # The hook thread lets go of the hook at its next look (every 0.2 s), maybe after
        # close returned; the hook (its shell became `sleep 30`) runs on: nobody waited.
        deadline = time.monotonic() + 10
        while not any(left in e.message for e in events):
            assert time.monotonic() < deadline, [e.message for e in events]
            time.sleep(0.05)
        assert running(int(pid)), "the hook ended with the stop"
    finally:
        with contextlib.suppress(ProcessLookupError, ChildProcessError):
            os.kill(int(pid), signal.SIGKILL)
            os.waitpid(int(pid), 0)
    messages = [e.message for e in events]
    assert any(m.startswith("hooks not run") and f"{KEY}/{B}@v1" in m for m in messages)
    assert [line.split()[0] for line in started.read_text().splitlines()] == [A]


def test_a_hook_ended_by_a_signal_says_which(
    publisher: Client, consumer: Client, tmp_path: Path
) -> None:
    pub = Publishing(publisher, tmp_path / "work")
    pub.release(A, "v1")
    consumer.follow(KEY)
    events: list[Event] = []
    consumer.ctx.on_event = events.append
    options = MirrorOptions(policy=POLICY, exec_cmd="kill -TERM $$")
    assert mirror_round(consumer.ctx, options, time.time()) == 1
    assert any(f"hook for {KEY}/{A}@v1 was ended by SIGTERM" in e.message for e in events)
