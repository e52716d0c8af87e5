"""Resolve `KEY/NAME[@VERSION]` to a verified manifest: the I/O around `core.trust`.

The DHT get, the manifest fetches and the store writes happen here; every rule they are
checked by is `hubless.core.trust.ModelTrust` (spec/PROTOCOL.md §8.1, §8.2). Every manifest
this machine verified is kept and seeded, so each client helps serve the manifests it used,
and the exact signed record item is kept, so that it can put it again (§8.5).

Time is bounded: with a version known here to fall back on, the DHT gets
`config.check_timeout` seconds (joining included) before the known one is used, marked
`stale`; offline, the DHT is not asked at all. A manifest is fetched by one process or
thread at a time (a file lock per infohash); the others wait and read it from the cache.
"""

from __future__ import annotations

import hashlib
import shutil
import time
from dataclasses import dataclass, field
from typing import Any

from ..core.errors import (
    HublessError,
    NetworkError,
    NoPeersError,
    NotFoundError,
    OfflineError,
    RollbackError,
    StoreError,
    UsageError,
)
from ..core.manifest import MAX_MANIFEST_SIZE, VerifiedManifest, verify_manifest
from ..core.metainfo import check_blob_metainfo, parse_metainfo
from ..core.record import VerifiedRecord
from ..core.refs import Reference
from ..core.trust import KnownState, ModelTrust
from ..store import keepalive as store_keepalive
from ..store.state import KnownModel, SeedEntry
from .context import Context
from .events import Event


@dataclass(frozen=True)
class Resolution:
    """What a reference names, every part verified.

    `latest` is the newest revision the record points at; `target` is the revision the
    reference asked for (the same one unless `@VERSION` named an older version).
    `stale` means the DHT gave no answer, or was not asked (offline, or an exact version
    found in the cache): this is what is known locally, and a newer version or a yank may
    have been published since.
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


def resolve(
    ctx: Context, ref: Reference, *, offline: bool = False, patience: float | None = None
) -> Resolution:
    """Resolve `ref` against the DHT, falling back to local knowledge only when offline.

    With `offline` (or `config.offline`) the network is never used: the answer comes from
    known state and cached manifests, marked stale, or `OfflineError`. `patience`: seconds
    the DHT gets before a known version answers instead (default `config.check_timeout`;
    publish waits the full lookup timeout). Raises
    `NotFoundError` (no record), `NetTimeoutError`, and every `UntrustedDataError` of spec
    §8.1; a failure leaves known state unchanged.
    """
    trust = ModelTrust(ref.publisher, ref.name, now=int(time.time()), known=_known_state(ctx, ref))
    if offline or ctx.config.offline:
        if trust.known is None:
            raise OfflineError(f"nothing is known here about {ref.name!r} of {ref.publisher.text}")
        return _choose(ctx, ref, trust, None, trust.offline(), stale=True, offline=True)
    ctx.emit(Event("resolve", f"looking up {ref.publisher.text[:12]}…/{ref.name} in the DHT"))
    budget = ctx.config.dht_timeout
    if trust.known is not None:
        budget = ctx.config.check_timeout if patience is None else patience
    deadline = time.monotonic() + budget
    try:
        network = ctx.network_within(budget)
        left = max(1.0, deadline - time.monotonic())
        items = network.dht_get(ref.publisher, ref.salt, left)
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
        data = fetch_manifest(
            ctx,
            ref,
            r.manifest_infohash,
            r.manifest_hash,
            trust.now,
            what=f"{ref.name} {r.version} (seq {r.seq})",
        )
    latest = trust.update_latest(data)
    # Steps 2-6 passed: this record is verified; keep its signed item to re-put (§8.5).
    store_keepalive.keep_item(ctx.state, record.item.raw(), r.seq)
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


def resolve_cached(ctx: Context, ref: Reference) -> Resolution | None:
    """`ref`'s exact version from what is known here, without the network; None if unknown.

    A named version never changes (its manifest is signed and named by hash), so a pull of
    one held in the cache needs no lookup; the result is marked stale all the same (a yank
    published since is not seen). Only for references naming a version.
    """
    if ref.version is None:
        return None
    trust = ModelTrust(ref.publisher, ref.name, now=int(time.time()), known=_known_state(ctx, ref))
    if trust.known is None:
        return None
    latest = trust.offline()
    try:
        choice = trust.choose(ref.version)
    except UsageError:
        return None  # perhaps published after what is known here: ask the network
    row = choice.entry
    if row is not None and not ctx.cache.manifest_path(row.manifest_hash).exists():
        return None
    return _choose(ctx, ref, trust, None, latest, stale=True, offline=True)


def _choose(
    ctx: Context,
    ref: Reference,
    trust: ModelTrust,
    record: VerifiedRecord | None,
    latest: VerifiedManifest,
    *,
    stale: bool = False,
    offline: bool = False,
) -> Resolution:
    assert trust.latest_infohash is not None
    latest_ih = trust.latest_infohash
    try:
        choice = trust.choose(ref.version)
    except UsageError as exc:
        if stale:
            exc.hint = (
                f"{ref.name} is known here only up to {latest.manifest.version}; a newer "
                "version needs the network"
            )
        raise
    if choice.entry is None:
        return Resolution(ref, record, latest, latest_ih, latest, latest_ih, choice.yanked, stale)
    row = choice.entry
    if offline and not ctx.cache.manifest_path(row.manifest_hash).exists():
        raise OfflineError(f"the manifest of {ref.name} {row.version} is not in the cache")
    data = fetch_manifest(
        ctx,
        ref,
        row.manifest_infohash,
        row.manifest_hash,
        trust.now,
        what=f"{ref.name} {row.version} (seq {row.seq})",
    )
    target = trust.update_target(row, data)
    if not offline:  # offline, it was seeded when it was first resolved
        seed_manifest(ctx, target, row.manifest_infohash)
    return Resolution(
        ref, record, latest, latest_ih, target, row.manifest_infohash, choice.yanked, stale
    )


def fetch_manifest(
    ctx: Context,
    ref: Reference,
    infohash: bytes,
    expected_hash: bytes,
    now: int,
    *,
    what: str = "",
) -> bytes:
    """The bytes of a signed manifest, from the cache (by hash) or by its torrent's infohash.

    Nothing is verified here beyond the torrent's shape: the caller hands the bytes to
    `ModelTrust`, and seeds the manifest (`seed_manifest`) only once every rule passed.
    Raises what `fetch_blob` raises (`NoPeersError` naming `what`, the revision, e.g.
    "tiny v2 (seq 2)").
    """
    cached = ctx.cache.manifest_path(expected_hash)
    if cached.exists():
        return cached.read_bytes()
    with ctx.cache.locks.hold(
        f"manifest-{infohash.hex()}",
        timeout=ctx.config.transfer_timeout,  # the holder's own lookups are bounded
        on_wait=lambda: ctx.emit(Event("fetch-manifest", "waiting for another fetch of it")),
        what=f"the fetch of manifest torrent {infohash.hex()}",
    ):
        if cached.exists():  # fetched meanwhile by the process or thread we waited for
            return cached.read_bytes()
        data = _download_manifest(ctx, infohash, what or ref.name)
        if hashlib.sha256(data).digest() == expected_hash:
            # Named by the hash of its bytes: safe to keep before its signature is checked
            # (`ModelTrust` does that), and the next waiter reads it from here.
            ctx.cache.save_manifest(expected_hash, data)
        return data


def no_peer_reason(exc: NoPeersError, infohash: bytes) -> str:
    """`exc`'s message without the infohash its caller already names ("no peer for <hex>
    within 30s (...)" becomes "no peer connected within 30s (...)")."""
    return exc.message.replace(f"no peer for {infohash.hex()} within", "no peer connected within")


def _download_manifest(ctx: Context, infohash: bytes, what: str) -> bytes:
    ctx.emit(Event("fetch-manifest", f"fetching manifest {infohash.hex()[:16]}…"))
    try:
        return fetch_blob(ctx, infohash, MAX_MANIFEST_SIZE, "manifest torrent")
    except NoPeersError as exc:
        raise NoPeersError(
            f"nobody is serving the manifest of {what} (manifest torrent "
            f"{infohash.hex()}): {no_peer_reason(exc, infohash)}"
        ) from exc


def fetch_blob(ctx: Context, infohash: bytes, max_size: int, what: str) -> bytes:
    """The one file of a small single-file torrent (a manifest, an index list), by infohash.

    Unverified bytes of at most `max_size`: the caller checks them against the hash it
    trusts. Raises `MalformedError`/`OversizedError` for a torrent that is not one file of
    at most `max_size` bytes, `StoreError` when the finished download's file cannot be
    read, and the network's errors. Fetches of one infohash take turns (a file lock): each
    downloads into and removes the same `partial/<infohash>` folder.
    """
    with ctx.cache.locks.hold(
        f"fetch-{infohash.hex()}",
        timeout=ctx.config.transfer_timeout,
        what=f"the fetch of {what} {infohash.hex()}",
    ):
        return _fetch_blob(ctx, infohash, max_size, what)


def _fetch_blob(ctx: Context, infohash: bytes, max_size: int, what: str) -> bytes:
    net = ctx.network
    torrent = net.fetch_metadata(infohash, ctx.config.dht_timeout)
    meta = parse_metainfo(torrent)
    check_blob_metainfo(meta, max_size, f"{what} {infohash.hex()}")
    folder = ctx.cache.partial_dir(infohash)
    ctx.stop_seeding(infohash)  # a seeded copy whose file went missing: fetch it afresh
    net.download(torrent, folder)
    try:
        # returns once written to disk; a stopping daemon gives up at once
        net.wait_finished(infohash, ctx.config.dht_timeout, cancel=ctx.cancel)
    finally:
        net.remove(infohash)
    path = folder / meta.name
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise StoreError(
            f"the download of {what} {infohash.hex()} finished but its file "
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


def held_manifests(ctx: Context, resolution: Resolution) -> dict[int, VerifiedManifest]:
    """The earlier revisions' manifests this home holds, by seq, each verified again against
    the hash its history row names (§7.2). What is missing or refused is left out: no lookup."""
    latest = resolution.latest.manifest
    held: dict[int, VerifiedManifest] = {}
    for row in latest.history:
        path = ctx.cache.manifest_path(row.manifest_hash)
        try:
            data = path.read_bytes()
            held[row.seq] = verify_manifest(
                data,
                latest.publisher,
                latest.name,
                now=int(time.time()),
                expected_hash=row.manifest_hash,
            )
        except (OSError, HublessError):
            continue
    return held
