"""What the cache holds, and taking it away: `list`, `rm` and `prune` (spec §8.4).

Snapshots are the roots: a blob is in use while some snapshot lists it. `rm` removes
snapshots and then frees the blobs no remaining snapshot lists; `prune` frees every blob no
snapshot lists, abandoned partial downloads and temporary leftovers. Neither touches what a
running pull uses: a pull holds its model's lock and the cache's `gc` lock shared, `rm`
takes the model's exclusively and `prune` the `gc` lock exclusively, without waiting.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..core.errors import HublessError, StoreError, UsageError
from ..core.keys import PublicKey
from ..core.manifest import FileEntry, Manifest, verify_manifest
from ..core.refs import Reference
from ..store.cache import METADATA_DIR, Cache, read_selection
from ..store.locks import Busy
from .context import Context
from .events import Event
from .hfview import remove_from_hf_cache
from .pull import GC_LOCK, model_lock

SELECTION_FILE = "selection"


@dataclass(frozen=True)
class CachedVersion:
    """One snapshot folder: a complete version, or a partial selection of its files."""

    manifest: Manifest = field(repr=False)
    manifest_hash: bytes = field(repr=False)
    path: Path
    files: tuple[FileEntry, ...] = field(repr=False)  # those the folder holds
    partial: bool
    seeded: bool = False

    @property
    def size(self) -> int:
        return sum(f.size for f in self.files)

    def summary(self) -> dict[str, Any]:
        m = self.manifest
        return {
            "version": m.version,
            "seq": m.seq,
            "path": str(self.path),
            "files": len(self.files),
            "size": self.size,
            "partial": self.partial,
            "seeded": self.seeded,
        }


@dataclass(frozen=True)
class CachedModel:
    publisher: PublicKey
    name: str
    versions: tuple[CachedVersion, ...]
    size_on_disk: int  # bytes of the distinct blobs its versions use

    def summary(self) -> dict[str, Any]:
        return {
            "reference": f"{self.publisher.text}/{self.name}",
            "publisher": self.publisher.text,
            "name": self.name,
            "size_on_disk": self.size_on_disk,
            "versions": [v.summary() for v in self.versions],
        }


@dataclass(frozen=True)
class Listing:
    models: tuple[CachedModel, ...]
    size_on_disk: int  # distinct blobs used by any snapshot, each counted once
    unused_blobs: int  # bytes of blobs no snapshot uses (what prune frees)
    partial_downloads: tuple[tuple[str, int], ...]  # (infohash hex, bytes so far)

    def summary(self) -> dict[str, Any]:
        return {
            "models": [m.summary() for m in self.models],
            "size_on_disk": self.size_on_disk,
            "unused_blobs": self.unused_blobs,
            "partial_downloads": [
                {"infohash": ih, "size": size} for ih, size in self.partial_downloads
            ],
        }


@dataclass(frozen=True)
class Removal:
    """What `rm` or `prune` removed (or, with `dry_run`, would remove)."""

    removed: tuple[str, ...]  # what went, as paths or references
    freed: int  # bytes given back to the filesystem
    deferred: int = 0  # bytes `prune` will free once the pulls running now end
    dry_run: bool = False

    def summary(self) -> dict[str, Any]:
        return {
            "removed": list(self.removed),
            "freed": self.freed,
            "deferred": self.deferred,
            "dry_run": self.dry_run,
        }


# --- reading the cache ---------------------------------------------------------------------


def snapshots(cache: Cache) -> Iterator[CachedVersion]:
    """Every snapshot folder with a valid `.hubless/manifest`, in path order."""
    models = cache.root / "models"
    for key_dir in sorted(models.iterdir()) if models.is_dir() else ():
        try:
            publisher = PublicKey.parse(key_dir.name)
        except HublessError:
            continue
        for model_dir in sorted(key_dir.iterdir()):
            version = _versions(publisher, model_dir.name, model_dir / "snapshots")
            yield from version


def model_versions(ctx: Context, ref: Reference) -> list[CachedVersion]:
    """Every snapshot (complete or partial) of `ref`'s model in the cache."""
    folder = ctx.cache.model_dir(ref.publisher, ref.name) / "snapshots"
    return list(_versions(ref.publisher, ref.name, folder))


def _versions(publisher: PublicKey, name: str, folder: Path) -> Iterator[CachedVersion]:
    if not folder.is_dir():
        return
    now = int(time.time())
    for snap in sorted(folder.iterdir(), key=_seq_order):
        if snap.name.startswith(".") or not snap.is_dir():
            continue
        try:
            data = (snap / METADATA_DIR / "manifest").read_bytes()
            verified = verify_manifest(data, publisher, name, now=now)
        except (OSError, HublessError):
            continue  # not a snapshot this client made: leave it alone
        manifest = verified.manifest
        partial = "~" in snap.name
        files = manifest.files
        if partial:
            try:
                chosen = read_selection(snap)
            except HublessError:
                chosen = None
            files = tuple(
                f
                for f in files
                if (f.path in chosen if chosen is not None else (snap / f.path).is_file())
            )
        yield CachedVersion(manifest, verified.hash, snap, files, partial)


def _seq_order(path: Path) -> tuple[int, str]:
    head = path.name.split("~")[0]
    return (int(head), path.name) if head.isdigit() else (-1, path.name)


def list_cache(ctx: Context) -> Listing:
    """Models and versions in the cache, sizes counting shared blobs once (spec §8.4)."""
    seeded = {(e.publisher, e.name, e.seq) for e in ctx.state.seeds() if e.kind == "content"}
    by_model: dict[tuple[PublicKey, str], list[CachedVersion]] = {}
    for v in snapshots(ctx.cache):
        m = v.manifest
        mark = not v.partial and (m.publisher, m.name, m.seq) in seeded
        by_model.setdefault((m.publisher, m.name), []).append(
            CachedVersion(v.manifest, v.manifest_hash, v.path, v.files, v.partial, mark)
        )
    models = []
    used: set[bytes] = set()
    for (publisher, name), versions in sorted(
        by_model.items(), key=lambda i: (i[0][1], i[0][0].text)
    ):
        blobs = {f.sha256 for v in versions for f in v.files}
        used |= blobs
        models.append(CachedModel(publisher, name, tuple(versions), _blob_bytes(ctx.cache, blobs)))
    on_disk = _all_blobs(ctx.cache)
    unused = sum(size for sha, size in on_disk.items() if sha not in used)
    partial = ctx.cache.root / "partial"
    downloads = (
        tuple((p.name, _tree_size(p)) for p in sorted(partial.iterdir()) if p.is_dir())
        if partial.is_dir()
        else ()
    )
    return Listing(tuple(models), _blob_bytes(ctx.cache, used), unused, downloads)


def _blob_bytes(cache: Cache, blobs: set[bytes]) -> int:
    total = 0
    for sha in blobs:
        with contextlib.suppress(FileNotFoundError):
            total += cache.blob(sha).stat().st_size
    return total


def _all_blobs(cache: Cache) -> dict[bytes, int]:
    found: dict[bytes, int] = {}
    for entry in os.scandir(cache.blobs):
        if entry.name.startswith(".") or len(entry.name) != 64:
            continue
        try:
            found[bytes.fromhex(entry.name)] = entry.stat().st_size
        except (ValueError, OSError):
            continue
    return found


def _tree_size(folder: Path) -> int:
    total = 0
    for root, _, names in os.walk(folder):
        for name in names:
            with contextlib.suppress(OSError):
                total += os.lstat(os.path.join(root, name)).st_size
    return total


# --- rm ------------------------------------------------------------------------------------


def remove(ctx: Context, ref: Reference, *, seqs: frozenset[int] | None = None) -> Removal:
    """Remove `ref`'s snapshots (one version, or all) and free the blobs nothing else uses.

    `seqs` narrows the choice to those revisions (labels can repeat; seqs cannot).

    Stops seeding the removed versions (the seeds table forgets them). Raises `UsageError`
    when nothing of `ref` is cached, and `StoreError` while a pull of the model runs.
    Blobs a running pull of another model may be about to use are left for `prune`
    (`Removal.deferred`).
    """
    try:
        with ctx.cache.locks.hold(model_lock(ref), timeout=0):
            return _remove(ctx, ref, seqs)
    except Busy:
        raise StoreError(
            f"a pull of {ref.name} is running in this home",
            hint="try again when it has finished",
        ) from None


def _remove(ctx: Context, ref: Reference, seqs: frozenset[int] | None) -> Removal:
    chosen = [
        v
        for v in model_versions(ctx, ref)
        if (ref.version is None or v.manifest.version == ref.version)
        and (seqs is None or v.manifest.seq in seqs)
    ]
    if not chosen:
        raise UsageError(f"{ref} is not in the cache", hint="see what is: hubless list")
    candidates: set[bytes] = set()
    removed: list[str] = []
    for v in chosen:
        m = v.manifest
        candidates |= {f.sha256 for f in v.files}
        _delete_folder(v.path)
        removed.append(f"{ref.at(m.version)}" + (" (partial)" if v.partial else ""))
        if not v.partial:
            ih = m.content_infohash
            ctx.state.remove_seed(ih)
            if ctx.network_started:
                ctx.stop_seeding(ih)
            shutil.rmtree(ctx.cache.root / "seed" / ih.hex(), ignore_errors=True)
    for v in {v.manifest.seq: v for v in chosen}.values():
        remove_from_hf_cache(ctx, v.manifest, v.manifest_hash)
    ctx.emit(Event("rm", f"removed {len(chosen)} snapshot(s) of {ref.name}"))
    freed, deferred = _free(ctx, candidates)
    return Removal(tuple(removed), freed, deferred)


def _delete_folder(folder: Path) -> None:
    """Remove a folder so that it vanishes at once (one rename), then delete its files."""
    doomed = folder.with_name(f".{folder.name}.{os.getpid()}.removing")
    try:
        os.replace(folder, doomed)
    except OSError as exc:
        raise StoreError(f"cannot remove {folder}: {exc.strerror}") from exc
    shutil.rmtree(doomed, ignore_errors=True)


def _free(ctx: Context, candidates: set[bytes]) -> tuple[int, int]:
    """Delete the `candidates` no snapshot uses; (bytes freed, bytes left for prune)."""
    try:
        with ctx.cache.locks.hold(GC_LOCK, timeout=0):
            used = {f.sha256 for v in snapshots(ctx.cache) for f in v.files}
            freed = 0
            for sha in candidates - used:
                freed += _unlink(ctx.cache.blob(sha))
            return freed, 0
    except Busy:
        pending = candidates - {f.sha256 for v in snapshots(ctx.cache) for f in v.files}
        return 0, _blob_bytes(ctx.cache, pending)


def _unlink(path: Path) -> int:
    try:
        size = path.stat().st_size
        path.unlink()
    except FileNotFoundError:
        return 0
    return size


# --- prune ---------------------------------------------------------------------------------


def prune(ctx: Context, *, dry_run: bool = False) -> Removal:
    """Free blobs no snapshot uses, abandoned partial downloads and temporary leftovers.

    With `dry_run`, only says what would go. Raises `StoreError` while any pull runs in
    this home (pulls hold the `gc` lock shared).
    """
    try:
        with ctx.cache.locks.hold(GC_LOCK, timeout=0):
            return _prune(ctx, dry_run)
    except Busy:
        raise StoreError(
            "a pull or publish is running in this home", hint="try again when it has finished"
        ) from None


def _prune(ctx: Context, dry_run: bool) -> Removal:
    cache = ctx.cache
    used = {f.sha256 for v in snapshots(cache) for f in v.files}
    doomed: list[tuple[Path, int]] = []
    for sha, size in _all_blobs(cache).items():
        if sha not in used:
            doomed.append((cache.blob(sha), size))
    for entry in os.scandir(cache.blobs):
        if entry.name.startswith(".") and entry.name.endswith(".tmp"):
            doomed.append((Path(entry.path), entry.stat(follow_symlinks=False).st_size))
    partial = cache.root / "partial"
    for folder in sorted(partial.iterdir()) if partial.is_dir() else ():
        doomed.append((folder, _tree_size(folder)))
    models = cache.root / "models"
    for snaps in sorted(models.glob("*/*/snapshots")):
        for leftover in sorted(snaps.iterdir()):
            if leftover.name.startswith("."):  # a build or removal that was interrupted
                doomed.append((leftover, _tree_size(leftover)))
    seeds = cache.root / "seed"
    for folder in sorted(seeds.iterdir()) if seeds.is_dir() else ():
        links = list(folder.iterdir())
        if all(not link.exists() for link in links):  # every link dangles
            doomed.append((folder, 0))
    freed = sum(size for _, size in doomed)
    if not dry_run:
        for path, _ in doomed:
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path, ignore_errors=True)
            else:
                with contextlib.suppress(FileNotFoundError):
                    path.unlink()
        ctx.emit(Event("prune", f"freed {freed:,} bytes"))
    return Removal(tuple(str(p) for p, _ in doomed), freed, 0, dry_run)
