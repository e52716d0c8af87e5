"""Type and range checks shared by the record, manifest and index decoders.

Each raises `MalformedError` naming the field, so no decoder lets a `KeyError`,
`TypeError` or `ValueError` escape.
"""

from __future__ import annotations

from typing import Any

from .errors import MalformedError, UnsupportedFormatError

INFOHASH_SIZES = (20, 32)
SHA256_SIZE = 32
MAX_SEQ = 2**63 - 1  # record, manifest, history and index seq (spec §4.3, §5.3)
MAX_TIME = 2**63 - 1  # seconds since the Unix epoch
MAX_CLOCK_SKEW = 24 * 3600  # seconds a signed time may lie in the future (spec §4.3 step 8)


def require_map(obj: Any, what: str) -> dict[str, Any]:
    if not isinstance(obj, dict):
        raise MalformedError(f"{what} is not a map")
    return obj


def require_keys(
    fields: dict[str, Any], required: set[str], what: str, optional: frozenset[str] = frozenset()
) -> None:
    missing = required - fields.keys()
    if missing:
        raise MalformedError(f"{what} lacks {', '.join(sorted(missing))}")
    extra = fields.keys() - required - optional
    if extra:
        raise MalformedError(f"{what} has unknown fields {', '.join(sorted(extra))}")


def check_format(
    fields: dict[str, Any], key: str, supported: int | tuple[int, ...], what: str
) -> None:
    version = fields.get(key)
    if not isinstance(version, int) or isinstance(version, bool):
        raise MalformedError(f"{what} has no format version")
    known = supported if isinstance(supported, tuple) else (supported,)
    if version not in known:
        raise UnsupportedFormatError(
            f"{what} format {version} is not supported (this reads {' and '.join(map(str, known))})"
        )


def check_int(what: str, value: Any, low: int, high: int) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise MalformedError(f"{what} must be an integer in [{low}, {high}], not {value!r:.40}")
    return value


def check_bytes(what: str, value: Any, size: int) -> bytes:
    if not isinstance(value, bytes) or len(value) != size:
        raise MalformedError(f"{what} must be {size} bytes")
    return value


def check_infohash(what: str, value: Any) -> bytes:
    if not isinstance(value, bytes) or len(value) not in INFOHASH_SIZES:
        raise MalformedError(f"{what} must be 20 (v1) or 32 (v2) bytes")
    return value


def require_str(value: Any, what: str, max_length: int = 4096) -> str:
    if not isinstance(value, str):
        raise MalformedError(f"{what} must be text")
    if len(value) > max_length:
        raise MalformedError(f"{what} is longer than {max_length} characters")
    return value


def check_text(value: Any, what: str, max_length: int, *, multiline: bool = False) -> str:
    """Non-empty text without control or bidi-override characters (they can fool a terminal)."""
    text = require_str(value, what, max_length)
    if not text:
        raise MalformedError(f"{what} is empty")
    allowed = "\n\t" if multiline else ""
    for ch in text:
        code = ord(ch)
        if (
            (code < 0x20 and ch not in allowed)
            or 0x7F <= code <= 0x9F
            or 0x202A <= code <= 0x202E
            or 0x2066 <= code <= 0x2069
        ):
            raise MalformedError(f"{what} contains control character U+{code:04X}")
    return text
