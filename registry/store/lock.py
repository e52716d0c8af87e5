"""One daemon per home: an advisory lock on a file in the data folder (spec §8.5).

`fcntl.flock` is held by the open file, and the kernel drops it when the process dies, however
it dies: a daemon killed with `kill -9` leaves no stale lock behind, unlike a pid file whose
process may be gone (or whose pid may have been reused). The holder writes its pid into the
file so that a refused second daemon can name the running one. POSIX only (as is the rest
of the daemon's signal handling).
"""

from __future__ import annotations

import fcntl
import os
import time
from pathlib import Path
from types import TracebackType

from ..core.errors import StoreError, UsageError

LOCK_NAME = "daemon.lock"
_ATTEMPTS = 5


class DaemonRunningError(UsageError):
    """Another daemon already serves this home."""

    def __init__(self, path: Path, pid: int | None) -> None:
        who = f"pid {pid}" if pid else "a process whose pid is not written yet"
        super().__init__(
            f"a hubless daemon already runs for this home ({who}; lock {path})",
            hint="it serves everything this home publishes and pulls; stop it first to start "
            "another (kill " + (str(pid) if pid else "it") + ")",
        )
        self.pid = pid


def _read_pid(path: Path) -> int | None:
    try:
        text = path.read_text().strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None


class HomeLock:
    """The daemon lock of the home whose data folder is `data_dir`; use as a context manager."""

    def __init__(self, data_dir: Path) -> None:
        self.path = data_dir / LOCK_NAME
        self._fd: int | None = None

    def acquire(self) -> None:
        """Take the lock and write our pid; `DaemonRunningError` names the holder."""
        if self._fd is not None:
            return
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise StoreError(f"cannot open the daemon lock {self.path}: {exc.strerror}") from exc
        for attempt in range(_ATTEMPTS):  # `running_daemon` holds a shared lock for an instant
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if attempt + 1 == _ATTEMPTS:
                    os.close(fd)
                    raise DaemonRunningError(self.path, _read_pid(self.path)) from None
                time.sleep(0.05)
            except OSError as exc:
                os.close(fd)
                raise StoreError(f"cannot lock {self.path}: {exc.strerror}") from exc
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        os.fsync(fd)
        self._fd = fd

    def release(self) -> None:
        if self._fd is None:
            return
        fd, self._fd = self._fd, None
        try:
            os.ftruncate(fd, 0)
        finally:
            os.close(fd)  # closing the descriptor drops the lock

    def __enter__(self) -> HomeLock:
        self.acquire()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()


def running_daemon(data_dir: Path) -> int | None:
    """The pid of the daemon holding `data_dir`'s lock, 0 if its pid is unknown, None if no
    daemon runs. A probe: a shared lock that fails means somebody holds the exclusive one."""
    path = data_dir / LOCK_NAME
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return _read_pid(path) or 0
    except OSError:
        return None
    finally:
        os.close(fd)  # also releases the shared lock if we got it
    return None
