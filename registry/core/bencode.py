"""The small part of bencoding the protocol needs (BEP-3), bounded and strict.

Only byte strings, integers, lists and dicts with byte-string keys exist. The decoder
refuses anything non-canonical (unsorted keys, leading zeros, trailing bytes), so that
`encode(decode(b)) == b` always holds for accepted input.
"""

from __future__ import annotations

from .errors import MalformedError

Bencodable = bytes | int | list["Bencodable"] | dict[bytes, "Bencodable"]

MAX_DEPTH = 32
MAX_DIGITS = 20  # integers and string lengths: int() on thousands of digits is slow or fails


def encode(obj: Bencodable) -> bytes:
    """Bencode `obj`; dict keys are sorted as BEP-3 requires."""
    out: list[bytes] = []
    _encode(obj, out)
    return b"".join(out)


def _encode(obj: Bencodable, out: list[bytes]) -> None:
    if isinstance(obj, bool):
        raise TypeError("bool is not bencodable")
    if isinstance(obj, bytes):
        out.append(b"%d:" % len(obj))
        out.append(obj)
    elif isinstance(obj, int):
        out.append(b"i%de" % obj)
    elif isinstance(obj, list):
        out.append(b"l")
        for item in obj:
            _encode(item, out)
        out.append(b"e")
    elif isinstance(obj, dict):
        out.append(b"d")
        for key in sorted(obj):
            _encode(key, out)
            _encode(obj[key], out)
        out.append(b"e")
    else:
        raise TypeError(f"{type(obj).__name__} is not bencodable")


def decode(data: bytes) -> Bencodable:
    """Decode one complete canonical bencoded value or raise `MalformedError`."""
    value, end = _decode(data, 0, 0)
    if end != len(data):
        raise MalformedError(f"bencode: {len(data) - end} trailing bytes")
    return value


def _decode(data: bytes, pos: int, depth: int) -> tuple[Bencodable, int]:
    if depth > MAX_DEPTH:
        raise MalformedError("bencode: nested too deeply")
    if pos >= len(data):
        raise MalformedError("bencode: truncated")
    lead = data[pos : pos + 1]
    if lead == b"i":
        end = data.find(b"e", pos)
        if end < 0:
            raise MalformedError("bencode: unterminated integer")
        text = data[pos + 1 : end]
        if not _canonical_int(text):
            raise MalformedError("bencode: non-canonical integer")
        return int(text), end + 1
    if lead == b"l":
        items: list[Bencodable] = []
        pos += 1
        while data[pos : pos + 1] != b"e":
            item, pos = _decode(data, pos, depth + 1)
            items.append(item)
        return items, pos + 1
    if lead == b"d":
        result: dict[bytes, Bencodable] = {}
        last: bytes | None = None
        pos += 1
        while data[pos : pos + 1] != b"e":
            key, pos = _decode(data, pos, depth + 1)
            if not isinstance(key, bytes):
                raise MalformedError("bencode: dict key is not a byte string")
            if last is not None and key <= last:
                raise MalformedError("bencode: dict keys not sorted or duplicated")
            result[key], pos = _decode(data, pos, depth + 1)
            last = key
        return result, pos + 1
    if lead.isdigit():
        colon = data.find(b":", pos)
        if colon < 0 or not _canonical_int(data[pos:colon]) or data[pos : pos + 1] == b"-":
            raise MalformedError("bencode: bad string length")
        length = int(data[pos:colon])
        start = colon + 1
        if start + length > len(data):
            raise MalformedError("bencode: truncated string")
        return data[start : start + length], start + length
    raise MalformedError(f"bencode: unexpected byte {lead!r} at {pos}")


def _canonical_int(text: bytes) -> bool:
    if len(text) > MAX_DIGITS:
        return False
    if text == b"0":
        return True
    digits = text[1:] if text.startswith(b"-") else text
    return bool(digits) and digits.isdigit() and not digits.startswith(b"0")
