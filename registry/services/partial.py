"""Partial-file updates: older cached files as the starting content of a download (§8.4).

When a new revision has a file whose bytes are not cached, and a cached revision of the same
model has a file at the same path (or, failing that, of the same size), that file is copied
(a reflink where the filesystem can) to where the download writes, before the torrent starts.
libtorrent checks what it finds on disk and keeps every piece whose SHA-1 matches, so only
the changed pieces of a file travel: the granularity is the content torrent's piece length
(spec §5.6). Nothing here is trusted: every piece is checked by libtorrent and every file by
its SHA-256 before it enters the cache, so a wrong guess costs the copy and nothing else.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable, Sequence
from pathlib import Path

from ..core.manifest import FileEntry, Manifest
from ..store.cache import METADATA_DIR, Cache, copy_file

#: Revisions searched for a file of the same size when no file has the same path: walking
#: every snapshot of a long history would cost more than it saves.
SIZE_SEARCH_SNAPSHOTS = 3


def _revisions(cache: Cache, manifest: Manifest) -> list[Path]:
    """Cached snapshot folders of the model, nearest revision first (partial ones too)."""
    folder = cache.model_dir(manifest.publisher, manifest.name) / "snapshots"
    found: list[tuple[int, Path]] = []
    with contextlib.suppress(OSError):
        for child in folder.iterdir():
            seq_text = child.name.split("~", 1)[0]
            if seq_text.isdigit() and int(seq_text) != manifest.seq and child.is_dir():
                found.append((abs(int(seq_text) - manifest.seq), child))
    return [path for _, path in sorted(found)]


def _regular(path: Path) -> bool:
    try:
        return path.is_file() and not path.is_symlink()
    except OSError:
        return False


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
        source = next((r / entry.path for r in revisions if _regular(r / entry.path)), None)
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


def lay_down(starts: dict[str, Path], root: Path, sizes: dict[str, int]) -> int:
    """Copy each start file to `root/<path>` unless something is there (a resumed download).

    A copy longer than the new file is cut to its size. Returns the bytes laid down.
    """
    laid = 0
    for path, source in starts.items():
        target = root / path
        if target.exists() or target.is_symlink():
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            copy_file(source, target)
            os.chmod(target, 0o644)  # blobs are read-only; libtorrent must write the changes
            if target.stat().st_size > sizes[path]:
                os.truncate(target, sizes[path])
        except OSError:  # only a hint: a failed copy means a full download of this file
            with contextlib.suppress(OSError):
                target.unlink()
            continue
        laid += min(sizes[path], target.stat().st_size)
    return laid
