"""The mirror round a daemon runs (spec §8.7): every new version fetched in order, the hook
and the program told once each, older snapshots beyond `keep` removed."""

from __future__ import annotations

import time
from pathlib import Path

from hubless.core.refs import Reference
from hubless.services.client import Client
from hubless.services.mirror import Delivered, MirrorOptions, mirror_round
from hubless.services.poll import PollPolicy

from .conftest import PUBLISHER
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
