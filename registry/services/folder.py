"""Which files of a folder a publish signs, and what it refuses (spec/PROTOCOL.md §8.3 step 1).

Everything a publish would not carry as a file is refused by name instead of skipped: a
symbolic link that leaves the folder, points at a folder, dangles or loops, and FIFOs,
sockets and devices. A link to a file that the folder publishes anyway is published as
that file. `follow_links` publishes what every link points to, wherever it is (a Hugging
Face cache snapshot is a folder of links into `../../blobs`); dangling links and loops are
still refused. Only folders named in `SKIPPED_DIRS` are left out, silently.
"""

from __future__ import annotations

import errno
import os
import stat
from dataclasses import dataclass, field
from pathlib import Path

from ..core.errors import HostilePathError, UsageError
from ..core.manifest import MAX_FILES
from ..core.paths import check_paths

SKIPPED_DIRS = frozenset({".git", ".hubless", ".cache", "__pycache__"})
_NAMED = 5  # refused entries named in the message; the rest are counted


@dataclass
class _Walk:
    root: Path
    follow_links: bool
    files: list[str] = field(default_factory=list)
    inner_links: list[tuple[str, str]] = field(default_factory=list)  # (link, target rel)
    refused: list[tuple[str, str]] = field(default_factory=list)  # (path, why)


def check_folder(folder: Path, *, follow_links: bool = False) -> list[str]:
    """Refuse, before any passphrase or network, a folder that cannot be published as is.

    Returns `list_files(folder)`; raises what it raises.
    """
    return list_files(folder, follow_links=follow_links)


def list_files(folder: Path, *, follow_links: bool = False) -> list[str]:
    """Relative POSIX paths of the files to publish under `folder`, sorted (spec §8.3).

    `folder` itself may be a link (the user named it). Raises `UsageError` for a path that is
    not a folder, an empty folder, any refused entry (all named, up to five), more files than
    a manifest may list, or a path breaking spec §6.
    """
    if not folder.is_dir():
        raise UsageError(f"{folder} is not a folder")
    walk = _Walk(folder.resolve(), follow_links)
    real = walk.root.stat()
    _walk(walk, walk.root, "", ((real.st_dev, real.st_ino),))
    listed = set(walk.files)
    for link, target in walk.inner_links:
        if target in listed:
            walk.files.append(link)
        else:
            walk.refused.append((link, "a link to a file the folder does not publish"))
    if walk.refused:
        raise _refusal(folder, walk.refused, follow_links)
    if not walk.files:
        raise UsageError(f"{folder} holds no files to publish")
    found = sorted(walk.files)
    try:
        check_paths(found)
    except HostilePathError as exc:
        raise UsageError(f"cannot publish {folder}: {exc.message}") from exc
    return found


def _walk(
    walk: _Walk, real_dir: Path, rel_dir: str, ancestors: tuple[tuple[int, int], ...]
) -> None:
    try:
        entries = sorted(os.scandir(real_dir), key=lambda e: e.name)
    except OSError as exc:
        walk.refused.append((rel_dir or ".", f"an unreadable folder ({exc.strerror})"))
        return
    for entry in entries:
        rel = f"{rel_dir}/{entry.name}" if rel_dir else entry.name
        if len(walk.files) + len(walk.inner_links) > MAX_FILES:
            raise UsageError(f"{walk.root} holds more than {MAX_FILES:,} files to publish")
        if entry.name in SKIPPED_DIRS and entry.is_dir(follow_symlinks=True):
            continue
        st = entry.stat(follow_symlinks=False)
        if stat.S_ISDIR(st.st_mode):
            _walk(walk, Path(entry.path), rel, (*ancestors, (st.st_dev, st.st_ino)))
        elif stat.S_ISREG(st.st_mode):
            walk.files.append(rel)
        elif stat.S_ISLNK(st.st_mode):
            _link(walk, Path(entry.path), rel, ancestors)
        else:
            walk.refused.append((rel, "not a regular file (a FIFO, socket or device)"))


def _link(walk: _Walk, path: Path, rel: str, ancestors: tuple[tuple[int, int], ...]) -> None:
    try:
        target = path.resolve(strict=True)
        st = target.stat()
    except FileNotFoundError:
        walk.refused.append((rel, "a dangling link"))
        return
    except RuntimeError:
        walk.refused.append((rel, "a link loop"))
        return
    except OSError as exc:
        why = "a link loop" if exc.errno == errno.ELOOP else f"an unreadable link ({exc.strerror})"
        walk.refused.append((rel, why))
        return
    if walk.follow_links:
        if stat.S_ISREG(st.st_mode):
            walk.files.append(rel)
        elif stat.S_ISDIR(st.st_mode):
            if (st.st_dev, st.st_ino) in ancestors:
                walk.refused.append((rel, "a link loop (a folder that contains it)"))
            else:
                _walk(walk, target, rel, (*ancestors, (st.st_dev, st.st_ino)))
        else:
            walk.refused.append((rel, "a link to something that is not a regular file"))
        return
    try:
        inner = target.relative_to(walk.root).as_posix()
    except ValueError:
        inner = None
    if stat.S_ISDIR(st.st_mode):
        walk.refused.append((rel, "a link to a folder"))
    elif inner is None:
        kind = "file" if stat.S_ISREG(st.st_mode) else "special file"
        walk.refused.append((rel, f"a link to a {kind} outside the folder"))
    elif not stat.S_ISREG(st.st_mode):
        walk.refused.append((rel, "a link to something that is not a regular file"))
    else:
        walk.inner_links.append((rel, inner))


def _refusal(folder: Path, refused: list[tuple[str, str]], follow_links: bool) -> UsageError:
    refused.sort()
    named = "; ".join(f"{path} ({why})" for path, why in refused[:_NAMED])
    more = f"; and {len(refused) - _NAMED} more" if len(refused) > _NAMED else ""
    hint = "remove or replace them, or publish a copy of the folder"
    if not follow_links and any("link" in why and "loop" not in why for _, why in refused):
        hint += (
            "; --follow-links publishes what links point to wherever it is (for example a "
            "Hugging Face cache snapshot)"
        )
    return UsageError(
        f"cannot publish {folder}: {len(refused)} "
        f"{'entry' if len(refused) == 1 else 'entries'} would not be published as "
        f"files: {named}{more}",
        hint=hint,
    )
