"""Filesystem helpers for every layer that writes: atomic writes, copies, private folders.

It imports nothing from hubless, so the network layer and the store can both use it; it
raises `OSError`s and the callers turn them into the typed errors of their layer.

Every operation here works across filesystems (spec/PROTOCOL.md §8.4): a rename, hard link
or kernel copy that the kernel refuses with `EXDEV` (two mounts) falls back to a plain copy,
as `shutil` does. Temporary names are made by `tempfile` (unpredictable, created
exclusively) and carry the creating process's id, so a later process can tell the leftovers
of a killed one (`remove_stale`) from the work of one still running.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import secrets
import shutil
import stat
import tempfile
from pathlib import Path

_FICLONE = 0x40049409  # ioctl: clone a whole file (btrfs, xfs, bcachefs)
# copy_file_range refuses these where a plain read/write copy works (another filesystem,
# an old kernel, a filesystem without support); shutil falls back on the same set.
_NO_KERNEL_COPY = frozenset(
    {errno.EXDEV, errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP, errno.ETXTBSY, errno.EPERM}
)
_CHUNK = 4 * 1024 * 1024


def atomic_write(path: Path, data: bytes, *, mode: int = 0o644) -> None:
    """Write `data` to `path` so that a crash leaves the old file or the new, never half."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    fsync_dir(path.parent)


def fsync_dir(folder: Path) -> None:
    """Make a rename inside `folder` durable."""
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def private_dir(path: Path) -> Path:
    """Create `path` (and parents) readable by the owner only."""
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(path, 0o700)
    return path


# --- copies, links and renames that work across filesystems --------------------------------


def copy_file(source: Path, target: Path) -> None:
    """Copy bytes: a copy-on-write clone where the filesystem can, else a kernel copy, else
    a plain read/write copy (another filesystem: `EXDEV`). `target` is created or truncated."""
    with open(source, "rb") as src, open(target, "wb") as dst:
        try:
            fcntl.ioctl(dst.fileno(), _FICLONE, src.fileno())
            return
        except OSError:
            pass
        if not _kernel_copy(src.fileno(), dst.fileno()):
            shutil.copyfileobj(src, dst, _CHUNK)


def _kernel_copy(src: int, dst: int) -> bool:
    """copy_file_range from the current offsets; False if the kernel cannot (copy by hand)."""
    size = os.fstat(src).st_size
    copied = 0
    while copied < size:
        try:
            n = os.copy_file_range(src, dst, size - copied)
        except OSError as exc:
            if exc.errno in _NO_KERNEL_COPY:
                return False  # the file offsets say where the plain copy goes on
            raise
        if n == 0:
            break
        copied += n
    return True


def link_or_copy(source: Path, target: Path) -> None:
    """A hard link to `source` at `target`, or a copy where links cannot be made."""
    try:
        os.link(source, target)
    except OSError as exc:
        if exc.errno in (errno.EEXIST, errno.ENOSPC, errno.EDQUOT):
            raise
        copy_file(source, target)


def move_file(source: Path, target: Path) -> None:
    """Rename `source` to `target`; across filesystems copy to a temp name there first."""
    try:
        os.replace(source, target)
        return
    except OSError as exc:
        if exc.errno != errno.EXDEV:
            raise
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    os.close(fd)
    try:
        copy_file(source, Path(tmp))
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    os.unlink(source)


# --- temporary names, and the leftovers of killed processes --------------------------------


def temp_name_prefix(name: str) -> str:
    """The prefix of this process's temporary names for `name`: `.<name>.<pid>.`."""
    return f".{name}.{os.getpid()}."


def make_temp_dir(parent: Path, name: str, suffix: str = ".partial", *, mode: int = 0o777) -> Path:
    """A new folder next to where `name` will appear, with an unpredictable name.

    Created exclusively (`mkdir` of a random name, as `mkdtemp` does, but with `mode` less
    the umask): a file or link planted at a guessable name is never followed or reused.
    """
    for _ in range(100):
        path = parent / f"{temp_name_prefix(name)}{secrets.token_hex(6)}{suffix}"
        try:
            os.mkdir(path, mode)
        except FileExistsError:
            continue
        return path
    raise FileExistsError(errno.EEXIST, "no free temporary name", str(parent))


def make_temp_file(parent: Path, name: str, suffix: str = ".tmp") -> Path:
    """A new empty file (0600) next to where `name` will appear, with an unpredictable name."""
    fd, tmp = tempfile.mkstemp(dir=parent, prefix=temp_name_prefix(name), suffix=suffix)
    os.close(fd)
    return Path(tmp)


def pid_alive(pid: int) -> bool:
    """Whether a process with this id exists (a reused id counts: its files are kept)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_stale(parent: Path, name: str | None = None, suffix: str = "") -> list[Path]:
    """Remove temporary entries `.<name>.<pid>.*<suffix>` in `parent` whose process is gone.

    With `name` None, any `.<something>.<pid>.*<suffix>` entry. Links are removed, never
    followed. Returns what was removed.
    """
    removed: list[Path] = []
    try:
        entries = list(os.scandir(parent))
    except FileNotFoundError:
        return removed
    for entry in entries:
        pid = _temp_pid(entry.name, name, suffix)
        if pid is None or pid_alive(pid):
            continue
        path = Path(entry.path)
        with contextlib.suppress(FileNotFoundError):
            if entry.is_dir(follow_symlinks=False):
                shutil.rmtree(path)
            else:
                path.unlink()
        removed.append(path)
    return removed


def _temp_pid(entry: str, name: str | None, suffix: str) -> int | None:
    if not entry.startswith(".") or not entry.endswith(suffix):
        return None
    if name is not None:
        head = f".{name}."
        if not entry.startswith(head):
            return None
        rest = entry[len(head) :]
    else:
        parts = entry[1:].split(".")
        rest = ".".join(parts[1:]) if len(parts) > 2 else ""
    pid_text = rest.split(".", 1)[0]
    return int(pid_text) if pid_text.isdigit() else None


# --- reading files hubless did not write -----------------------------------------------------


class NotRegularFileError(OSError):
    """The path is a symbolic link, a folder, a FIFO, a device or a socket, not a file."""


class TooLargeError(OSError):
    """The file is larger than the caller's bound."""


def open_regular(root: Path, relpath: str) -> int:
    """Open `root/relpath` for reading without following any link below `root`.

    Every folder on the way is opened with `O_NOFOLLOW | O_DIRECTORY` and the file with
    `O_NOFOLLOW | O_NONBLOCK` (a FIFO does not block), then checked to be a regular file.
    Raises `NotRegularFileError` (a link, FIFO, device, socket or folder), or the `OSError`
    of the failing open (`FileNotFoundError` when a part is missing). Returns the descriptor.
    """
    parts = [p for p in relpath.split("/") if p]
    if not parts or any(p in (".", "..") for p in parts):
        raise NotRegularFileError(errno.EINVAL, "not a plain relative path", relpath)
    dir_fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
    try:
        for part in parts[:-1]:
            try:
                nxt = os.open(part, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=dir_fd)
            except OSError as exc:
                if exc.errno in (errno.ELOOP, errno.ENOTDIR):
                    raise NotRegularFileError(
                        errno.ELOOP, "a folder on the way is a link or a file", relpath
                    ) from None
                raise
            os.close(dir_fd)
            dir_fd = nxt
        try:
            fd = os.open(parts[-1], os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK, dir_fd=dir_fd)
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                raise NotRegularFileError(errno.ELOOP, "a symbolic link", relpath) from None
            raise
    finally:
        os.close(dir_fd)
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise NotRegularFileError(errno.EINVAL, "not a regular file", relpath)
    os.set_blocking(fd, True)
    return fd


def read_regular(root: Path, relpath: str, max_size: int) -> bytes:
    """The bytes of a regular file below `root` (see `open_regular`), at most `max_size`.

    Raises `TooLargeError` for a larger file, before reading it.
    """
    fd = open_regular(root, relpath)
    with os.fdopen(fd, "rb") as f:
        size = os.fstat(f.fileno()).st_size
        if size > max_size:
            raise TooLargeError(errno.EFBIG, f"{size} bytes; the limit is {max_size}", relpath)
        data = f.read(max_size + 1)
    if len(data) > max_size:  # grew after the check
        raise TooLargeError(errno.EFBIG, f"over {max_size} bytes", relpath)
    return data
