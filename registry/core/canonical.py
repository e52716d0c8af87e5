"""Canonical msgpack: one object, one byte string (spec/PROTOCOL.md §5.1).

Maps have text keys sorted by their UTF-8 bytes; integers use the shortest msgpack form;
binary data is `bin`, text is `str`; no floats, no extension types. A decoder accepts
bytes only if encoding what it decoded gives the same bytes back, so signed documents have
exactly one valid encoding.
"""

from __future__ import annotations

from typing import Any

import msgpack

from .errors import MalformedError, OversizedError

MAX_INT = 2**64 - 1
MIN_INT = -(2**63)
MAX_DEPTH = 8  # the deepest hubless document nests 3 levels


def encode(obj: Any) -> bytes:
    """Encode `obj` canonically. Raises `TypeError` for values the format does not allow."""
    return msgpack.packb(_canonical(obj), use_bin_type=True)  # type: ignore[no-any-return]


def _canonical(obj: Any) -> Any:
    if isinstance(obj, bool) or obj is None or isinstance(obj, bytes | str):
        return obj
    if isinstance(obj, int):
        if not MIN_INT <= obj <= MAX_INT:
            raise TypeError(f"integer {obj} out of msgpack range")
        return obj
    if isinstance(obj, list | tuple):
        return [_canonical(item) for item in obj]
    if isinstance(obj, dict):
        for key in obj:
            if not isinstance(key, str):
                raise TypeError("map keys must be text")
        return {key: _canonical(obj[key]) for key in sorted(obj, key=lambda k: k.encode())}
    raise TypeError(f"{type(obj).__name__} has no canonical msgpack form")


def decode(data: bytes, *, what: str, max_size: int) -> Any:
    """Decode canonical msgpack of at most `max_size` bytes, naming `what` in errors."""
    if len(data) > max_size:
        raise OversizedError(f"{what} is {len(data)} bytes; the limit is {max_size}")
    try:
        obj = msgpack.unpackb(
            data,
            raw=False,
            use_list=True,
            strict_map_key=True,
            ext_hook=_refuse_ext,
        )
    except MalformedError:
        raise
    except (ValueError, TypeError, RecursionError, msgpack.UnpackException) as exc:
        # msgpack sizes its own limits from len(data), bounded above; none of its errors escape
        raise MalformedError(f"{what} is not valid msgpack: {_describe(exc, data)}") from exc
    if _depth(obj) > MAX_DEPTH:
        raise MalformedError(f"{what} nests deeper than {MAX_DEPTH} levels")
    try:
        again = encode(obj)
    except TypeError as exc:
        raise MalformedError(f"{what} holds a value the format does not allow: {exc}") from exc
    if again != data:
        raise MalformedError(f"{what} is not in canonical msgpack form")
    return obj


def _describe(exc: Exception, data: bytes) -> str:
    """msgpack's own text, or what we know when it has none (its FormatError has none)."""
    if str(exc):
        return str(exc)
    if isinstance(exc, msgpack.FormatError):
        first = f" (the first byte is 0x{data[0]:02x})" if data else ""
        return f"a byte that starts no msgpack value, such as the reserved 0xc1{first}"
    return type(exc).__name__


def _depth(obj: Any) -> int:
    """Nesting depth of a decoded value, computed without recursion."""
    deepest, stack = 0, [(obj, 1)]
    while stack:
        value, level = stack.pop()
        deepest = max(deepest, level)
        if deepest > MAX_DEPTH:
            return deepest
        if isinstance(value, list):
            stack.extend((item, level + 1) for item in value)
        elif isinstance(value, dict):
            stack.extend((item, level + 1) for item in value.values())
    return deepest


def _refuse_ext(code: int, data: bytes) -> Any:
    raise MalformedError(f"msgpack extension type {code} is not allowed")
