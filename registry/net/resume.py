"""Resume data on disk: one file per torrent, written atomically.

A crash at any moment leaves either the previous resume file or the new one; a torrent
without one is re-added with a full check of the files already on disk.
"""

from __future__ import annotations

import contextlib
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

    def load(self, infohash: bytes) -> bytes | None:
        try:
            return self._path(infohash).read_bytes()
        except FileNotFoundError:
            return None

    def forget(self, infohash: bytes) -> None:
        with contextlib.suppress(FileNotFoundError):
            self._path(infohash).unlink()
