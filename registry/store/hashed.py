"""A file's SHA-256 taken where it lies, and whether the file was written since.

A pull hashes each downloaded file as soon as it is complete on disk, while the rest of the
release downloads (spec §8.4). The file enters the cache later, by a rename: the digest
still describes it when the renamed file is the same one, unchanged since (same device,
inode and size, same modification time). Anything else is hashed again.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

Identity = tuple[int, int, int, int]  # device, inode, size, modification time in ns


def identity(path: Path) -> Identity:
    """What tells one version of a file from another; `OSError` when it cannot be read."""
    st = os.stat(path, follow_symlinks=False)
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)


@dataclass(frozen=True)
class Hashed:
    """The SHA-256 of a file as it was while it was read, and that file's `identity`."""

    sha256: bytes
    identity: Identity

    def still_describes(self, path: Path) -> bool:
        """True when `path` is the file that was hashed, not written since."""
        try:
            return identity(path) == self.identity
        except OSError:
            return False


def hash_in_place(path: Path) -> Hashed | None:
    """The SHA-256 of the regular file at `path`, or None when it changed while it was read
    or cannot be read (the caller then hashes it later as usual)."""
    try:
        before = identity(path)
        with open(path, "rb") as f:
            digest = hashlib.file_digest(f, "sha256").digest()
        after = identity(path)
    except OSError:
        return None
    return Hashed(digest, before) if after == before else None
