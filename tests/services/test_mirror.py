"""The mirror round a daemon runs (spec §8.7): every new version fetched in order, the hook
and the program told once each, older snapshots beyond `keep` removed."""

from __future__ import annotations

import hashlib
import time
from pathlib import Path

from hubless.core.refs import Reference
from hubless.core.webseeds import BEP19, WebSeed
from hubless.services.client import Client
from hubless.services.events import Event
from hubless.services.mirror import Delivered, MirrorOptions, mirror_round
from hubless.services.poll import PollPolicy

from .conftest import PUBLISHER
from .fakenet import Swarm
from .test_follow import KEY, A, Publishing, files

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
