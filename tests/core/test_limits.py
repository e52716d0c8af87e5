"""Size limits of the DHT value (spec/PROTOCOL.md §4.4, §4.5)."""

from __future__ import annotations

import pytest
from hubless.core import bencode, bep44
from hubless.core.errors import OversizedError
from hubless.core.index import IndexRecord, build_index, encode_index
from hubless.core.keys import SigningKey
from hubless.core.record import Record, encode_record

KEY = SigningKey(bytes(range(32)))


def test_largest_record_fits_with_room_to_embed() -> None:
    largest = Record(2**63 - 1, "9" * 64, b"\xff" * 32, b"\xff" * 32, 2**63 - 1)
    value = bencode.encode(encode_record(largest))
    assert len(value) <= 400
    # With the longest salt, the whole BEP-44 item also fits.
    item = bep44.sign_item(KEY, b"m" * 64, 2**62, encode_record(largest))
    assert len(item.value) == len(value)


def test_value_of_exactly_1000_bytes_is_accepted_and_1001_refused() -> None:
    fits = b"x" * (1000 - len(b"996:"))
    assert len(bep44.wrap_value(fits)) == 1000
    with pytest.raises(OversizedError, match="1001 bytes"):
        bep44.wrap_value(fits + b"x")


def _value_size(names: tuple[str, ...]) -> int:
    try:
        return len(bencode.encode(encode_index(IndexRecord(1, 0, names=names))))
    except OversizedError:
        return 1001


def _names_filling(target: int) -> tuple[str, ...] | None:
    """Sorted names whose index value bencodes to exactly `target` bytes, if any."""
    names: tuple[str, ...] = ()
    while _value_size((*names, f"model-{len(names):05d}")) <= target:
        names = (*names, f"model-{len(names):05d}")
    # Lengthen the last name until the value is exactly the target.
    while _value_size(names) < target and len(names[-1]) < 64:
        names = (*names[:-1], names[-1] + "z")
    return names if _value_size(names) == target else None


def test_index_at_the_limit_fits_and_one_byte_more_is_refused() -> None:
    names = _names_filling(1000)
    assert names is not None
    assert len(bencode.encode(encode_index(IndexRecord(1, 0, names=names)))) == 1000
    build_index(names, 1, 0)
    longer = (*names[:-1], names[-1] + "z")
    with pytest.raises(OversizedError, match="1001 bytes"):
        build_index(longer, 1, 0)


def test_salt_over_64_bytes_is_refused() -> None:
    with pytest.raises(OversizedError):
        bep44.sign_item(KEY, b"s" * 65, 1, b"")


def test_deep_nesting_is_a_typed_error_not_a_crash() -> None:
    from hubless.core import canonical
    from hubless.core.errors import MalformedError

    for depth in (9, 600, 5000):
        with pytest.raises(MalformedError):
            canonical.decode(b"\x91" * depth + b"\x00", what="x", max_size=10_000)


def test_bencode_refuses_absurd_integers() -> None:
    from hubless.core.errors import MalformedError

    with pytest.raises(MalformedError):
        bencode.decode(b"i" + b"9" * 5000 + b"e")
    with pytest.raises(MalformedError):
        bencode.decode(b"9" * 5000 + b":x")


def test_index_names_that_are_not_text_are_malformed() -> None:
    from hubless.core import canonical
    from hubless.core.errors import MalformedError
    from hubless.core.index import decode_index

    for names in ([1, "a"], [[1]], [None]):
        payload = canonical.encode({"f": 1, "s": 1, "t": 0, "n": names})
        with pytest.raises(MalformedError):
            decode_index(payload)


def test_manifest_over_the_size_limit_is_refused_when_signing() -> None:
    import hashlib

    from hubless.core.errors import UsageError
    from hubless.core.manifest import MAX_MANIFEST_SIZE, FileEntry, Manifest, sign_manifest

    per_file = 1000
    n = MAX_MANIFEST_SIZE // per_file + 10
    files = tuple(
        FileEntry(f"{i:08d}/" + "/".join(["x" * 240] * 4), 1, hashlib.sha256(b"%d" % i).digest())
        for i in range(n)
    )
    manifest = Manifest(KEY.public, "m", "v1", 1, 0, b"\x01" * 20, files)
    with pytest.raises(UsageError, match="clients accept at most"):
        sign_manifest(manifest, KEY)
