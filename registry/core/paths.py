"""Safety rules for file paths named by a manifest (spec/PROTOCOL.md §6).

Paths come from the network and become files on a user's disk, so they are checked here,
once, with their own table of tests: relative POSIX paths, no `..`, no escapes, nothing a
Windows or macOS filesystem would fold into another file of the same manifest, nothing in
the folder `.hubless/` that every pulled folder keeps for itself. Folding follows Unicode
14.0.0, and code points that version leaves unassigned are refused (§6 rule 13).
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable

from .errors import HostilePathError
from .unicode14 import is_assigned

MAX_PATH_BYTES = 1024
MAX_SEGMENT_BYTES = 255
RESERVED_FOLDER = ".hubless"  # every pulled folder's own metadata: .hubless/manifest
_FORBIDDEN_CHARS = frozenset('\\:*?"<>|')
_WINDOWS_DEVICES = frozenset(
    ["con", "prn", "aux", "nul", "conin$", "conout$", "clock$"]
    + [
        f"{port}{n}"
        for port in ("com", "lpt")
        for n in [*"0123456789", "\u00b9", "\u00b2", "\u00b3"]
    ]
)
# Invisible characters that make two different names look alike, or reorder what is shown.
_INVISIBLE = frozenset(
    "\u200b\u200c\u200d\u200e\u200f\u2060\ufeff\u00ad"
    "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
)


def is_device_name(segment: str) -> bool:
    """True for names Windows maps to a device, with or without an extension."""
    return segment.split(".")[0].rstrip(" ").lower() in _WINDOWS_DEVICES


def check_path(path: str) -> str:
    """Return `path` if it is a safe relative POSIX file path, else raise `HostilePathError`.

    Applies rules 1-14 of spec §6 to one path: at most 1024 bytes of UTF-8, segments of at
    most 255 bytes, only code points assigned in Unicode 14.0.0, not below `.hubless/`.
    """
    if not isinstance(path, str) or not path:
        raise HostilePathError("file path is empty")
    shown = repr(path[:120])
    if len(path.encode("utf-8", "surrogatepass")) > MAX_PATH_BYTES:
        raise HostilePathError(f"file path {shown} is longer than {MAX_PATH_BYTES} bytes")
    for ch in path:
        code = ord(ch)
        if code < 0x20 or 0x7F <= code <= 0x9F:
            raise HostilePathError(f"file path {shown} contains a control character")
        if 0xD800 <= code <= 0xDFFF:
            raise HostilePathError(f"file path {shown} contains a lone surrogate")
        if code >= 0x80 and not is_assigned(ch):
            raise HostilePathError(
                f"file path {shown} contains U+{code:04X}, which Unicode 14.0.0 does not assign"
            )
        if ch in _FORBIDDEN_CHARS:
            raise HostilePathError(f"file path {shown} contains {ch!r}")
        if ch in _INVISIBLE:
            raise HostilePathError(
                f"file path {shown} contains invisible character U+{ord(ch):04X}"
            )
    if path.startswith("/"):
        raise HostilePathError(f"file path {shown} is absolute")
    for segment in path.split("/"):
        if not segment:
            raise HostilePathError(f"file path {shown} has an empty segment")
        if segment in (".", ".."):
            raise HostilePathError(f"file path {shown} has a {segment!r} segment")
        if len(segment.encode("utf-8")) > MAX_SEGMENT_BYTES:
            raise HostilePathError(
                f"file path {shown} has a segment over {MAX_SEGMENT_BYTES} bytes"
            )
        if segment.endswith((".", " ")):
            raise HostilePathError(f"file path {shown} has a segment ending in '.' or ' '")
        if is_device_name(segment):
            raise HostilePathError(f"file path {shown} names a reserved device")
    if fold(path.split("/", 1)[0]) == RESERVED_FOLDER:
        raise HostilePathError(
            f"file path {shown} lies in {RESERVED_FOLDER}/, which hubless keeps for itself"
        )
    return path


def fold(path: str) -> str:
    """The key under which two paths collide: `NFD(casefold(NFD(path)))` (spec §6).

    Unicode canonical caseless matching (Unicode §3.13, D145) with full case folding (status
    C and F of CaseFolding.txt, no Turkic T rules). The tables are this Python's; on code
    points assigned in Unicode 14.0.0, the only ones `check_path` accepts, every Unicode
    version from 14.0.0 on gives the same result.
    """
    return unicodedata.normalize("NFD", unicodedata.normalize("NFD", path).casefold())


def check_paths(paths: Iterable[str]) -> None:
    """Check every path, and that no two collide or one is a folder prefix of another.

    Spec §6 rules 15-16 over the folds; raises `HostilePathError`.
    """
    seen: dict[str, str] = {}
    for path in paths:
        check_path(path)
        key = fold(path)
        if key in seen:
            if seen[key] == path:
                raise HostilePathError(f"file path {path!r} is listed twice")
            raise HostilePathError(
                f"file paths {seen[key]!r} and {path!r} collide on case-insensitive or "
                "Unicode-normalising filesystems"
            )
        seen[key] = path
    for key, path in seen.items():
        parts = key.split("/")
        for i in range(1, len(parts)):
            parent = "/".join(parts[:i])
            if parent in seen:
                raise HostilePathError(
                    f"file path {seen[parent]!r} is both a file and the folder of {path!r}"
                )
