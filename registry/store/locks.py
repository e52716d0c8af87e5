"""File locks that wait: how processes and threads sharing one home take turns (spec §8.4).

A lock is `flock(2)` on a file under `<cache>/locks/`. Each acquisition opens the file
anew, so two threads of one process exclude each other exactly as two processes do (flock
locks belong to the open file, not to the process). A holder that dies releases its locks
with its file descriptors: nothing is ever left locked by a crash. Lock files are never
deleted (deleting one while another process is about to lock it would let two hold it).

Shared locks let any number of pulls of a model run while `hubless rm` (exclusive) waits or
refuses. The standard library's `fcntl.flock` is all this needs; it is Linux and macOS only,
as the cache's reflink copies already are.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from ..core.errors import NetTimeoutError, StoreError

#: Held shared by everything that adds blobs and links them (pull, publish, import), and
#: exclusively by what deletes blobs (`rm`'s freeing, `prune`).
GC = "gc"

_POLL_FIRST = 0.01  # seconds between attempts while waiting, doubling ...
_POLL_MAX = 0.25  # ... up to this


class Busy(StoreError):
    """A lock another process or thread holds, asked for without waiting."""


class Locks:
    """Named locks under `folder` (one file per name)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)

    def path(self, name: str) -> Path:
        return self.folder / f"{name}.lock"

    @contextlib.contextmanager
    def hold(
        self,
        name: str,
        *,
        shared: bool = False,
        timeout: float | None = None,
        on_wait: Callable[[], None] | None = None,
        what: str = "",
    ) -> Iterator[None]:
        """Hold lock `name` for the `with` block, waiting up to `timeout` seconds for it.

        `timeout` None waits without end; 0 does not wait and raises `Busy` at once.
        `on_wait` is called once when the lock is taken by someone else (to say why this
        one waits). Raises `NetTimeoutError` when `timeout` (> 0) passes first: waiting for
        another pull is waiting for a download. `what` names the lock in messages.
        """
        fd = os.open(self.path(name), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            _acquire(fd, shared, timeout, on_wait, what or name)
            try:
                yield
            finally:
                fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)

    def busy(self, name: str) -> bool:
        """Whether anybody holds lock `name` right now (shared or exclusive)."""
        try:
            with self.hold(name, timeout=0):
                return False
        except Busy:
            return True


def _acquire(
    fd: int, shared: bool, timeout: float | None, on_wait: Callable[[], None] | None, what: str
) -> None:
    mode = fcntl.LOCK_SH if shared else fcntl.LOCK_EX
    deadline = None if timeout is None else time.monotonic() + timeout
    delay = _POLL_FIRST
    told = False
    while True:
        try:
            fcntl.flock(fd, mode | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            pass
        if timeout == 0:
            raise Busy(f"{what} is in use by another process or thread")
        if not told and on_wait is not None:
            on_wait()
            told = True
        if deadline is not None and time.monotonic() >= deadline:
            raise NetTimeoutError(f"waited {timeout:g}s for {what}; another process holds it")
        time.sleep(delay if deadline is None else min(delay, max(0.0, deadline - time.monotonic())))
        delay = min(delay * 2, _POLL_MAX)
