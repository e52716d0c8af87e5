"""Pull a model version into the cache and, if asked, into a folder (spec/PROTOCOL.md §8).

Only files whose SHA-256 is not in the cache are downloaded; every downloaded file is
hashed against the manifest before it enters the cache; the snapshot folder appears by one
rename once complete. Downloads run in `cache/partial/<infohash>` so that a killed pull
continues where it stopped.

Pulls share the cache safely (spec §8.4): a content torrent is downloaded by one process or
thread at a time (a file lock per infohash); the others wait, then find its files in the
cache and download nothing. Every pull holds its model's lock shared (and the cache's `gc`
lock shared), so `hubless rm` and `prune` never delete what a running pull uses. A version
named exactly whose files are all cached is returned without the network.
"""

from __future__ import annotations

import contextlib
import fnmatch
import hashlib
import os
import shutil
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import AbstractContextManager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from ..core.errors import IntegrityError, NoPeersError, OfflineError, UsageError
from ..core.manifest import MAX_MANIFEST_SIZE, FileEntry, Manifest, VerifiedManifest
from ..core.metainfo import Metainfo, check_matches_manifest, parse_metainfo
from ..core.refs import Reference
from ..files import NotRegularFileError, TooLargeError, read_regular
from ..net.contract import Progress
from ..store.cache import METADATA_DIR, materialise, read_selection
from ..store.hashed import Hashed, hash_in_place
from ..store.locks import GC
from ..store.state import SeedEntry
from .bands import Bands, download_priorities
from .context import Context
from .events import Event
from .hfview import add_to_hf_cache
from .partial import lay_down, starting_files
from .resolve import Resolution, no_peer_reason, resolve, resolve_cached
from .verify import check_files

GC_LOCK = GC


def model_lock(manifest_or_ref: Manifest | Reference) -> str:
    """The lock a pull holds shared and `rm` exclusive for one model."""
    return f"model-{manifest_or_ref.publisher.text}-{manifest_or_ref.name}"


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
    hf_cache: Path | None = None  # the Hugging Face cache's repo folder, when linked there

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
            "hf_cache": str(self.hf_cache) if self.hf_cache is not None else None,
        }


Patterns = str | Sequence[str] | None


def patterns(value: Patterns, what: str) -> tuple[str, ...]:
    """Glob patterns from one string or a list of them (a string is one pattern, never its
    characters one by one); `UsageError` for anything else."""
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,)
    if isinstance(value, Sequence) and all(isinstance(v, str) for v in value):
        return tuple(value)
    raise UsageError(f"{what} must be a glob pattern or a list of them, not {value!r}")


@dataclass(frozen=True)
class Selection:
    """Which files of a version to pull: those matching any `include` glob (all when none),
    minus those matching any `exclude` glob. Globs match the whole path (`fnmatch`)."""

    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()

    @classmethod
    def of(cls, include: Patterns = None, exclude: Patterns = None) -> Selection:
        return cls(patterns(include, "include"), patterns(exclude, "exclude"))

    def files(self, manifest: Manifest) -> tuple[FileEntry, ...]:
        """The chosen files; `UsageError` when a selection leaves none."""
        chosen = tuple(
            f
            for f in manifest.files
            if (not self.include or any(fnmatch.fnmatchcase(f.path, g) for g in self.include))
            and not any(fnmatch.fnmatchcase(f.path, g) for g in self.exclude)
        )
        if not chosen:
            asked = ", ".join([*self.include, *(f"not {g}" for g in self.exclude)])
            raise UsageError(f"no file of {manifest.name} matches {asked}")
        return chosen


def select(manifest: Manifest, include: Patterns = None) -> tuple[FileEntry, ...]:
    """The manifest's files matching any of the `include` globs (all files when none)."""
    return Selection.of(include).files(manifest)


def pull(
    ctx: Context,
    ref: Reference,
    *,
    to: Path | None = None,
    include: Patterns = None,
    exclude: Patterns = None,
    allow_yanked: bool = False,
    offline: bool = False,
    hf_cache: bool | None = None,
) -> PullResult:
    """Resolve `ref`, fetch the files not cached, verify each, return the folder (§8.4).

    `hf_cache` (default: `config.hf_cache`) also links the version into the Hugging Face
    cache (`hubless.store.hfcache`).

    Everything local (`to`) is checked before any network work. Raises `UsageError` for a
    `to` that exists and is not an empty folder, or a yanked latest version; `OfflineError`
    when `offline` (or `config.offline`) and something is not in the cache;
    `NetTimeoutError` when another pull of the same files did not finish in time.
    """
    selection = Selection.of(include, exclude)
    if to is not None:
        check_target(to)
    locks = ctx.cache.locks
    wait = ctx.config.transfer_timeout
    with (
        locks.hold(GC_LOCK, shared=True, timeout=wait, what="the cache (a prune or rm runs)"),
        locks.hold(model_lock(ref), shared=True, timeout=wait, what=f"{ref.name} (rm runs)"),
    ):
        result = _pull(ctx, ref, to, selection, allow_yanked, offline)
        if ctx.config.hf_cache if hf_cache is None else hf_cache:
            files = selection.files(result.resolution.target.manifest)
            view = add_to_hf_cache(ctx, result.resolution.target, files)
            result = replace(result, hf_cache=view)
        return result


def _pull(
    ctx: Context,
    ref: Reference,
    to: Path | None,
    selection: Selection,
    allow_yanked: bool,
    offline: bool,
) -> PullResult:
    resolution = resolve_cached(ctx, ref) if not offline else None
    if resolution is not None and any(
        not ctx.cache.has_blob(f) for f in selection.files(resolution.target.manifest)
    ):
        resolution = None  # not all in the cache: ask the network, the version may be yanked
    if resolution is None:
        resolution = resolve(ctx, ref, offline=offline)
    if resolution.yanked is not None and ref.version is None and not allow_yanked:
        raise UsageError(
            f"the latest version of {ref.name} ({resolution.target.manifest.version}) is yanked: "
            f"{resolution.yanked}",
            hint="name a version explicitly, or pass --allow-yanked",
        )
    if resolution.yanked is not None:
        ctx.emit(Event("resolve", f"warning: this version is yanked: {resolution.yanked}"))
    fetched = fetch_release(
        ctx,
        resolution.target,
        include=selection.include,
        exclude=selection.exclude,
        to=to,
        offline=offline,
    )
    return PullResult(
        fetched.path,
        resolution,
        len(fetched.files),
        len(fetched.needed),
        len(fetched.files) - len(fetched.needed),
        fetched.downloaded_bytes,
        sum(f.size for f in fetched.needed),
        fetched.repaired,
    )


@dataclass(frozen=True)
class Fetched:
    """Where a verified release landed, which files it has and which were downloaded."""

    path: Path
    files: tuple[FileEntry, ...]
    needed: tuple[FileEntry, ...]
    downloaded_bytes: int
    repaired: tuple[str, ...] = ()  # cached files found altered and rebuilt (spec §8.4)


def fetch_release(
    ctx: Context,
    target: VerifiedManifest,
    *,
    include: Patterns = None,
    exclude: Patterns = None,
    to: Path | None = None,
    offline: bool = False,
) -> Fetched:
    """Fetch the files of a verified manifest not in the cache, verify each, build the folder.

    The snapshot of a complete selection is seeded. `target` must have passed every rule of
    spec §8.1 (a `Resolution`'s target, a follower's new version). One process or thread
    downloads a content torrent at a time; the others wait (up to the transfer timeout) and
    take what it left in the cache. The disks' free space is checked before downloading
    (`check_room`, under that lock), and a cached snapshot found altered is rebuilt from the
    blobs (§8.4). Raises `UsageError` when no file matches the selection, `StoreError` when
    the disks lack room, `IntegrityError` for a file whose bytes differ from the manifest,
    `OfflineError` when
    files are missing and the network may not be used, `NetTimeoutError` when another
    download of it did not end in time, `StoreError` and the network's errors.
    """
    manifest = target.manifest
    locks = ctx.cache.locks
    wait = ctx.config.transfer_timeout
    with (  # shared: a pull holds them already; a follower's fetch takes them here
        locks.hold(GC_LOCK, shared=True, timeout=wait, what="the cache (a prune or rm runs)"),
        locks.hold(model_lock(manifest), shared=True, timeout=wait, what=f"{manifest.name}"),
    ):
        return _fetch(ctx, target, Selection.of(include, exclude), to, offline)


def _fetch(
    ctx: Context, target: VerifiedManifest, selection: Selection, to: Path | None, offline: bool
) -> Fetched:
    manifest = target.manifest
    files = selection.files(manifest)
    complete = len(files) == len(manifest.files)
    placed = to is not None and _already_placed(to.absolute(), target, files, complete)
    cache = ctx.cache
    needed = tuple(f for f in files if not cache.has_blob(f))
    downloaded = 0
    if needed:
        if offline or ctx.config.offline:
            raise OfflineError(
                f"{len(needed)} of the {len(files)} files of {manifest.name} "
                f"{manifest.version} are not in the cache"
            )
        with _content_lock(ctx, manifest):
            needed = tuple(f for f in files if not cache.has_blob(f))  # what the other left
            if needed:
                check_room(ctx, manifest, list(needed), files, to)
                downloaded = _download(ctx, manifest, list(needed))
    elif to is not None and not placed:
        check_room(ctx, manifest, [], files, to)
    data = target.data
    if complete:
        path, repaired = cache.checked_snapshot(
            manifest.publisher, manifest.name, manifest.seq, files, data
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
                    cache.seed_dir(ih, manifest.name, path),
                )
            )
    else:
        tag = hashlib.sha256("\0".join(f.path for f in files).encode()).hexdigest()[:12]
        path, repaired = cache.checked_snapshot(
            manifest.publisher, manifest.name, manifest.seq, files, data, tag=tag, partial=True
        )
    if repaired:
        ctx.emit(
            Event("verify", f"repaired the cached copy of {manifest.name}: {', '.join(repaired)}")
        )
    if to is not None and placed:
        path = to.absolute()
        ctx.emit(Event("verify", f"{to} already holds {manifest.name} {manifest.version}"))
    elif to is not None:
        # absolute, not resolved: a link at `to` is refused, never followed (spec §8.4)
        path = _place(ctx, manifest, files, to.absolute(), data, partial=not complete)
    ctx.emit(Event("done", f"{manifest.name} {manifest.version} is at {path}"))
    return Fetched(path, files, needed, downloaded, repaired)


def _content_lock(ctx: Context, manifest: Manifest) -> AbstractContextManager[object]:
    """One process or thread downloads a content torrent at a time (a file lock)."""
    return ctx.cache.locks.hold(
        f"content-{manifest.content_infohash.hex()}",
        timeout=ctx.config.transfer_timeout,
        on_wait=lambda: ctx.emit(
            Event("download", f"waiting for another pull of {manifest.name} to finish")
        ),
        what=f"the download of {manifest.name} {manifest.version}",
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
    ctx: Context,
    manifest: Manifest,
    files: tuple[FileEntry, ...],
    to: Path,
    data: bytes,
    *,
    partial: bool,
) -> Path:
    """Copy `files` from the cache to `to`, hashing each copy; a blob found altered is
    removed, fetched again from peers (under the content lock), and the copy made once
    more (spec §8.4)."""
    try:
        return materialise(ctx.cache, files, to, data, link=False, partial=partial)
    except IntegrityError as exc:
        ctx.emit(Event("verify", f"{exc.message}; fetching it again"))
        with _content_lock(ctx, manifest):
            lost = [f for f in files if not ctx.cache.has_blob(f)]
            if not lost:
                raise
            _download(ctx, manifest, lost)
    return materialise(ctx.cache, files, to, data, link=False, partial=partial)


def _pulled_here(to: Path) -> bool:
    """Whether `to` holds the signed manifest a pull places (`.hubless/manifest`, a plain
    file, not through a link): `_already_placed` then decides whether it is this pull's."""
    manifest = to / METADATA_DIR / "manifest"
    return not (to / METADATA_DIR).is_symlink() and manifest.is_file() and not manifest.is_symlink()


def _already_placed(
    to: Path, target: VerifiedManifest, files: tuple[FileEntry, ...], complete: bool
) -> bool:
    """True when `to` already holds exactly this pull: the same signed manifest, the same
    selection, and every selected file verified by size and SHA-256 (a re-run of
    `pull --to DIR`, as huggingface_hub's `local_dir` allows). False for a new or empty `to`.
    Raises `UsageError` for a `to` filled by another pull or whose files were changed."""
    if not to.exists() or not any(to.iterdir()):
        return False
    hint = "choose a new or empty folder for --to, or delete this one to pull into it again"
    try:
        held = read_regular(to, f"{METADATA_DIR}/manifest", MAX_MANIFEST_SIZE)
    except (OSError, NotRegularFileError, TooLargeError):
        held = b""
    what = f"{target.manifest.name} {target.manifest.version}"
    if held != target.data:
        raise UsageError(f"{to} holds another pull than {what}", hint=hint)
    selection = read_selection(to)
    wanted = None if complete else frozenset(f.path for f in files)
    if selection != wanted:
        raise UsageError(f"{to} holds another selection of the files of {what}", hint=hint)
    report = check_files(to, target, files, selected=not complete)
    if not report.ok:
        changed = [*report.missing, *report.modified]
        raise UsageError(
            f"{to} holds {what}, but {len(changed)} of its files differ from it: "
            + ", ".join(changed[:3])
            + (" ..." if len(changed) > 3 else ""),
            hint=hint,
        )
    return True


def check_target(to: Path) -> None:
    """`to` must be a new or empty folder whose parent can be a folder (`UsageError`), or
    a folder a pull filled (`_already_placed` checks it once the version is known).

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
        if any(to.iterdir()) and not _pulled_here(to):
            raise UsageError(f"{to} is not empty", hint=hint)


def content_torrent(ctx: Context, manifest: Manifest) -> tuple[bytes, Metainfo]:
    """The manifest's content .torrent (kept, or from peers), checked to list its files."""
    ih = manifest.content_infohash
    torrent = ctx.cache.torrent(ih) or ctx.network.fetch_metadata(ih, ctx.config.dht_timeout)
    # (callers fetching it hold the content lock: one metadata fetch per infohash at a time)
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
    priorities = download_priorities(meta, wanted)
    folder = ctx.cache.partial_dir(ih)
    total = sum(f.size for f in needed)

    emit = ctx.emitter()  # progress comes on libtorrent's thread, not the caller's
    bands = Bands(priorities)

    def progress(p: Progress) -> None:
        flat = bands.flatten(p)
        if flat is not None:
            with contextlib.suppress(UsageError):  # the download ended meanwhile
                net.set_file_priorities(ih, flat)
        emit(
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
    # Under the content lock (no other download writes this folder) and the model's lock
    # held shared (no `rm` deletes the snapshots read from): older cached files of the
    # model, copied, are where the changed files start; libtorrent keeps every piece of them
    # that hashes right (§8.4), and nothing laid here enters the cache unless it verifies.
    starts = starting_files(ctx.cache, manifest, needed)
    if starts:
        sizes = {f.path: f.size for f in needed}
        laid = lay_down(starts, folder / meta.name, sizes, under=ctx.cache.root)
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
    what = f"{manifest.name} {manifest.version}"
    root = folder / meta.name
    early: dict[str, Future[Hashed | None]] = {}
    # hashlib frees the GIL: two threads hash on both cores, during and after the download
    with ThreadPoolExecutor(max_workers=2, thread_name_prefix="sha256") as pool:

        def written(indices: list[int]) -> None:
            for i in indices:
                path = meta.files[i].path
                if path in wanted and path not in early:
                    early[path] = pool.submit(hash_in_place, root / path)

        try:
            net.wait_finished(
                ih, ctx.config.transfer_timeout, cancel=ctx.cancel, on_written=written
            )
            downloaded = net.payload_downloaded(ih)
        except NoPeersError as exc:
            raise NoPeersError(
                f"nobody is serving the files of {what} (content torrent {ih.hex()}): "
                f"{no_peer_reason(exc, ih)}"
            ) from exc
        except IntegrityError as exc:
            raise IntegrityError(f"{what}: {exc.message}", hint=exc.hint or None) from exc
        finally:
            net.remove(ih)
        ctx.emit(Event("verify", f"verifying {len(needed)} files ({total:,} bytes)", 0, total))

        def admit(entry: FileEntry) -> None:
            hashed = early[entry.path].result() if entry.path in early else None
            path = root / entry.path
            if entry.size == 0 and not path.exists():
                # An empty file has no piece: libtorrent may never create it on disk.
                path.parent.mkdir(parents=True, exist_ok=True)
                path.touch()
            ctx.cache.add_blob(path, entry, move=True, hashed=hashed)

        list(pool.map(admit, needed))
    ctx.emit(Event("verify", f"verified {len(needed)} files", total, total))
    shutil.rmtree(folder, ignore_errors=True)
    return downloaded
