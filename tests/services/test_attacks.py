"""Conformance suite for the services: one attack per test, over an in-memory swarm.

Every attack asserts the precise error class and that the client's local state is what it
was: the known (highest) revision, the snapshots, the blobs (each one verified) and the
content torrents kept. Happy paths come first so that a broken fake fails loudly there.
"""

from __future__ import annotations

import hashlib
import math
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from hubless.core import bencode
from hubless.core.bep44 import sign_item, verify_item
from hubless.core.errors import (
    EquivocationError,
    FutureTimestampError,
    HistoryRewriteError,
    HostilePathError,
    IntegrityError,
    MalformedError,
    NetTimeoutError,
    NotFoundError,
    OversizedError,
    RollbackError,
    UsageError,
    WrongNameError,
)
from hubless.core.history import mark_yanked, next_history
from hubless.core.manifest import FileEntry, Manifest, VerifiedManifest, verify_manifest
from hubless.core.record import Record, encode_record
from hubless.net.torrents import create_content_torrent
from hubless.services.client import Client
from hubless.services.verify import verify_folder
from hubless.store.state import KnownModel

from .conftest import (
    MALLORY,
    NAME,
    PUBLISHER,
    REF,
    V1_FILES,
    known,
    next_bep44_seq,
    publish_forged,
    record_item,
    rewrite,
    serve_manifest,
    write_model,
)
from .fakenet import Swarm, info_of

MiB = 1024 * 1024


# --- what "local state unchanged" means --------------------------------------------------------


@dataclass(frozen=True)
class Local:
    """What a client holds: trust state, what it serves, and what its cache counts as done."""

    known: KnownModel | None
    seeds: frozenset[bytes]
    snapshots: frozenset[str]
    blobs: frozenset[str]
    torrents: frozenset[str]


def look(client: Client) -> Local:
    root = client.cache.root
    torrents = root / "torrents"
    return Local(
        known(client),
        frozenset(entry.infohash for entry in client.state.seeds()),
        frozenset(str(p.relative_to(root)) for p in root.glob("models/*/*/snapshots/*")),
        frozenset(p.name for p in client.cache.blobs.iterdir()),
        frozenset(p.name for p in torrents.iterdir()) if torrents.is_dir() else frozenset(),
    )


def assert_cache_holds_only_verified_blobs(client: Client) -> None:
    for blob in client.cache.blobs.iterdir():
        assert not blob.name.startswith("."), f"temporary file left in blobs: {blob.name}"
        assert hashlib.sha256(blob.read_bytes()).hexdigest() == blob.name, blob.name


def assert_untouched(client: Client, before: Local) -> None:
    assert look(client) == before
    assert_cache_holds_only_verified_blobs(client)


# --- scenario helpers ---------------------------------------------------------------------------


@pytest.fixture
def v1_folder(tmp_path: Path) -> Path:
    return write_model(tmp_path / "work" / NAME, V1_FILES)


@pytest.fixture
def v1(publisher: Client, v1_folder: Path) -> Path:
    """The publisher has published v1 (seq 1) of NAME; returns the folder."""
    publisher.publish(v1_folder, NAME, "v1", key=PUBLISHER)
    return v1_folder


@pytest.fixture
def v2(publisher: Client, v1: Path) -> Path:
    """v1 then v2 (seq 2), where v2 changed model.safetensors."""
    (v1 / "model.safetensors").write_bytes(b"\x01" * 40_000)
    publisher.publish(v1, NAME, "v2", key=PUBLISHER)
    return v1


def verified_latest(client: Client) -> tuple[VerifiedManifest, bytes]:
    """The newest manifest `client` holds, verified, with its manifest-torrent infohash."""
    k = known(client)
    assert k is not None
    return verify_manifest(k.manifest, PUBLISHER.public, NAME, now=int(time.time())), (
        k.manifest_infohash
    )


def next_revision(client: Client, **changes: object) -> Manifest:
    """A well-formed revision after the newest one `client` holds, with `changes` applied."""
    prev, prev_ih = verified_latest(client)
    m = rewrite(
        prev.manifest,
        seq=prev.manifest.seq + 1,
        version=f"v{prev.manifest.seq + 1}",
        created=int(time.time()),
        history=next_history(prev, prev_ih),
        prev=prev.hash,
    )
    return rewrite(m, **changes) if changes else m


def bad_content_manifest(publisher: Client, content_infohash: bytes) -> Manifest:
    """The next revision, listing v1's files but naming another content torrent."""
    return next_revision(publisher, content_infohash=content_infohash)


# --- happy paths --------------------------------------------------------------------------------


def test_publish_resolve_pull_round_trip(consumer: Client, v1: Path, tmp_path: Path) -> None:
    resolution = consumer.resolve(REF)
    assert (resolution.target.manifest.seq, resolution.target.manifest.version) == (1, "v1")
    assert not resolution.stale

    result = consumer.pull(REF, to=tmp_path / "out")

    for rel, data in V1_FILES.items():
        assert (result.path / rel).read_bytes() == data
    assert result.fetched_files == len(V1_FILES)
    assert result.downloaded_bytes == sum(len(d) for d in V1_FILES.values())
    assert verify_folder(result.path, PUBLISHER.public).ok
    snapshot = consumer.cache.snapshot_dir(PUBLISHER.public, NAME, 1)
    assert sorted(p.name for p in snapshot.iterdir()) == [
        ".hubless",
        "config.json",
        "model.safetensors",
        "tokenizer",
    ]
    assert known(consumer).seq == 1  # type: ignore[union-attr]
    assert_cache_holds_only_verified_blobs(consumer)


def test_update_fetches_only_the_changed_file(
    swarm: Swarm, publisher: Client, consumer: Client, v1: Path
) -> None:
    consumer.pull(REF)
    changed = b"\x02" * 30_000
    (v1 / "model.safetensors").write_bytes(changed)
    publisher.publish(v1, NAME, "v2", key=PUBLISHER)

    result = consumer.pull(REF)

    assert result.resolution.target.manifest.seq == 2
    assert (result.fetched_files, result.reused_files) == (1, len(V1_FILES) - 1)
    assert result.downloaded_bytes == len(changed) == result.fetched_size
    assert (result.path / "model.safetensors").read_bytes() == changed
    assert (result.path / "config.json").read_bytes() == V1_FILES["config.json"]


def test_pull_of_an_older_version_by_label(consumer: Client, v2: Path) -> None:
    result = consumer.pull(REF.at("v1"))
    assert result.resolution.target.manifest.seq == 1
    assert result.resolution.latest.manifest.seq == 2
    assert (result.path / "model.safetensors").read_bytes() == V1_FILES["model.safetensors"]
    assert known(consumer).seq == 2  # type: ignore[union-attr]


def test_publishing_the_same_folder_twice_makes_no_new_version(
    swarm: Swarm, publisher: Client, v1: Path
) -> None:
    items = swarm.stored(PUBLISHER.public, NAME.encode())
    again = publisher.publish(v1, NAME, "v1", key=PUBLISHER)
    assert again.unchanged
    assert (again.seq, again.version) == (1, "v1")
    assert swarm.stored(PUBLISHER.public, NAME.encode()) == items


def test_an_unchanged_folder_under_a_new_label_is_a_new_revision(
    swarm: Swarm, publisher: Client, consumer: Client, v1: Path
) -> None:
    """A label the author asked for is never dropped silently (spec §8.3 step 4)."""
    first = consumer.resolve(REF).latest.manifest
    again = publisher.publish(v1, NAME, "stable", key=PUBLISHER)
    assert not again.unchanged
    assert (again.seq, again.version) == (2, "stable")
    latest = consumer.resolve(REF).latest.manifest
    assert (latest.seq, latest.version) == (2, "stable")
    assert latest.content_infohash == first.content_infohash
    assert [row.version for row in latest.history] == ["v1"]


def test_a_reused_version_label_is_refused(swarm: Swarm, publisher: Client, v2: Path) -> None:
    before, items = look(publisher), swarm.stored(PUBLISHER.public, NAME.encode())
    (v2 / "config.json").write_bytes(b"{}\n")
    with pytest.raises(UsageError, match="already published"):
        publisher.publish(v2, NAME, "v1", key=PUBLISHER)
    assert swarm.stored(PUBLISHER.public, NAME.encode()) == items
    assert look(publisher) == before


def test_offline_resolve_uses_what_is_known_and_says_stale(
    swarm: Swarm, consumer: Client, v1: Path
) -> None:
    consumer.resolve(REF)
    swarm.dht_offline = True
    resolution = consumer.resolve(REF)
    assert resolution.stale and resolution.record is None
    assert resolution.target.manifest.seq == 1


def test_a_publisher_whose_put_failed_can_publish_again(
    swarm: Swarm, publisher: Client, consumer: Client, v1: Path
) -> None:
    """A put that timed out leaves seq 2 remembered locally but seq 1 in the DHT (spec §8.2:
    seq 2 must never be reused); publishing again must not be mistaken for a rollback."""
    consumer.resolve(REF)
    (v1 / "config.json").write_bytes(b'{"hidden_size": 128}\n')
    swarm.failing_puts = 1
    with pytest.raises(NetTimeoutError):
        publisher.publish(v1, NAME, "v2", key=PUBLISHER)
    (v1 / "config.json").write_bytes(b'{"hidden_size": 256}\n')
    result = publisher.publish(v1, NAME, "v3", key=PUBLISHER)
    assert result.seq == 3
    latest = consumer.resolve(REF).latest.manifest
    assert (latest.seq, [row.version for row in latest.history]) == (3, ["v1", "v2"])


def test_publishing_again_after_a_failed_put_puts_the_record(
    swarm: Swarm, publisher: Client, consumer: Client, v1: Path
) -> None:
    (v1 / "config.json").write_bytes(b'{"hidden_size": 128}\n')
    swarm.failing_puts = 1
    with pytest.raises(NetTimeoutError):
        publisher.publish(v1, NAME, "v2", key=PUBLISHER)
    publisher.publish(v1, NAME, "v2", key=PUBLISHER)
    assert consumer.resolve(REF).latest.manifest.seq == 2


# --- the DHT record -----------------------------------------------------------------------------


def test_forged_record_signature_is_dropped(swarm: Swarm, consumer: Client, v1: Path) -> None:
    real = swarm.forget(PUBLISHER.public, NAME.encode())[-1]
    forged = sign_item(
        PUBLISHER,
        NAME.encode(),
        real.seq + 1,
        encode_record(Record(7, "v7", b"\x07" * 20, b"\x07" * 32, int(time.time()))),
    )
    swarm.inject(rewrite(forged, signature=real.signature))  # type: ignore[arg-type]
    before = look(consumer)
    with pytest.raises(NotFoundError):
        consumer.resolve(REF)
    assert_untouched(consumer, before)


def test_forged_item_with_a_higher_seq_does_not_displace_the_real_one(
    swarm: Swarm, consumer: Client, v1: Path
) -> None:
    forged = sign_item(
        PUBLISHER,
        NAME.encode(),
        next_bep44_seq(swarm),
        encode_record(Record(7, "v7", b"\x07" * 20, b"\x07" * 32, int(time.time()))),
    )
    swarm.inject(rewrite(forged, value=forged.value[:-1] + b"8"))  # type: ignore[arg-type]
    assert consumer.resolve(REF).target.manifest.seq == 1


def test_record_signed_by_another_key_is_dropped(
    swarm: Swarm, consumer: Client, v1: Path, tmp_path: Path
) -> None:
    swarm.forget(PUBLISHER.public, NAME.encode())
    files = (FileEntry("x", 0, b"\0" * 32),)
    m = Manifest(MALLORY.public, NAME, "v9", 9, int(time.time()), b"\x09" * 20, files)
    served = serve_manifest(swarm, m, tmp_path / "mallory", MALLORY)
    item = record_item(swarm, 9, "v9", served.infohash, served.hash, key=MALLORY)
    swarm.inject(item, key=PUBLISHER.public)
    before = look(consumer)
    with pytest.raises(NotFoundError):
        consumer.resolve(REF)
    assert_untouched(consumer, before)


def test_record_of_another_model_is_dropped(
    swarm: Swarm, publisher: Client, consumer: Client, v1: Path
) -> None:
    """The publisher's own signed record for model `other`, served for NAME (mix and match)."""
    publisher.publish(v1, "other", "v1", key=PUBLISHER)
    swarm.forget(PUBLISHER.public, NAME.encode())
    for item in swarm.stored(PUBLISHER.public, b"other"):
        swarm.inject(item, key=PUBLISHER.public, salt=NAME.encode())
    before = look(consumer)
    with pytest.raises(NotFoundError):
        consumer.resolve(REF)
    assert_untouched(consumer, before)


def test_rollback_to_an_older_record_is_refused(swarm: Swarm, consumer: Client, v2: Path) -> None:
    consumer.resolve(REF)
    old = swarm.forget(PUBLISHER.public, NAME.encode())[0]  # nodes churned; seq 1 replayed
    swarm.inject(old)
    before = look(consumer)
    with pytest.raises(RollbackError):
        consumer.resolve(REF)
    assert_untouched(consumer, before)
    assert before.known is not None and before.known.seq == 2


def test_rollback_is_refused_after_a_restart(
    swarm: Swarm, make_client: Callable[[str], Client], v2: Path
) -> None:
    make_client("consumer").resolve(REF)
    old = swarm.forget(PUBLISHER.public, NAME.encode())[0]
    swarm.inject(old)
    restarted = make_client("consumer")
    with pytest.raises(RollbackError):
        restarted.resolve(REF)
    assert known(restarted).seq == 2  # type: ignore[union-attr]


def test_equivocating_record_is_refused(
    swarm: Swarm, publisher: Client, consumer: Client, v2: Path, tmp_path: Path
) -> None:
    consumer.resolve(REF)
    seen = verified_latest(publisher)[0].manifest
    publish_forged(swarm, rewrite(seen, description="another seq 2"), tmp_path / "forged")
    before = look(consumer)
    with pytest.raises(EquivocationError):
        consumer.resolve(REF)
    assert_untouched(consumer, before)


def test_freeze_is_not_detected_by_a_fresh_client(swarm: Swarm, consumer: Client, v2: Path) -> None:
    """Known limitation (spec §10, Freeze): a client that saw nothing newer accepts an old
    record replayed after the nodes holding the newer one left. Only remembered state helps."""
    old = swarm.forget(PUBLISHER.public, NAME.encode())[0]
    swarm.inject(old)
    resolution = consumer.resolve(REF)
    assert resolution.target.manifest.version == "v1"
    assert known(consumer).seq == 1  # type: ignore[union-attr]


def test_future_dated_record_is_refused(
    swarm: Swarm, publisher: Client, consumer: Client, v1: Path, tmp_path: Path
) -> None:
    m = next_revision(publisher)
    served = serve_manifest(swarm, m, tmp_path / "forged")
    future = int(time.time()) + 3 * 24 * 3600
    swarm.inject(record_item(swarm, 2, "v2", served.infohash, served.hash, published_at=future))
    # Beside the valid v1 record, the future-dated one is passed over ...
    assert consumer.resolve(REF).target.manifest.version == "v1"
    # ... and alone, it is refused.
    swarm.forget(PUBLISHER.public, NAME.encode())
    swarm.inject(record_item(swarm, 2, "v2", served.infohash, served.hash, published_at=future))
    before = look(consumer)
    with pytest.raises(FutureTimestampError):
        consumer.resolve(REF)
    assert_untouched(consumer, before)


# --- the manifest -------------------------------------------------------------------------------


def test_manifest_bytes_not_matching_the_record_hash(
    swarm: Swarm, publisher: Client, consumer: Client, v1: Path, tmp_path: Path
) -> None:
    real = serve_manifest(swarm, next_revision(publisher), tmp_path / "a")
    other = serve_manifest(swarm, next_revision(publisher, description="swapped"), tmp_path / "b")
    swarm.inject(record_item(swarm, 2, "v2", other.infohash, real.hash))
    before = look(consumer)
    with pytest.raises(IntegrityError, match="do not match the hash the record signed"):
        consumer.resolve(REF)
    assert_untouched(consumer, before)
    assert not consumer.cache.manifest_path(other.hash).exists()


def test_manifest_whose_seq_disagrees_with_the_record(
    swarm: Swarm, publisher: Client, consumer: Client, v1: Path
) -> None:
    k = known(publisher)
    assert k is not None
    swarm.inject(record_item(swarm, 5, "v1", k.manifest_infohash, k.manifest_hash))
    before = look(consumer)
    with pytest.raises(MalformedError, match="record names seq 5"):
        consumer.resolve(REF)
    assert_untouched(consumer, before)


def test_manifest_whose_version_disagrees_with_the_record(
    swarm: Swarm, publisher: Client, consumer: Client, v1: Path
) -> None:
    k = known(publisher)
    assert k is not None
    swarm.inject(record_item(swarm, 1, "v1-final", k.manifest_infohash, k.manifest_hash))
    before = look(consumer)
    with pytest.raises(MalformedError, match=r"record names seq 1 \(v1-final\)"):
        consumer.resolve(REF)
    assert_untouched(consumer, before)


def test_record_naming_the_known_manifest_under_a_newer_seq(
    swarm: Swarm, publisher: Client, consumer: Client, v1: Path
) -> None:
    """The manifest is already held locally, so it is not fetched: the seq rule still applies."""
    consumer.resolve(REF)
    k = known(publisher)
    assert k is not None
    swarm.inject(record_item(swarm, 2, "v2", k.manifest_infohash, k.manifest_hash))
    before = look(consumer)
    with pytest.raises(MalformedError, match="record names seq 2"):
        consumer.resolve(REF)
    assert_untouched(consumer, before)


def test_manifest_of_another_model(
    swarm: Swarm, publisher: Client, consumer: Client, v1: Path
) -> None:
    publisher.publish(v1, "other", "v1", key=PUBLISHER)
    other = known(publisher, REF.__class__(PUBLISHER.public, "other"))
    assert other is not None
    # seq 2: newer than the real v1, so it is the record chosen and its manifest is checked
    swarm.inject(record_item(swarm, 2, "v1", other.manifest_infohash, other.manifest_hash))
    before = look(consumer)
    with pytest.raises(WrongNameError):
        consumer.resolve(REF)
    assert_untouched(consumer, before)


def test_history_rewrite_is_refused(
    swarm: Swarm, publisher: Client, consumer: Client, v2: Path, tmp_path: Path
) -> None:
    consumer.resolve(REF)
    m = next_revision(publisher)
    renamed = (rewrite(m.history[0], version="v0"), *m.history[1:])
    publish_forged(swarm, rewrite(m, history=renamed), tmp_path / "forged")
    before = look(consumer)
    with pytest.raises(HistoryRewriteError, match="rewrites revision 1"):
        consumer.resolve(REF)
    assert_untouched(consumer, before)


def test_history_dropping_a_revision_is_refused(
    swarm: Swarm, publisher: Client, consumer: Client, v2: Path, tmp_path: Path
) -> None:
    consumer.resolve(REF)
    m = next_revision(publisher)
    publish_forged(swarm, rewrite(m, history=m.history[1:]), tmp_path / "forged")
    before = look(consumer)
    with pytest.raises(HistoryRewriteError, match="drops revision 1"):
        consumer.resolve(REF)
    assert_untouched(consumer, before)


def test_version_row_naming_the_manifest_of_another_revision(
    swarm: Swarm, publisher: Client, consumer: Client, v2: Path, tmp_path: Path
) -> None:
    """A fresh client trusts the first history it sees, but checks each row it follows."""
    m = next_revision(publisher)
    row1, row2 = m.history
    lying = rewrite(
        row1, manifest_infohash=row2.manifest_infohash, manifest_hash=row2.manifest_hash
    )
    publish_forged(swarm, rewrite(m, history=(lying, row2)), tmp_path / "forged")
    consumer.resolve(REF)  # the latest revision itself is fine
    before = look(consumer)
    with pytest.raises(MalformedError, match="history row names seq 1"):
        consumer.pull(REF.at("v1"))
    assert_untouched(consumer, before)


def test_oversized_manifest_torrent_is_refused_before_download(
    swarm: Swarm, consumer: Client, v1: Path
) -> None:
    size = 33 * MiB
    info = bencode.encode(
        {
            b"length": size,
            b"name": b"huge.hubless-manifest",
            b"piece length": 16384,
            b"pieces": b"\0" * 20 * math.ceil(size / 16384),
        }
    )
    ih = hashlib.sha1(info).digest()
    swarm.serve_metadata(ih, info)
    swarm.inject(record_item(swarm, 2, "v2", ih, b"\x02" * 32))
    before = look(consumer)
    with pytest.raises(OversizedError, match="not one file under the size limit"):
        consumer.resolve(REF)
    assert swarm.count("download", ih) == 0
    assert_untouched(consumer, before)


def test_manifest_torrent_whose_name_holds_a_slash(
    swarm: Swarm, publisher: Client, consumer: Client, v1: Path, tmp_path: Path
) -> None:
    from hubless.core.manifest import sign_manifest

    data = sign_manifest(next_revision(publisher), PUBLISHER)
    info = bencode.encode(
        {
            b"length": len(data),
            b"name": b"manifests/m.hubless-manifest",
            b"piece length": 16384,
            b"pieces": b"".join(
                hashlib.sha1(data[i : i + 16384]).digest() for i in range(0, len(data), 16384)
            ),
        }
    )
    folder = tmp_path / "forged"
    folder.mkdir()
    (folder / "manifestsm.hubless-manifest").write_bytes(data)  # where libtorrent puts it
    ih = swarm.serve(b"d4:info" + info + b"e", folder)
    swarm.inject(record_item(swarm, 2, "v2", ih, hashlib.sha256(data).digest()))
    before = look(consumer)
    with pytest.raises(HostilePathError):
        consumer.resolve(REF)
    assert_untouched(consumer, before)


# --- the content torrent and its bytes ----------------------------------------------------------


def _serve_content(swarm: Swarm, root: Path, files: dict[str, bytes], name: str = NAME) -> bytes:
    folder = write_model(root / name, files)
    content = create_content_torrent(folder, sorted(files), name=name)
    return swarm.serve(content.torrent_bytes, root)


def _assert_refused_before_download(
    swarm: Swarm,
    consumer: Client,
    ih: bytes,
    reason: str,
    error: type[Exception] = IntegrityError,
) -> None:
    before = look(consumer)
    consumer.resolve(REF)
    resolved = look(consumer)
    with pytest.raises(error, match=reason):
        consumer.pull(REF)
    assert swarm.count("download", ih) == 0
    assert_untouched(consumer, resolved)
    assert (resolved.snapshots, resolved.blobs, resolved.torrents) == (
        before.snapshots,
        before.blobs,
        before.torrents,
    )


def test_content_torrent_listing_an_extra_file(
    swarm: Swarm, publisher: Client, consumer: Client, v1: Path, tmp_path: Path
) -> None:
    ih = _serve_content(swarm, tmp_path / "evil", {**V1_FILES, "payload.sh": b"#!/bin/sh\n"})
    publish_forged(swarm, bad_content_manifest(publisher, ih), tmp_path / "forged")
    _assert_refused_before_download(swarm, consumer, ih, "files differ")


def test_content_torrent_with_a_hostile_path(
    swarm: Swarm, publisher: Client, consumer: Client, v1: Path, tmp_path: Path
) -> None:
    files = [
        {b"length": len(data), b"path": [p.encode() for p in rel.split("/")]}
        for rel, data in V1_FILES.items()
    ]
    files.append({b"length": 10, b"path": [b"..", b"..", b"evil.sh"]})
    info = bencode.encode(
        {b"files": files, b"name": NAME.encode(), b"piece length": 16384, b"pieces": b"\0" * 20}
    )
    ih = hashlib.sha1(info).digest()
    swarm.serve_metadata(ih, info)
    publish_forged(swarm, bad_content_manifest(publisher, ih), tmp_path / "forged")
    _assert_refused_before_download(swarm, consumer, ih, "not a plain name", HostilePathError)
    assert not list(tmp_path.rglob("evil.sh"))


def test_content_torrent_under_another_root_name(
    swarm: Swarm, publisher: Client, consumer: Client, v1: Path, tmp_path: Path
) -> None:
    ih = _serve_content(swarm, tmp_path / "evil", V1_FILES, name="not-the-model")
    publish_forged(swarm, bad_content_manifest(publisher, ih), tmp_path / "forged")
    _assert_refused_before_download(swarm, consumer, ih, "is named 'not-the-model'")


def test_content_torrent_hiding_a_folder_inside_one_path_segment(
    swarm: Swarm, publisher: Client, consumer: Client, v1: Path, tmp_path: Path
) -> None:
    files = [{b"length": len(data), b"path": [rel.encode()]} for rel, data in V1_FILES.items()]
    info = bencode.encode(
        {b"files": files, b"name": NAME.encode(), b"piece length": 16384, b"pieces": b"\0" * 80}
    )
    torrent = b"d4:info" + info + b"e"
    root = tmp_path / "evil"
    for rel, data in V1_FILES.items():
        write_model(root / NAME, {rel.replace("/", ""): data})
    ih = swarm.serve(torrent, root)
    publish_forged(swarm, bad_content_manifest(publisher, ih), tmp_path / "forged")
    consumer.resolve(REF)
    before = look(consumer)
    with pytest.raises(HostilePathError):
        consumer.pull(REF)
    assert_untouched(consumer, before)


def test_content_metadata_not_hashing_to_the_infohash(
    swarm: Swarm, publisher: Client, consumer: Client, v1: Path, tmp_path: Path
) -> None:
    """Even through a network layer that forgot to check metadata against the infohash."""
    content = verified_latest(publisher)[0].manifest.content_infohash
    evil = _serve_content(swarm, tmp_path / "evil", {**V1_FILES, "payload.sh": b"boom"})
    swarm.peers[content] = []  # the honest seeders are unreachable
    swarm.serve_metadata(content, info_of(swarm.seeders(evil)[0].torrent))
    swarm.check_metadata = False
    consumer.resolve(REF)
    before = look(consumer)
    with pytest.raises(IntegrityError, match="does not hash to the manifest's infohash"):
        consumer.pull(REF)
    assert swarm.count("download", content) == swarm.count("download", evil) == 0
    assert_untouched(consumer, before)


def test_tampered_seeder_bytes_never_enter_the_cache(
    swarm: Swarm, publisher: Client, consumer: Client, v1: Path, tmp_path: Path
) -> None:
    content = verified_latest(publisher)[0].manifest.content_infohash
    honest = swarm.seeders(content)[0]
    evil_root = tmp_path / "evil"
    shutil.copytree(honest.save_path / NAME, evil_root / NAME)
    weights = evil_root / NAME / "model.safetensors"
    weights.write_bytes(b"\xff" * weights.stat().st_size)  # same size, other bytes
    swarm.serve(honest.torrent, evil_root, exclusive=True)
    consumer.resolve(REF)
    before = look(consumer)
    with pytest.raises(IntegrityError, match=r"model\.safetensors"):
        consumer.pull(REF, to=tmp_path / "out")
    after = look(consumer)
    assert after.snapshots == before.snapshots
    assert after.known == before.known
    assert hashlib.sha256(weights.read_bytes()).hexdigest() not in after.blobs
    assert_cache_holds_only_verified_blobs(consumer)
    assert not (tmp_path / "out").exists()


# --- yanks --------------------------------------------------------------------------------------


@pytest.fixture
def yanked(swarm: Swarm, publisher: Client, v1: Path, tmp_path: Path) -> Manifest:
    """Seq 2: v1 again with every release yanked (spec §7.3: latest keeps its own mark)."""
    prev, prev_ih = verified_latest(publisher)
    reason = "weights leak training data"
    m = next_revision(
        publisher,
        version="v1",
        yanked=reason,
        history=mark_yanked(next_history(prev, prev_ih), "v1", reason),
    )
    publish_forged(swarm, m, tmp_path / "forged")
    return m


def test_yanked_latest_is_refused_without_allow_yanked(
    swarm: Swarm, consumer: Client, yanked: Manifest
) -> None:
    content = yanked.content_infohash
    before = look(consumer)
    with pytest.raises(UsageError, match="yanked"):
        consumer.pull(REF)
    after = look(consumer)
    assert (after.snapshots, after.blobs, after.torrents) == (
        before.snapshots,
        before.blobs,
        before.torrents,
    )
    assert swarm.count("download", content) == 0


def test_yanked_latest_is_pulled_with_allow_yanked(consumer: Client, yanked: Manifest) -> None:
    result = consumer.pull(REF, allow_yanked=True)
    assert result.resolution.yanked == yanked.yanked
    assert (result.path / "config.json").read_bytes() == V1_FILES["config.json"]


# --- a pulled folder checked later ----------------------------------------------------------


def test_verify_refuses_a_folder_manifest_that_is_no_manifest(tmp_path: Path) -> None:
    """A `.hubless/manifest` whose envelope holds no manifest bytes is a typed refusal."""
    from hubless.core import canonical

    folder = write_model(tmp_path / "pulled", V1_FILES)
    (folder / ".hubless").mkdir()
    (folder / ".hubless" / "manifest").write_bytes(
        canonical.encode({"manifest": 5, "signature": b"\0" * 64})
    )
    with pytest.raises(UsageError, match="not a hubless manifest"):
        verify_folder(folder)


def test_two_records_for_one_seq_are_equivocation(
    swarm: Swarm, publisher: Client, consumer: Client, v1: Path, tmp_path: Path
) -> None:
    m = next_revision(publisher)
    served = serve_manifest(swarm, rewrite(m, seq=1, history=(), prev=None), tmp_path / "forged")
    swarm.inject(record_item(swarm, 1, "v2", served.infohash, served.hash))
    before = look(consumer)
    with pytest.raises(EquivocationError):
        consumer.resolve(REF)
    assert_untouched(consumer, before)


def test_an_old_record_replayed_with_a_higher_dht_seq_does_not_shadow_the_newest(
    swarm: Swarm, publisher: Client, consumer: Client, v2: Path
) -> None:
    """Nodes forgot; the publisher put v2 again (BEP-44 seq 1), and someone replays the
    old v1 item they kept, which carries a higher BEP-44 seq. The record seq decides."""
    salt = NAME.encode()
    stored = [
        verify_item(raw, PUBLISHER.public, salt) for raw in swarm.stored(PUBLISHER.public, salt)
    ]
    v1_payload = min(stored, key=lambda item: item.seq).payload
    v2_payload = max(stored, key=lambda item: item.seq).payload
    swarm.forget(PUBLISHER.public, salt)
    swarm.inject(sign_item(PUBLISHER, salt, 50, v1_payload))  # kept from many republishes ago
    swarm.inject(sign_item(PUBLISHER, salt, 1, v2_payload))  # put again after nodes forgot
    assert consumer.resolve(REF).target.manifest.version == "v2"


def test_a_signed_value_that_is_not_a_byte_string_is_malformed(
    swarm: Swarm, consumer: Client, v1: Path
) -> None:
    """Spec §4.2 step 7: the publisher's key signed it, so the blame is the data, not the key."""
    from hubless.core.bep44 import RawItem, signing_message

    real = swarm.forget(PUBLISHER.public, NAME.encode())[-1]
    value = bencode.encode({b"s": 2, b"v": b"v2"})
    signature = PUBLISHER.sign(signing_message(NAME.encode(), real.seq + 1, value))
    swarm.inject(RawItem(PUBLISHER.public.raw, NAME.encode(), real.seq + 1, value, signature))
    before = look(consumer)
    with pytest.raises(MalformedError, match="not a bencoded byte string"):
        consumer.resolve(REF)
    assert_untouched(consumer, before)
    swarm.inject(real)  # beside a valid record, the malformed one is passed over
    assert consumer.resolve(REF).target.manifest.seq == 1
