"""Pull a model version into the cache and, if asked, into a folder (spec/PROTOCOL.md §8).

Only files whose SHA-256 is not in the cache are downloaded; every downloaded file is
hashed against the manifest before it enters the cache; the snapshot folder appears by one
rename once complete. Downloads run in `cache/partial/<infohash>` so that a killed pull
continues where it stopped.
"""

from __future__ import annotations

import fnmatch
import hashlib
import os
import shutil
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..core.errors import IntegrityError, NoPeersError, UsageError
from ..core.manifest import FileEntry, Manifest
from ..core.metainfo import Metainfo, check_matches_manifest, parse_metainfo
from ..core.refs import Reference
from ..net.contract import Progress
from ..store.cache import materialise
from ..store.state import SeedEntry
from .context import Context
from .events import Event
from .resolve import Resolution, resolve


@dataclass(frozen=True)
class PullResult:
    path: Path
    resolution: Resolution
    files: int
    fetched_files: int
    reused_files: int
    downloaded_bytes: int
    fetched_size: int
    repaired: tuple[str, ...] = ()

    def __repr__(self) -> str:
        m = self.resolution.target.manifest
        return (
            f"PullResult({self.resolution.reference.at(m.version)}, path={str(self.path)!r}, "
            f"files={self.files}, fetched={self.fetched_files}, reused={self.reused_files}, "
            f"downloaded_bytes={self.downloaded_bytes})"
        )

    def summary(self) -> dict[str, Any]:
        return {
            **self.resolution.summary(),
            "path": str(self.path),
            "files": self.files,
            "fetched_files": self.fetched_files,
            "reused_files": self.reused_files,
            "downloaded_bytes": self.downloaded_bytes,
            "fetched_size": self.fetched_size,
            "repaired_files": list(self.repaired),
        }


def select(manifest: Manifest, include: tuple[str, ...]) -> tuple[FileEntry, ...]:
    """The manifest's files matching any of the `include` globs (all files when none)."""
    if not include:
        return manifest.files
    chosen = tuple(
        f for f in manifest.files if any(fnmatch.fnmatchcase(f.path, g) for g in include)
    )
    if not chosen:
        raise UsageError(f"no file of {manifest.name} matches {', '.join(include)}")
    return chosen


def pull(
    ctx: Context,
    ref: Reference,
    *,
    to: Path | None = None,
    include: tuple[str, ...] = (),
    allow_yanked: bool = False,
) -> PullResult:
    """Resolve `ref`, fetch the files not cached, verify each, return the folder (§8.4).

    Everything local (`to`) is checked before any network work. Raises `UsageError` for a
    `to` that exists and is not an empty folder, or a yanked latest version.
    """
    if to is not None:
        check_target(to)
    resolution = resolve(ctx, ref)
    if resolution.yanked is not None and ref.version is None and not allow_yanked:
        raise UsageError(
            f"the latest version of {ref.name} ({resolution.target.manifest.version}) is yanked: "
            f"{resolution.yanked}",
            hint="name a version explicitly, or pass --allow-yanked",
        )
    if resolution.yanked is not None:
        ctx.emit(Event("resolve", f"warning: this version is yanked: {resolution.yanked}"))
    manifest = resolution.target.manifest
    files = select(manifest, include)
    needed = [f for f in files if not ctx.cache.has_blob(f)]
    check_room(ctx, manifest, needed, files, to)
    downloaded = _download(ctx, manifest, needed) if needed else 0
    complete = len(files) == len(manifest.files)
    cache = ctx.cache
    repaired: tuple[str, ...] = ()
    if complete:
        snapshot, repaired = cache.checked_folder(
            cache.snapshot_dir(manifest.publisher, manifest.name, manifest.seq),
            files,
            resolution.target.data,
        )
        ih = manifest.content_infohash
        torrent = cache.torrent(ih)
        if torrent is not None:
            ctx.seed_torrent(
                SeedEntry(
                    ih,
                    "content",
                    manifest.publisher,
                    manifest.name,
                    manifest.seq,
                    torrent,
                    cache.seed_dir(ih, manifest.name, snapshot),
                )
            )
        path = snapshot
    if to is not None:
        path = _place(ctx, manifest, files, to.absolute(), resolution.target.data)
    elif not complete:
        tag = hashlib.sha256("\0".join(f.path for f in files).encode()).hexdigest()[:12]
        final = cache.snapshot_dir(manifest.publisher, manifest.name, manifest.seq)
        path, repaired = cache.checked_folder(
            final.with_name(f"{final.name}~{tag}"), files, resolution.target.data
        )
    if repaired:
        ctx.emit(
            Event("verify", f"repaired the cached copy of {manifest.name}: {', '.join(repaired)}")
        )
    fetched = sum(f.size for f in needed)
    ctx.emit(Event("done", f"{manifest.name} {manifest.version} is at {path}"))
    return PullResult(
        path,
        resolution,
        len(files),
        len(needed),
        len(files) - len(needed),
        downloaded,
        fetched,
        repaired,
    )


def check_room(
    ctx: Context,
    manifest: Manifest,
    needed: list[FileEntry],
    files: tuple[FileEntry, ...],
    to: Path | None,
) -> None:
    """Refuse before downloading when the disks lack room (`StoreError`, spec §8.4).

    The cache's disk needs the files still to download (less what a killed pull already
    wrote into `partial/`); a `--to` folder needs a copy of every selected file, on the same
    disk as the cache or its own.
    """
    what = f"pulling {manifest.name} {manifest.version}"
    partial = ctx.cache.partial_dir(manifest.content_infohash) / manifest.name
    download = sum(max(0, f.size - _allocated(partial / f.path)) for f in needed)
    copies = sum(f.size for f in files) if to is not None else 0
    if to is not None and not _same_disk(to, ctx.cache.root):
        ctx.cache.check_space(copies, to.absolute(), what=f"{what} into {to}")
        copies = 0
    ctx.cache.check_space(download + copies, ctx.cache.partial_root, what=what)


def _allocated(path: Path) -> int:
    try:
        return os.stat(path).st_blocks * 512
    except OSError:
        return 0


def _same_disk(path: Path, other: Path) -> bool:
    probe = path.absolute()
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    return os.stat(probe).st_dev == os.stat(other).st_dev


def _place(
    ctx: Context, manifest: Manifest, files: tuple[FileEntry, ...], to: Path, data: bytes
) -> Path:
    """Copy `files` from the cache to `to`, hashing each copy; a blob found altered is
    removed, fetched again from peers, and the copy made once more (spec §8.4)."""
    try:
        return materialise(ctx.cache, files, to, data, link=False)
    except IntegrityError as exc:
        lost = [f for f in files if not ctx.cache.has_blob(f)]
        if not lost:
            raise
        ctx.emit(Event("verify", f"{exc.message}; fetching it again"))
        _download(ctx, manifest, lost)
    return materialise(ctx.cache, files, to, data, link=False)


def check_target(to: Path) -> None:
    """`to` must be a new or empty folder whose parent can be a folder (`UsageError`).

    A `to` that is a symbolic link is refused, whether it points at an empty folder or at
    nothing (spec §8.4): files land only at the path the user named. Links among its
    parents are the user's own and are followed.
    """
    hint = "choose a new or empty folder for --to"
    if to.is_symlink():
        raise UsageError(
            f"{to} is a symbolic link; pull does not write through links",
            hint="name the folder it points to, or a new folder",
        )
    for parent in to.absolute().parents:
        if parent.exists() and not parent.is_dir():
            raise UsageError(f"cannot create {to}: {parent} is a file, not a folder", hint=hint)
        if parent.is_dir():
            break
    if to.exists():
        if not to.is_dir():
            raise UsageError(f"{to} exists and is not a folder", hint=hint)
        if any(to.iterdir()):
            raise UsageError(f"{to} is not empty", hint=hint)


def content_torrent(ctx: Context, manifest: Manifest) -> tuple[bytes, Metainfo]:
    """The manifest's content .torrent (kept, or from peers), checked to list its files."""
    ih = manifest.content_infohash
    torrent = ctx.cache.torrent(ih) or ctx.network.fetch_metadata(ih, ctx.config.dht_timeout)
    meta = parse_metainfo(torrent)
    check_matches_manifest(meta, manifest)
    ctx.cache.save_torrent(ih, torrent)
    return torrent, meta


def _download(ctx: Context, manifest: Manifest, needed: list[FileEntry]) -> int:
    """Fetch `needed` files of the content torrent into the cache; return payload bytes."""
    net = ctx.network
    ih = manifest.content_infohash
    ctx.emit(Event("download", f"finding peers for {manifest.name} {manifest.version}"))
    torrent, meta = content_torrent(ctx, manifest)
    wanted = {f.path for f in needed}
    priorities = [1 if (not f.pad and f.path in wanted) else 0 for f in meta.files]
    folder = ctx.cache.partial_dir(ih)
    total = sum(f.size for f in needed)

    def progress(p: Progress) -> None:
        ctx.emit(
            Event(
                "download",
                f"downloading {manifest.name} {manifest.version}",
                p.done,
                p.wanted,
                p.rate,
                p.peers,
                p.eta,
            )
        )

    ctx.stop_seeding(ih)  # a seeded copy whose blob went missing: download it afresh
    net.download(torrent, folder, file_priorities=priorities, on_progress=progress)
    what = f"{manifest.name} {manifest.version}"
    try:
        net.wait_finished(ih, ctx.config.transfer_timeout)
        downloaded = net.payload_downloaded(ih)
    except NoPeersError as exc:
        raise NoPeersError(
            f"nobody is serving the files of {what} (content torrent {ih.hex()}): {exc.message}"
        ) from exc
    except IntegrityError as exc:
        raise IntegrityError(f"{what}: {exc.message}", hint=exc.hint or None) from exc
    finally:
        net.remove(ih)
    ctx.emit(Event("verify", f"verifying {len(needed)} files ({total:,} bytes)", 0, total))
    root = folder / meta.name

    def admit(entry: FileEntry) -> None:
        ctx.cache.add_blob(root / entry.path, entry, move=True)

    with ThreadPoolExecutor(max_workers=2) as pool:  # hashlib frees the GIL: use both cores
        list(pool.map(admit, needed))
    ctx.emit(Event("verify", f"verified {len(needed)} files", total, total))
    shutil.rmtree(folder, ignore_errors=True)
    return downloaded
