"""Resume data on disk: one file per torrent, written atomically.

A crash at any moment leaves either the previous resume file or the new one; a torrent
without one is re-added with a full check of the files already on disk.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

from ..files import atomic_write


class ResumeStore:
    """`<folder>/<infohash hex>.resume` files, as libtorrent's `write_resume_data_buf` made them."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def _path(self, infohash: bytes) -> Path:
        return self.folder / f"{infohash.hex()}.resume"

    def save(self, infohash: bytes, data: bytes) -> None:
        atomic_write(self._path(infohash), data)

    def load(self, infohash: bytes, data_folder: Path | None = None) -> bytes | None:
        """Saved resume data, unless files under `data_folder` changed after it was saved.

        After SIGKILL the newest resume file is up to one save interval old; trusting it would
        fetch again every piece finished since. Stale data is dropped, so libtorrent checks
        the files on disk instead and keeps every piece that hashes right.
        """
        path = self._path(infohash)
        try:
            saved_at = path.stat().st_mtime
            data = path.read_bytes()
        except FileNotFoundError:
            return None
        if data_folder is not None and _newest_mtime(data_folder) > saved_at:
            return None
        return data

    def forget(self, infohash: bytes) -> None:
        with contextlib.suppress(FileNotFoundError):
            self._path(infohash).unlink()


def _newest_mtime(folder: Path) -> float:
    """The latest modification time of any file below `folder` (links not followed)."""
    newest = 0.0
    for root, _, names in os.walk(folder):
        for name in names:
            with contextlib.suppress(OSError):
                newest = max(newest, os.lstat(os.path.join(root, name)).st_mtime)
    return newest
