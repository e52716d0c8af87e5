"""Moved to `hubless.files` (the network layer needs it too); kept while callers move."""

from ..files import atomic_write, fsync_dir, private_dir

__all__ = ["atomic_write", "fsync_dir", "private_dir"]
