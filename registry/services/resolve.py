"""Resolve `KEY/NAME[@VERSION]` to a verified manifest: the I/O around `core.trust`.

The DHT get, the manifest fetches and the store writes happen here; every rule they are
checked by is `hubless.core.trust.ModelTrust` (spec/PROTOCOL.md §8.1, §8.2). Every manifest
this machine verified is kept and seeded, so each client helps serve the manifests it used.
"""

from __future__ import annotations

import shutil
import time
from dataclasses import dataclass, field
from typing import Any

from ..core.errors import (
    HublessError,
    NetworkError,
    NotFoundError,
    RollbackError,
    StoreError,
)
from ..core.manifest import MAX_MANIFEST_SIZE, VerifiedManifest
from ..core.metainfo import check_blob_metainfo, parse_metainfo
from ..core.record import VerifiedRecord
from ..core.refs import Reference
from ..core.trust import KnownState, ModelTrust
from ..store.state import KnownModel, SeedEntry
from .context import Context
from .events import Event


@dataclass(frozen=True)
class Resolution:
    """What a reference names, every part verified.

    `latest` is the newest revision the record points at; `target` is the revision the
    reference asked for (the same one unless `@VERSION` named an older version).
    `stale` means the DHT gave no answer and this is the newest manifest known locally.
    """

    reference: Reference
    record: VerifiedRecord | None = field(repr=False)
    latest: VerifiedManifest = field(repr=False)
    latest_infohash: bytes = field(repr=False)
    target: VerifiedManifest = field(repr=False)
    target_infohash: bytes = field(repr=False)
    yanked: str | None
    stale: bool = False

    def __repr__(self) -> str:
        m = self.target.manifest
        return (
            f"Resolution({self.reference.at(m.version)}, seq={m.seq}, "
            f"latest={self.latest.manifest.version!r}, files={len(m.files)}, "
            f"size={m.total_size}, yanked={self.yanked!r}, stale={self.stale})"
        )

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
            "notes": m.description,
            "license": m.license,
            "tags": list(m.tags),
            "web_seeds": [{"kind": w.kind, "url": w.base} for w in m.web_seeds],
            "yanked": self.yanked,
            "latest_version": self.latest.manifest.version,
            "latest_seq": self.latest.manifest.seq,
            "stale": self.stale,
        }


def _known_state(ctx: Context, ref: Reference) -> KnownState | None:
    known = ctx.state.known(ref.publisher, ref.name)
    if known is None:
        return None
    return KnownState(
        known.seq, known.version, known.manifest_hash, known.manifest_infohash, known.manifest
    )


def resolve(ctx: Context, ref: Reference) -> Resolution:
    """Resolve `ref` against the DHT, falling back to local knowledge only when offline.

    Raises `NotFoundError` (no record), `NetTimeoutError`, and every `UntrustedDataError`
    of spec §8.1; a failure leaves known state unchanged.
    """
    trust = ModelTrust(ref.publisher, ref.name, now=int(time.time()), known=_known_state(ctx, ref))
    ctx.emit(Event("resolve", f"looking up {ref.publisher.text[:12]}…/{ref.name} in the DHT"))
    try:
        items = ctx.network.dht_get(ref.publisher, ref.salt, ctx.config.dht_timeout)
        if not items:
            raise NotFoundError(
                f"no DHT record for model {ref.name!r} under key {ref.publisher.text}"
            )
    except NetworkError:
        if trust.known is None:
            raise
        ctx.emit(Event("resolve", "no answer from the DHT; using the newest version known here"))
        latest = trust.offline()
        return _choose(ctx, ref, trust, None, latest, stale=True)
    try:
        record = trust.update_record(items)
    except RollbackError as exc:
        if _ours(ctx, ref):
            exc.hint = (
                "this machine published a newer version with this key than the DHT holds: "
                "its put may have failed or been forgotten; `hubless seed --key NAME` or the "
                "next publish puts it again"
            )
        raise
    r = record.record
    data = None
    if trust.needs_manifest:
        data = fetch_manifest(ctx, ref, r.manifest_infohash, r.manifest_hash, trust.now)
    latest = trust.update_latest(data)
    new = trust.to_remember
    if new is not None:
        ctx.state.remember(
            KnownModel(
                ref.publisher,
                ref.name,
                new.seq,
                new.version,
                new.manifest_hash,
                new.manifest_infohash,
                new.manifest,
            )
        )
        seed_manifest(ctx, latest, r.manifest_infohash)
    return _choose(ctx, ref, trust, record, latest)


def _ours(ctx: Context, ref: Reference) -> bool:
    """Whether a key on this machine signs for `ref`'s publisher."""
    try:
        return any(info.public == ref.publisher for info in ctx.keys.list())
    except HublessError:
        return False


def _choose(
    ctx: Context,
    ref: Reference,
    trust: ModelTrust,
    record: VerifiedRecord | None,
    latest: VerifiedManifest,
    *,
    stale: bool = False,
) -> Resolution:
    assert trust.latest_infohash is not None
    latest_ih = trust.latest_infohash
    choice = trust.choose(ref.version)
    if choice.entry is None:
        return Resolution(ref, record, latest, latest_ih, latest, latest_ih, choice.yanked, stale)
    row = choice.entry
    data = fetch_manifest(ctx, ref, row.manifest_infohash, row.manifest_hash, trust.now)
    target = trust.update_target(row, data)
    seed_manifest(ctx, target, row.manifest_infohash)
    return Resolution(
        ref, record, latest, latest_ih, target, row.manifest_infohash, choice.yanked, stale
    )


def fetch_manifest(
    ctx: Context, ref: Reference, infohash: bytes, expected_hash: bytes, now: int
) -> bytes:
    """The bytes of a signed manifest, from the cache (by hash) or by its torrent's infohash.

    Nothing is verified here beyond the torrent's shape: the caller hands the bytes to
    `ModelTrust`, and seeds the manifest (`seed_manifest`) only once every rule passed.
    Raises `MalformedError`/`OversizedError` for a torrent that is not one small file,
    `StoreError` when the finished download's file cannot be read, and the network's errors.
    """
    cached = ctx.cache.manifest_path(expected_hash)
    if cached.exists():
        return cached.read_bytes()
    ctx.emit(Event("fetch-manifest", f"fetching manifest {infohash.hex()[:16]}…"))
    net = ctx.network
    torrent = net.fetch_metadata(infohash, ctx.config.dht_timeout)
    meta = parse_metainfo(torrent)
    check_blob_metainfo(meta, MAX_MANIFEST_SIZE, f"manifest torrent {infohash.hex()}")
    folder = ctx.cache.partial_dir(infohash)
    ctx.stop_seeding(infohash)  # a seeded copy whose file went missing: fetch it afresh
    net.download(torrent, folder)
    try:
        net.wait_finished(infohash, ctx.config.dht_timeout)
    finally:
        net.remove(infohash)
    path = folder / meta.name
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise StoreError(
            f"the download of manifest torrent {infohash.hex()} finished but its file "
            f"{path} cannot be read: {exc.strerror}",
            hint="another process using this home may have removed it; try again",
        ) from exc
    shutil.rmtree(folder, ignore_errors=True)
    return data


def seed_manifest(ctx: Context, verified: VerifiedManifest, infohash: bytes) -> None:
    """Keep a verified manifest and serve it as its (deterministic) manifest torrent."""
    path = ctx.cache.save_manifest(verified.hash, verified.data)
    torrent, ours = ctx.torrents.blob_torrent(path.name, verified.data)
    if ours != infohash:
        return  # made by another tool with another layout: we cannot serve that infohash
    m = verified.manifest
    ctx.seed_torrent(
        SeedEntry(infohash, "manifest", m.publisher, m.name, m.seq, torrent, path.parent)
    )
