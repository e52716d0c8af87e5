"""Partial-file updates: older cached files as the starting content of a download (§8.4).

When a new revision has a file whose bytes are not cached, and a cached revision of the same
model has a file at the same path (or, failing that, of the same size), that file is copied
(a reflink where the filesystem can) to where the download writes, before the torrent starts.
libtorrent checks what it finds on disk and keeps every piece whose SHA-1 matches, so only
the changed pieces of a file travel: the granularity is the content torrent's piece length
(spec §5.6). Nothing here is trusted: every piece is checked by libtorrent and every file by
its SHA-256 before it enters the cache, so a wrong guess costs the copy and nothing else.

Sharing the cache (spec §8.4): `pull` calls this under the content torrent's lock (no other
download writes the same `partial/` folder) and with the model's lock held shared (no `rm`
deletes the snapshots read here; `prune` waits for the `gc` lock). A snapshot another
process repairs meanwhile is only read: a source that vanishes mid-copy means a full download
of that file. Copies are new files created exclusively, so a blob (which snapshot files are
hard links to) is never written. A cache others can write is allowed (it only warns), so
sources are opened from the cache folder down without following any link: a link planted in
a snapshot cannot make a pull copy one of the user's own files into the cache.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable, Sequence
from pathlib import Path

from ..core.manifest import FileEntry, Manifest
from ..files import copy_open, open_regular
from ..store.cache import METADATA_DIR, Cache

#: Revisions searched for a file of the same size when no file has the same path: walking
#: every snapshot of a long history would cost more than it saves.
SIZE_SEARCH_SNAPSHOTS = 3


def _revisions(cache: Cache, manifest: Manifest) -> list[Path]:
    """Cached snapshot folders of the model, nearest revision first (partial ones too)."""
    folder = cache.model_dir(manifest.publisher, manifest.name) / "snapshots"
    found: list[tuple[int, Path]] = []
    if not _plain_folder(cache.root, folder):
        return []
    with contextlib.suppress(OSError):
        for child in folder.iterdir():
            seq_text = child.name.split("~", 1)[0]
            if (
                seq_text.isdigit()
                and int(seq_text) != manifest.seq
                and child.is_dir()
                and not child.is_symlink()
            ):
                found.append((abs(int(seq_text) - manifest.seq), child))
    return [path for _, path in sorted(found)]


def _plain_folder(root: Path, folder: Path) -> bool:
    """Whether `folder` (below `root`) is a folder reached from `root` through no link."""
    probe = root
    try:
        for part in folder.relative_to(root).parts:
            probe = probe / part
            if probe.is_symlink() or not probe.is_dir():
                return False
    except (OSError, ValueError):
        return False
    return True


def _regular(root: Path, path: Path) -> bool:
    """Whether `path` is a regular file reached from `root` without following any link."""
    try:
        os.close(open_regular(root, path.relative_to(root).as_posix()))
    except (OSError, ValueError):
        return False
    return True


def starting_files(
    cache: Cache, manifest: Manifest, needed: Sequence[FileEntry]
) -> dict[str, Path]:
    """For each needed (non-empty) file, a cached file of another revision to start from.

    Same path first, nearest revision first; else a file of exactly the same size in one of
    the `SIZE_SEARCH_SNAPSHOTS` nearest revisions.
    """
    revisions = _revisions(cache, manifest)
    if not revisions:
        return {}
    chosen: dict[str, Path] = {}
    unmatched: list[FileEntry] = []
    for entry in needed:
        if entry.size == 0:
            continue
        source = next(
            (r / entry.path for r in revisions if _regular(cache.root, r / entry.path)), None
        )
        if source is not None:
            chosen[entry.path] = source
        else:
            unmatched.append(entry)
    if unmatched:
        by_size = _files_by_size(revisions[:SIZE_SEARCH_SNAPSHOTS])
        for entry in unmatched:
            if entry.size in by_size:
                chosen[entry.path] = by_size[entry.size]
    return chosen


def _files_by_size(revisions: Iterable[Path]) -> dict[int, Path]:
    sizes: dict[int, Path] = {}
    for root in revisions:
        for folder, dirs, files in os.walk(root):
            if Path(folder) == root:
                dirs[:] = [d for d in dirs if d != METADATA_DIR]
            for name in files:
                path = Path(folder, name)
                with contextlib.suppress(OSError):
                    if not path.is_symlink():
                        sizes.setdefault(path.stat().st_size, path)
    return sizes


def lay_down(
    starts: dict[str, Path], root: Path, sizes: dict[str, int], *, under: Path | None = None
) -> int:
    """Copy each start file to `root/<path>` unless something is there (a resumed download).

    Each source is opened from `under` (the cache folder; else its own folder) down without
    following any link; one that is a link or not a regular file is skipped. A copy longer
    than the new file is cut to its size. Returns the bytes laid down.
    """
    laid = 0
    for path, source in starts.items():
        target = root / path
        if target.exists() or target.is_symlink():
            continue
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            _copy(source, target, under or source.parent)
            if target.stat().st_size > sizes[path]:
                os.truncate(target, sizes[path])
        except (OSError, ValueError):  # only a hint: a failed copy means a full download
            with contextlib.suppress(OSError):
                target.unlink()
            continue
        laid += min(sizes[path], target.stat().st_size)
    return laid


def _copy(source: Path, target: Path, under: Path) -> None:
    """A new file at `target` (0644: libtorrent writes the changed pieces into it) with the
    bytes of `source`, a regular file reached from `under` through no link."""
    src_fd = open_regular(under, source.relative_to(under).as_posix())
    with os.fdopen(src_fd, "rb") as src:
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW
        with os.fdopen(os.open(target, flags, 0o644), "wb") as dst:
            copy_open(src, dst)
