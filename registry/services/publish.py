"""Publish a model folder as a new signed version (spec/PROTOCOL.md §4, §5, §7).

Hash once into the content torrent and the file SHA-256s, extend the history of the
previous revision, sign the manifest, serve both torrents, then put the record and the
publisher index. Publishing an unchanged folder again makes no new version.
"""

from __future__ import annotations

import hashlib
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..core.errors import (
    HostilePathError,
    HublessError,
    NetworkError,
    NotFoundError,
    OversizedError,
    RollbackError,
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
from ..core.paths import check_paths
from ..core.record import Record, encode_record
from ..core.refs import Reference, check_name, check_version
from ..core.trust import choose_record
from ..core.webseeds import WebSeed
from ..net.contract import ContentTorrent
from ..store.state import KnownModel, SeedEntry
from .context import Context
from .events import Event
from .resolve import resolve

SKIPPED_DIRS = frozenset({".git", ".hubless", ".cache", "__pycache__"})


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


def check_folder(folder: Path) -> None:
    """Refuse, before any passphrase or network, a path that is not a folder to publish."""
    if not folder.is_dir():
        raise UsageError(f"{folder} is not a folder")


def list_files(folder: Path) -> list[str]:
    """Relative POSIX paths of the regular files under `folder`, checked like a manifest's."""
    if not folder.is_dir():
        raise UsageError(f"{folder} is not a folder")
    found: list[str] = []
    for root, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if d not in SKIPPED_DIRS)
        for name in files:
            path = Path(root, name)
            if path.is_file():
                found.append(path.relative_to(folder).as_posix())
    if not found:
        raise UsageError(f"{folder} holds no files to publish")
    found.sort()
    try:
        check_paths(found)
    except HostilePathError as exc:
        raise UsageError(f"cannot publish {folder}: {exc.message}") from exc
    return found


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
    web_seeds: tuple[WebSeed, ...] = (),
) -> PublishResult:
    """Publish `folder` as version `version` of model `name` under `key` (spec §8.3).

    An unchanged folder (same files and web seeds) under the latest label publishes
    nothing; under a new label it publishes a new revision with the same files (§8.3 step
    4). `web_seeds` (§5.8) are signed into the manifest. Raises `UsageError` for a label
    already used, and `NetworkError` subclasses when the record could not be put.
    """
    check_name(name)
    check_version(version)
    ref = Reference(key.public, name)
    relpaths = list_files(folder)
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
    ctx.emit(Event("sign", f"signing manifest seq {manifest.seq} ({version})"))
    signed = sign_manifest(manifest, key)
    digest = manifest_hash(signed)
    manifest_file = ctx.cache.save_manifest(digest, signed)
    manifest_torrent, manifest_ih = ctx.torrents.blob_torrent(manifest_file.name, signed)

    # Serve right away from the folder just hashed; the cache copy comes after the put.
    seeds = ctx.cache.seed_dir(content.infohash_v1, name, folder)
    m_seed = SeedEntry(
        manifest_ih,
        "manifest",
        key.public,
        name,
        manifest.seq,
        manifest_torrent,
        manifest_file.parent,
    )
    c_seed = SeedEntry(
        content.infohash_v1, "content", key.public, name, manifest.seq, content.torrent_bytes, seeds
    )
    ctx.seed_torrent(m_seed)
    ctx.seed_torrent(c_seed, remember=False)
    # Remember before the put: a crash after the put must never reuse this seq (spec §8.2).
    ctx.state.remember(
        KnownModel(key.public, name, manifest.seq, version, digest, manifest_ih, signed)
    )

    record = Record(manifest.seq, version, manifest_ih, digest, now)
    ctx.emit(Event("put", f"putting the record for {name} into the DHT"))
    nodes = _put_record(ctx, key, ref, record)
    ctx.emit(Event("stored", f"the record for {name} is stored on {nodes} DHT nodes"))
    put_index(ctx, key, name)

    _keep(ctx, folder, c_seed, files, signed)
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
        resolution = resolve(ctx, ref)
        return _Previous(resolution.latest, resolution.latest_infohash, not resolution.stale)
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
    """The folder is the latest revision already: make sure the DHT and the cache have it."""
    m = previous.manifest.manifest
    ref = Reference(key.public, m.name)
    nodes = 0
    if not previous.in_dht:  # an earlier put failed or was forgotten: put the same record
        record = record_for(previous.manifest, previous.infohash)
        ctx.emit(Event("put", f"putting the record for {m.name} into the DHT again"))
        nodes = _put_record(ctx, key, ref, record)
        put_index(ctx, key, m.name)
    if not ctx.cache.snapshot_dir(key.public, m.name, m.seq).is_dir():
        seeds = ctx.cache.seed_dir(content.infohash_v1, m.name, folder)
        c_seed = SeedEntry(
            content.infohash_v1, "content", key.public, m.name, m.seq, content.torrent_bytes, seeds
        )
        _keep(ctx, folder, c_seed, m.files, previous.manifest.data)
    ctx.emit(Event("done", f"unchanged since {m.version}: no new version"))
    return _result(ref, m, previous.infohash, previous.manifest.hash, nodes, True)


def _keep(
    ctx: Context, folder: Path, c_seed: SeedEntry, files: tuple[FileEntry, ...], signed: bytes
) -> None:
    """Copy the published files into the cache and serve them from there from now on.

    Copies, not links: the author may edit the folder in place later (see Cache.add_blob).
    """
    ctx.emit(Event("cache", f"keeping a copy of {len(files)} files in the cache"))
    for entry in files:
        ctx.cache.add_blob(folder / entry.path, entry)
    snapshot = ctx.cache.snapshot(c_seed.publisher, c_seed.name, c_seed.seq, files, signed)
    ctx.cache.seed_dir(c_seed.infohash, c_seed.name, snapshot)  # same bytes, now ours
    ctx.state.add_seed(c_seed)


def _put_record(ctx: Context, key: SigningKey, ref: Reference, record: Record) -> int:
    """Put our record; when no node stored it, say whether a concurrent publish won."""
    try:
        return ctx.network.dht_put(key, ref.salt, encode_record(record), ctx.config.dht_timeout)
    except NetworkError as failed:
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
            SeedEntry(ih, "manifest", key.public, "hubless-index", seq, torrent, path.parent)
        )
        index = IndexRecord(seq, now, list_infohash=ih, list_hash=digest)
    ctx.emit(Event("index", f"updating the publisher index ({len(names)} models)"))
    return ctx.network.dht_put(key, INDEX_SALT, encode_index(index), ctx.config.dht_timeout)


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
