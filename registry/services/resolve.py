"""Resolve `KEY/NAME[@VERSION]` to a verified manifest (spec/PROTOCOL.md §8).

DHT get → record rules → manifest torrent → manifest rules → history extends what this
machine already knew → remember the new highest seq. Every manifest this machine verified
is kept and seeded, so each client helps serve the manifests it used.
"""

from __future__ import annotations

import shutil
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..core.bep44 import VerifiedItem
from ..core.errors import (
    EquivocationError,
    IntegrityError,
    NetworkError,
    UntrustedDataError,
)
from ..core.history import check_extends, choose_version
from ..core.manifest import (
    MAX_MANIFEST_SIZE,
    VerifiedManifest,
    check_matches_record,
    verify_manifest,
)
from ..core.metainfo import check_blob_metainfo, parse_metainfo
from ..core.record import KnownRecord, VerifiedRecord, check_record
from ..core.refs import Reference
from ..store.state import KnownModel, SeedEntry
from .events import Event

if TYPE_CHECKING:
    from .client import Client


@dataclass(frozen=True)
class Resolution:
    """What a reference names, every part verified.

    `latest` is the newest revision the record points at; `target` is the revision the
    reference asked for (the same one unless `@VERSION` named an older version).
    `stale` means the DHT gave no answer and this is the newest manifest known locally.
    """

    reference: Reference
    record: VerifiedRecord | None
    latest: VerifiedManifest
    latest_infohash: bytes
    target: VerifiedManifest
    target_infohash: bytes
    yanked: str | None
    stale: bool = False

    def summary(self) -> dict[str, Any]:
        """Stable keys for `--json` output."""
        m = self.target.manifest
        return {
            "reference": str(self.reference.at(m.version)),
            "publisher": m.publisher.text,
            "name": m.name,
            "version": m.version,
            "seq": m.seq,
            "manifest_infohash": self.target_infohash.hex(),
            "manifest_hash": self.target.hash.hex(),
            "content_infohash": m.content_infohash.hex(),
            "published_at": m.created,
            "files": len(m.files),
            "size": m.total_size,
            "yanked": self.yanked,
            "latest_version": self.latest.manifest.version,
            "latest_seq": self.latest.manifest.seq,
            "stale": self.stale,
        }


def resolve(client: Client, ref: Reference) -> Resolution:
    """Resolve `ref` against the DHT, falling back to local knowledge only when offline."""
    now = int(time.time())
    known = client.state.known(ref.publisher, ref.name)
    client.emit(Event("resolve", f"looking up {ref.publisher.text[:12]}…/{ref.name} in the DHT"))
    try:
        items = client.network.dht_get_all(ref.publisher, ref.salt, client.config.dht_timeout)
    except NetworkError:
        if known is None:
            raise
        client.emit(Event("resolve", "no answer from the DHT; using the newest version known here"))
        latest = verify_manifest(known.manifest, ref.publisher, ref.name, now=now)
        return _choose(client, ref, None, latest, known.manifest_infohash, now, stale=True)
    record = newest_record(
        items, ref.name, now, KnownRecord(known.seq, known.manifest_hash) if known else None
    )
    r = record.record
    fetched = known is None or known.manifest_hash != r.manifest_hash
    if known is not None and not fetched:
        latest = verify_manifest(known.manifest, ref.publisher, ref.name, now=now)
    else:
        latest = fetch_manifest(client, ref, r.manifest_infohash, r.manifest_hash, now)
    # Also for a manifest held already: a record may name it under a newer seq (spec §8.1 5).
    check_matches_record(latest, r.seq, r.version)
    if fetched:
        if known is not None:
            held = verify_manifest(known.manifest, ref.publisher, ref.name, now=now)
            check_extends(held, latest, known_infohash=known.manifest_infohash)
        client.state.remember(
            KnownModel(
                ref.publisher,
                ref.name,
                r.seq,
                r.version,
                latest.hash,
                r.manifest_infohash,
                latest.data,
            )
        )
        seed_manifest(client, latest, r.manifest_infohash)
    return _choose(client, ref, record, latest, r.manifest_infohash, now)


def newest_record(
    items: list[VerifiedItem], name: str, now: int, known: KnownRecord | None
) -> VerifiedRecord:
    """The record with the highest own seq among the items a lookup met (spec §4.1).

    Nodes may hold different items: an old one replayed with a higher BEP-44 seq must not
    shadow the newest release. Two valid records for one seq are equivocation.
    """
    valid: list[VerifiedRecord] = []
    first_error: UntrustedDataError | None = None
    for item in items:
        try:
            valid.append(check_record(item, name, now=now))
        except UntrustedDataError as exc:
            first_error = first_error or exc
    if not valid:
        assert first_error is not None  # items is never empty
        raise first_error
    best = max(valid, key=lambda v: v.record.seq)
    for other in valid:
        if (
            other.record.seq == best.record.seq
            and other.record.manifest_hash != best.record.manifest_hash
        ):
            raise EquivocationError(
                f"publisher signed two different manifests as seq {best.record.seq} of {name}"
            )
    return check_record(best.item, name, now=now, known=known)  # rollback against local state


def _choose(
    client: Client,
    ref: Reference,
    record: VerifiedRecord | None,
    latest: VerifiedManifest,
    latest_infohash: bytes,
    now: int,
    *,
    stale: bool = False,
) -> Resolution:
    choice = choose_version(latest.manifest, ref.version)
    if choice.entry is None:
        return Resolution(
            ref, record, latest, latest_infohash, latest, latest_infohash, choice.yanked, stale
        )
    entry = choice.entry
    target = fetch_manifest(client, ref, entry.manifest_infohash, entry.manifest_hash, now)
    check_matches_record(target, entry.seq, entry.version, what="a history row")
    seed_manifest(client, target, entry.manifest_infohash)
    return Resolution(
        ref, record, latest, latest_infohash, target, entry.manifest_infohash, choice.yanked, stale
    )


def fetch_manifest(
    client: Client, ref: Reference, infohash: bytes, expected_hash: bytes, now: int
) -> VerifiedManifest:
    """A signed manifest by its torrent's infohash, verified against the hash that names it.

    The caller seeds it (`seed_manifest`) only once every rule of spec §8.1 passed: a
    refused manifest must not be served, nor enter the seeds table that `seed` restarts.
    """
    cache = client.cache
    cached = cache.manifest_path(expected_hash)
    if cached.exists():
        verified = verify_manifest(
            cached.read_bytes(), ref.publisher, ref.name, now=now, expected_hash=expected_hash
        )
        return verified
    client.emit(Event("fetch-manifest", f"fetching manifest {infohash.hex()[:16]}…"))
    net = client.network
    torrent = net.fetch_metadata(infohash, client.config.dht_timeout)
    meta = parse_metainfo(torrent)
    check_blob_metainfo(meta, MAX_MANIFEST_SIZE, f"manifest torrent {infohash.hex()}")
    folder = cache.partial_dir(infohash)
    client.stop_seeding(infohash)  # a seeded copy whose file went missing: fetch it afresh
    net.download(torrent, folder)
    try:
        net.wait_finished(infohash, client.config.dht_timeout)
    finally:
        net.remove(infohash)
    path = folder / meta.name
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise IntegrityError(f"manifest torrent {infohash.hex()} did not yield its file") from exc
    shutil.rmtree(folder, ignore_errors=True)
    verified = verify_manifest(data, ref.publisher, ref.name, now=now, expected_hash=expected_hash)
    cache.save_manifest(verified.hash, verified.data)
    return verified


def seed_manifest(client: Client, verified: VerifiedManifest, infohash: bytes) -> None:
    """Serve a verified manifest as its (deterministic) manifest torrent, if ours matches."""
    from ..net.torrents import create_blob_torrent

    path = client.cache.save_manifest(verified.hash, verified.data)
    torrent, ours = create_blob_torrent(path.name, verified.data)
    if ours != infohash:
        return  # made by another tool with another layout: we cannot serve that infohash
    m = verified.manifest
    client.seed_torrent(
        SeedEntry(infohash, "manifest", m.publisher, m.name, m.seq, torrent, path.parent)
    )
