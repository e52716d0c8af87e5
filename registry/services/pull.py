"""Pull a model version into the cache and, if asked, into a folder (spec/PROTOCOL.md §8).

Only files whose SHA-256 is not in the cache are downloaded; every downloaded file is
hashed against the manifest before it enters the cache; the snapshot folder appears by one
rename once complete. Downloads run in `cache/partial/<infohash>` so that a killed pull
continues where it stopped.
"""

from __future__ import annotations

import fnmatch
import hashlib
import shutil
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..core.errors import UsageError
from ..core.manifest import FileEntry, Manifest
from ..core.metainfo import Metainfo, check_matches_manifest, parse_metainfo
from ..core.refs import Reference
from ..net.contract import Progress
from ..store.cache import materialise
from ..store.state import SeedEntry
from .context import Context
from .events import Event
from .partial import lay_down, starting_files
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
    downloaded = _download(ctx, manifest, needed) if needed else 0
    complete = len(files) == len(manifest.files)
    cache = ctx.cache
    if complete:
        snapshot = cache.snapshot(
            manifest.publisher, manifest.name, manifest.seq, files, resolution.target.data
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
        path = materialise(cache, files, to.resolve(), resolution.target.data, link=False)
    elif not complete:
        tag = hashlib.sha256("\0".join(f.path for f in files).encode()).hexdigest()[:12]
        final = cache.snapshot_dir(manifest.publisher, manifest.name, manifest.seq)
        path = final.with_name(f"{final.name}~{tag}")
        if not path.is_dir():
            path = materialise(cache, files, path, resolution.target.data)
    fetched = sum(f.size for f in needed)
    ctx.emit(Event("done", f"{manifest.name} {manifest.version} is at {path}"))
    return PullResult(
        path, resolution, len(files), len(needed), len(files) - len(needed), downloaded, fetched
    )


def check_target(to: Path) -> None:
    """`to` must be a new or empty folder whose parent can be a folder (`UsageError`)."""
    hint = "choose a new or empty folder for --to"
    for parent in to.absolute().parents:
        if parent.exists() and not parent.is_dir():
            raise UsageError(f"cannot create {to}: {parent} is a file, not a folder", hint=hint)
        if parent.is_dir():
            break
    if to.exists() or to.is_symlink():
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
    starts = starting_files(ctx.cache, manifest, needed)
    if starts:  # libtorrent keeps every piece of these that hashes right (§8.4)
        laid = lay_down(starts, folder / meta.name, {f.path: f.size for f in needed})
        ctx.emit(
            Event("download", f"starting {len(starts)} files from cached versions ({laid:,} bytes)")
        )
    net.download(
        torrent,
        folder,
        file_priorities=priorities,
        on_progress=progress,
        web_seeds=manifest.web_seeds,
    )
    try:
        net.wait_finished(ih, ctx.config.transfer_timeout)
        downloaded = net.payload_downloaded(ih)
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
