"""Publish a model folder as a new signed version (spec/PROTOCOL.md §4, §5, §7).

Hash once into the content torrent and the file SHA-256s, extend the history of the
previous revision, sign the manifest, serve both torrents, then put the record and the
publisher index. Publishing an unchanged folder again makes no new version.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..core.errors import (
    EquivocationError,
    HublessError,
    IntegrityError,
    KeyLeakError,
    NetworkError,
    NotFoundError,
    OversizedError,
    RollbackError,
    StoreError,
    UsageError,
)
from ..core.history import next_history
from ..core.index import INDEX_SALT, IndexRecord, build_index, encode_index, encode_name_list
from ..core.keys import SigningKey
from ..core.manifest import (
    FileEntry,
    Manifest,
    VerifiedManifest,
    manifest_hash,
    sign_manifest,
    verify_manifest,
)
from ..core.record import Record, encode_record
from ..core.refs import Reference, check_name, check_version
from ..core.trust import choose_record
from ..core.webseeds import WebSeed
from ..net.contract import ContentTorrent
from ..store.locks import GC
from ..store.state import KnownModel, SeedEntry
from .context import Context
from .events import Event
from .folder import list_files
from .keepalive import keep_own_put
from .resolve import resolve

INDEX_LIST_NAME = "hubless-index"  # the seeds-table name of publisher index list torrents


@dataclass(frozen=True)
class PublishResult:
    reference: Reference
    seq: int
    version: str
    manifest_infohash: bytes
    manifest_hash: bytes
    content_infohash: bytes
    files: int
    size: int
    dht_nodes: int
    unchanged: bool

    def __repr__(self) -> str:
        return (
            f"PublishResult({self.reference}, seq={self.seq}, files={self.files}, "
            f"size={self.size}, dht_nodes={self.dht_nodes}, unchanged={self.unchanged})"
        )

    def summary(self) -> dict[str, Any]:
        return {
            "reference": str(self.reference),
            "publisher": self.reference.publisher.text,
            "name": self.reference.name,
            "version": self.version,
            "seq": self.seq,
            "manifest_infohash": self.manifest_infohash.hex(),
            "manifest_hash": self.manifest_hash.hex(),
            "content_infohash": self.content_infohash.hex(),
            "files": self.files,
            "size": self.size,
            "dht_nodes": self.dht_nodes,
            "unchanged": self.unchanged,
        }


def publish(
    ctx: Context,
    folder: Path,
    name: str,
    version: str,
    key: SigningKey,
    *,
    description: str | None = None,
    license: str | None = None,
    tags: tuple[str, ...] = (),
    follow_links: bool = False,
    web_seeds: tuple[WebSeed, ...] = (),
) -> PublishResult:
    """Publish `folder` as version `version` of model `name` under `key` (spec §8.3).

    Links and special files in the folder are refused (`UsageError`) unless `follow_links`
    (see `hubless.services.folder`). `web_seeds` (§5.8) are signed into the manifest.

    An unchanged folder (same files and web seeds) under the latest label publishes
    nothing; under a new label it publishes a new revision with the same files (§8.3 step
    4). Raises `UsageError` for a label already used, and `NetworkError` subclasses when the
    record could not be put.
    """
    check_name(name)
    check_version(version)
    ref = Reference(key.public, name)
    relpaths = list_files(folder, follow_links=follow_links)
    previous = _previous(ctx, ref)

    total = sum((folder / p).stat().st_size for p in relpaths)
    started = time.monotonic()

    def hashed(done: int) -> None:
        elapsed = time.monotonic() - started
        rate = done / elapsed if elapsed > 0 else 0.0
        eta = (total - done) / rate if rate else None
        ctx.emit(Event("hash", f"hashing {len(relpaths)} files", done, total, rate, eta=eta))

    content = ctx.torrents.content_torrent(folder, relpaths, name=name, on_progress=hashed)
    ctx.emit(Event("hash", f"hashed {len(relpaths)} files", total, total))
    files = tuple(FileEntry(p, content.sizes[p], content.file_sha256[p]) for p in relpaths)
    mirrors = tuple(sorted(set(web_seeds)))

    if previous is not None:
        prev_manifest = previous.manifest.manifest
        same_files = (
            prev_manifest.content_infohash == content.infohash_v1
            and prev_manifest.files == files
            and prev_manifest.web_seeds == mirrors
        )
        if same_files and version == prev_manifest.version:
            return _unchanged(ctx, folder, key, previous, content)
        used = {prev_manifest.version, *(row.version for row in prev_manifest.history)}
        if version in used:
            raise UsageError(
                f"version {version!r} of {name} was already published",
                hint=f"the latest is {prev_manifest.version}; choose a new label",
            )

    now = int(time.time())
    manifest = Manifest(
        key.public,
        name,
        version,
        seq=previous.manifest.manifest.seq + 1 if previous else 1,
        created=now,
        content_infohash=content.infohash_v1,
        files=files,
        history=next_history(previous.manifest, previous.infohash) if previous else (),
        prev=previous.manifest.hash if previous else None,
        description=description,
        license=license,
        tags=tuple(sorted(set(tags))),
        web_seeds=mirrors,
    )
    _copy_in(ctx, folder, files)  # every local failure comes before anything is signed
    ctx.emit(Event("sign", f"signing manifest seq {manifest.seq} ({version})"))
    signed = sign_manifest(manifest, key)
    digest = manifest_hash(signed)
    manifest_torrent, manifest_ih = ctx.torrents.blob_torrent(
        ctx.cache.manifest_path(digest).name, signed
    )
    # Remember before anything signed is stored, served or put (spec §8.2, §8.3): a crash
    # from here on never lets this machine sign another manifest with this seq.
    ctx.state.remember(
        KnownModel(key.public, name, manifest.seq, version, digest, manifest_ih, signed)
    )
    _serve(ctx, manifest, signed, digest, manifest_torrent, manifest_ih, content.torrent_bytes)

    record = Record(manifest.seq, version, manifest_ih, digest, now)
    nodes = _put_record(ctx, key, ref, record)
    _put_index_or_warn(ctx, key, name)
    ctx.emit(
        Event("done", f"published {ref.at(version)} (seq {manifest.seq}) to {nodes} DHT nodes")
    )
    return _result(ref, manifest, manifest_ih, digest, nodes, False)


def record_for(verified: VerifiedManifest, manifest_infohash: bytes) -> Record:
    """The record that names a revision: the same bytes each time it is put again."""
    m = verified.manifest
    return Record(m.seq, m.version, manifest_infohash, verified.hash, m.created)


@dataclass(frozen=True)
class _Previous:
    """The newest revision, and whether the DHT serves it (False: only this machine knows)."""

    manifest: VerifiedManifest
    infohash: bytes
    in_dht: bool


def _previous(ctx: Context, ref: Reference) -> _Previous | None:
    """The newest verified revision of this model, from the DHT if it knows a newer one."""
    try:
        # The full lookup timeout: building on a stale revision risks publishing a seq twice.
        resolution = resolve(ctx, ref, patience=ctx.config.dht_timeout)
        return _Previous(resolution.latest, resolution.latest_infohash, not resolution.stale)
    except EquivocationError as exc:
        # Another manifest for a seq this machine signed, under our own key (spec §8.5).
        raise KeyLeakError(
            f"the DHT holds a record of {ref.name} under this key that this machine did not "
            f"sign ({exc.message}); nothing was published"
        ) from exc
    except (NotFoundError, RollbackError):
        # RollbackError: the DHT holds an older record than this machine signed (the put
        # failed, or nodes forgot it). Our own remembered revision is the truth (spec §8.2).
        known = ctx.state.known(ref.publisher, ref.name)
        if known is None:
            return None
        verified = verify_manifest(known.manifest, ref.publisher, ref.name, now=int(time.time()))
        return _Previous(verified, known.manifest_infohash, False)


def _unchanged(
    ctx: Context,
    folder: Path,
    key: SigningKey,
    previous: _Previous,
    content: ContentTorrent,
) -> PublishResult:
    """The folder is the latest revision already: make sure the cache and the DHT have it.

    This is also how an interrupted publish completes (spec §8.3): the revision was signed
    and remembered, and the cache copy or the put did not happen.
    """
    m = previous.manifest.manifest
    ref = Reference(key.public, m.name)
    nodes = 0
    if not ctx.cache.snapshot_dir(key.public, m.name, m.seq).is_dir():
        _copy_in(ctx, folder, m.files)
        verified = previous.manifest
        torrent, ih = ctx.torrents.blob_torrent(
            ctx.cache.manifest_path(verified.hash).name, verified.data
        )
        if ih == previous.infohash:
            _serve(ctx, m, verified.data, verified.hash, torrent, ih, content.torrent_bytes)
    if not previous.in_dht:  # an earlier put failed or was forgotten: put the same record
        record = record_for(previous.manifest, previous.infohash)
        ctx.emit(Event("put", f"putting the record for {m.name} into the DHT again"))
        nodes = _put_record(ctx, key, ref, record)
        _put_index_or_warn(ctx, key, m.name)
    ctx.emit(Event("done", f"unchanged since {m.version}: no new version"))
    return _result(ref, m, previous.infohash, previous.manifest.hash, nodes, True)


def _copy_in(ctx: Context, folder: Path, files: tuple[FileEntry, ...]) -> None:
    """Copy the files to publish into the cache, hashing each copy against `files`.

    Copies, not links: the author may edit the folder in place later (see Cache.add_blob).
    Raises `StoreError` when the cache lacks the space (checked first, naming the bytes
    needed and free) or a write fails, `IntegrityError` when a file changed since hashing.
    """
    needed = [f for f in files if not ctx.cache.has_blob(f)]
    ctx.cache.check_space(sum(f.size for f in needed), what="keeping a copy of the files")
    if needed:
        count = f"{len(needed)} file" + ("s" if len(needed) != 1 else "")
        ctx.emit(Event("cache", f"keeping a copy of {count} in the cache"))
    else:
        ctx.emit(Event("cache", "every file is already in the cache"))
    wait = ctx.config.transfer_timeout
    with ctx.cache.locks.hold(GC, shared=True, timeout=wait, what="the cache (a prune runs)"):
        for entry in needed:
            try:
                ctx.cache.add_blob(folder / entry.path, entry)
            except IntegrityError as exc:
                exc.hint = (
                    "a file changed while it was published; nothing was signed: publish again"
                )
                raise


def _serve(
    ctx: Context,
    m: Manifest,
    signed: bytes,
    digest: bytes,
    manifest_torrent: bytes,
    manifest_ih: bytes,
    content_torrent: bytes,
) -> None:
    """Keep the signed manifest and the snapshot, and serve both torrents from the cache."""
    try:
        manifest_file = ctx.cache.save_manifest(digest, signed)
    except OSError as exc:
        raise StoreError(f"cannot keep the signed manifest: {exc.strerror or exc}") from exc
    wait = ctx.config.transfer_timeout
    with ctx.cache.locks.hold(GC, shared=True, timeout=wait, what="the cache (a prune runs)"):
        snapshot = ctx.cache.snapshot(m.publisher, m.name, m.seq, m.files, signed)
    seeds = ctx.cache.seed_dir(m.content_infohash, m.name, snapshot)
    ctx.seed_torrent(
        SeedEntry(
            manifest_ih,
            "manifest",
            m.publisher,
            m.name,
            m.seq,
            manifest_torrent,
            manifest_file.parent,
        ),
        start=True,
    )
    ctx.seed_torrent(
        SeedEntry(
            m.content_infohash, "content", m.publisher, m.name, m.seq, content_torrent, seeds
        ),
        start=True,
    )


def _put_index_or_warn(ctx: Context, key: SigningKey, name: str) -> None:
    """Put the index after a record: the record is out, so a failure here only warns."""
    try:
        put_index(ctx, key, name)
    except NetworkError as exc:
        ctx.emit(
            Event(
                "index",
                f"warning: the publisher index was not updated ({exc.message}); "
                "`hubless seed --key NAME` or the next publish puts it",
            )
        )


def _put_record(ctx: Context, key: SigningKey, ref: Reference, record: Record) -> int:
    """Put our record and keep the signed item (§8.5); when no node stored it, say whether
    a concurrent publish won.

    The revision is signed, remembered and served already: a failed put leaves a state the
    next publish of the same folder and label (or `seed --key`) completes (spec §8.3).
    """
    ctx.emit(Event("put", f"putting the record for {ref.name} into the DHT"))
    payload = encode_record(record)
    try:
        nodes = ctx.network.dht_put(key, ref.salt, payload, ctx.config.dht_timeout)
    except NetworkError as failed:
        failed.hint = (
            f"seq {record.seq} ({record.version}) is signed and kept here; run the same "
            "publish again (same folder and label) or `hubless seed --key NAME` to put it"
        )
        try:
            items = ctx.network.dht_get(ref.publisher, ref.salt, ctx.config.dht_timeout)
            theirs = choose_record(items, ref.publisher, ref.name, now=int(time.time()))
        except HublessError:
            raise failed from None
        ours = (record.seq, record.manifest_hash)
        if (
            theirs.record.seq >= record.seq
            and (theirs.record.seq, theirs.record.manifest_hash) != ours
        ):
            raise UsageError(
                f"another publish of {ref.name} with this key put seq {theirs.record.seq} "
                f"({theirs.record.version}) while this one was putting seq {record.seq}",
                hint="two publishes of one model ran at once (another process, or another "
                "machine holding this key); check `hubless history`, then publish again",
            ) from failed
        raise
    keep_own_put(ctx, ref.publisher, ref.salt, payload, record.seq)
    ctx.emit(Event("stored", f"the record for {ref.name} is stored on {nodes} DHT nodes"))
    return nodes


def put_index(ctx: Context, key: SigningKey, name: str | None = None) -> int:
    """Put the publisher index record (or its list torrent, when names overflow), adding `name`."""
    names = tuple(ctx.state.mark_published(key.public, name))
    seq = ctx.state.next_index_seq(key.public)
    now = int(time.time())
    try:
        index = build_index(names, seq, now)
    except OversizedError:
        data = encode_name_list(names)
        digest = hashlib.sha256(data).digest()
        path = ctx.cache.save_index_list(digest, data)
        torrent, ih = ctx.torrents.blob_torrent(path.name, data)
        ctx.seed_torrent(
            SeedEntry(ih, "manifest", key.public, INDEX_LIST_NAME, seq, torrent, path.parent),
            start=True,
        )
        index = IndexRecord(seq, now, list_infohash=ih, list_hash=digest)
    ctx.emit(Event("index", f"updating the publisher index ({len(names)} models)"))
    payload = encode_index(index)
    nodes = ctx.network.dht_put(key, INDEX_SALT, payload, ctx.config.dht_timeout)
    keep_own_put(ctx, key.public, INDEX_SALT, payload, index.seq)
    return nodes


def _result(
    ref: Reference, m: Manifest, mih: bytes, digest: bytes, nodes: int, unchanged: bool
) -> PublishResult:
    return PublishResult(
        ref.at(m.version),
        m.seq,
        m.version,
        mih,
        digest,
        m.content_infohash,
        len(m.files),
        m.total_size,
        nodes,
        unchanged,
    )
