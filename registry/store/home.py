"""Who else can write this identity's folders: checked on start, as ssh does for its keys.

The data folder holds the rollback memory (spec §8.2) and the keys folder the publisher's
seeds; another local user who can write either, or rename a folder above them, can wipe
the memory or swap the keys. So hubless refuses to start (`StoreError`) when the data or
keys folder is group- or world-writable or owned by another user, or when a folder above
the data folder is writable by others without the sticky bit (which, as on /tmp, stops
them renaming what they do not own). The cache is re-downloadable and every file that
leaves it is checked (spec §8.4), so a cache others can write only warns.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from ..core.errors import StoreError

_OTHERS_WRITE = stat.S_IWGRP | stat.S_IWOTH


def check_home(data_dir: Path, keys_dir: Path, cache_dir: Path) -> list[str]:
    """Refuse a data or keys folder others can change; return warnings about the cache.

    Folders that do not exist yet are skipped (they are created private); links are
    resolved first, so the check applies to the folders actually used.
    """
    data = data_dir.resolve()
    for folder in (keys_dir.resolve(), data):
        problem = _problem(folder, own=True)
        if problem:
            raise _refusal(folder, problem)
    for folder in data.parents:
        problem = _problem(folder, own=False)
        if problem:
            raise _refusal(folder, problem)
    warnings = []
    cache = cache_dir.resolve()
    for folder in (cache, *cache.parents):
        problem = _problem(folder, own=folder == cache)
        if problem:
            warnings.append(
                f"warning: the cache folder {folder} is {problem}; they could delete or "
                "replace cached files (hubless checks what it hands out, but may fetch it again)"
            )
            break
    return warnings


def _problem(folder: Path, *, own: bool) -> str:
    """Why another user could change `folder` ('' when they cannot, or it does not exist)."""
    try:
        st = os.stat(folder)
    except FileNotFoundError:
        return ""
    if st.st_uid not in (os.getuid(), 0):
        return f"owned by another user (uid {st.st_uid})"
    if st.st_mode & _OTHERS_WRITE and (own or not st.st_mode & stat.S_ISVTX):
        who = "group and others" if st.st_mode & stat.S_IWOTH else "its group"
        return f"writable by other users ({who}; mode {stat.S_IMODE(st.st_mode):o})"
    return ""


def _refusal(folder: Path, problem: str) -> StoreError:
    fix = "chown $USER" if problem.startswith("owned") else "chmod go-w"
    return StoreError(
        f"refusing to use {folder}: it is {problem}, so they could change this identity's "
        "keys or its memory of the newest versions",
        hint=f"{fix} {folder}  (or choose another --home)",
    )
