"""Filesystem fixtures for the edge tests: listings to compare, a second filesystem, a small one.

`listing(root, skip)` records every entry below `root` without following links (type, size,
mode, mtime, link target), so a test can assert that a command wrote nothing outside the
folders it was allowed to write. `other_fs` is a folder on another filesystem than the test's
tmp_path (tmpfs under /dev/shm); `small_fs(size)` mounts a tmpfs of that size (root only).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import stat
import subprocess
import uuid
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

import pytest

Entry = tuple[str, int, int, int, str]


def listing(root: Path, skip: Iterable[Path] = ()) -> dict[str, Entry]:
    """Every entry below `root` (links not followed), except the folders in `skip`."""
    skipped = {os.path.abspath(p) for p in skip}
    found: dict[str, Entry] = {}
    for folder, dirs, files in os.walk(root, followlinks=False):
        dirs[:] = [d for d in dirs if os.path.join(folder, d) not in skipped]
        for name in dirs + files:
            path = os.path.join(folder, name)
            if path in skipped:
                continue
            st = os.lstat(path)
            target = os.readlink(path) if stat.S_ISLNK(st.st_mode) else ""
            size = 0 if stat.S_ISDIR(st.st_mode) else st.st_size
            found[os.path.relpath(path, root)] = (
                stat.S_IFMT(st.st_mode),
                size,
                stat.S_IMODE(st.st_mode),
                st.st_mtime_ns if not stat.S_ISDIR(st.st_mode) else 0,
                target,
            )
    return found


def changes(before: dict[str, Entry], after: dict[str, Entry]) -> list[str]:
    """What differs between two listings, one line per path (empty: nothing changed)."""
    out = [f"new {p}" for p in sorted(after.keys() - before.keys())]
    out += [f"gone {p}" for p in sorted(before.keys() - after.keys())]
    out += [f"changed {p}" for p in sorted(before.keys() & after.keys()) if before[p] != after[p]]
    return out


@pytest.fixture()
def other_fs(tmp_path: Path) -> Iterator[Path]:
    """A fresh folder on another filesystem than tmp_path (tmpfs), removed afterwards."""
    shm = Path("/dev/shm")
    if not shm.is_dir() or os.stat(shm).st_dev == os.stat(tmp_path).st_dev:
        pytest.skip("no second filesystem (/dev/shm) on this machine")
    folder = shm / f"hubless-test-{uuid.uuid4().hex[:12]}"
    folder.mkdir(mode=0o700)
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture()
def small_fs(tmp_path: Path) -> Iterator[Callable[[int], Path]]:
    """`small_fs(bytes)`: a folder on a tmpfs of that size (skips where mounting is refused)."""
    mounted: list[Path] = []

    def make(size: int) -> Path:
        point = tmp_path / f"small-{len(mounted)}"
        point.mkdir()
        done = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={size},mode=0700", "tmpfs", str(point)],
            capture_output=True,
            check=False,
        )
        if done.returncode != 0:
            pytest.skip(f"cannot mount a small tmpfs here: {done.stderr.decode().strip()}")
        mounted.append(point)
        return point

    yield make
    for point in mounted:
        with contextlib.suppress(OSError):
            subprocess.run(["umount", "-l", str(point)], check=False, capture_output=True)
