"""The publisher index: one DHT record listing a publisher's models (spec/PROTOCOL.md §4.5).

It lives under the reserved salt `hubless:index`, which no model name can equal (names
never contain ':'). When the names do not fit in 1000 bytes, the record points at an
index torrent holding the list instead, bound by its SHA-256.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from . import canonical
from .bep44 import MAX_VALUE_SIZE, RawItem, VerifiedItem, verify_item, wrap_value
from .errors import (
    FutureTimestampError,
    IntegrityError,
    InvalidReferenceError,
    MalformedError,
    OversizedError,
    RollbackError,
    WrongNameError,
)
from .fields import (
    MAX_CLOCK_SKEW,
    MAX_SEQ,
    MAX_TIME,
    SHA256_SIZE,
    check_bytes,
    check_format,
    check_infohash,
    check_int,
    require_keys,
    require_map,
)
from .keys import PublicKey
from .refs import check_name

INDEX_SALT = b"hubless:index"
INDEX_FORMAT = 1
MAX_INDEX_NAMES = 100_000
MAX_INDEX_LIST_SIZE = 8 * 1024 * 1024


@dataclass(frozen=True)
class IndexRecord:
    """Either the model names inline, or the infohash and hash of the list's torrent."""

    seq: int
    published_at: int
    names: tuple[str, ...] | None = None
    list_infohash: bytes | None = None
    list_hash: bytes | None = None

    def __post_init__(self) -> None:
        check_int("index seq", self.seq, 0, MAX_SEQ)
        check_int("index time", self.published_at, 0, MAX_TIME)
        if (self.names is None) == (self.list_infohash is None):
            raise MalformedError("index record holds either names or a list torrent, not both")
        if self.names is not None:
            _check_names(self.names)
        else:
            check_infohash("index list infohash", self.list_infohash)
            check_bytes("index list hash", self.list_hash, SHA256_SIZE)


@dataclass(frozen=True)
class VerifiedIndex:
    """An index item whose signature, schema and time passed (spec §4.5)."""

    publisher: PublicKey
    index: IndexRecord
    item: VerifiedItem

    @property
    def digest(self) -> bytes:
        """SHA-256 of the signed payload: two indexes with one `s` differ iff this does."""
        return hashlib.sha256(self.item.payload).digest()


def encode_index(index: IndexRecord) -> bytes:
    """The index payload; `OversizedError` when it would not fit the DHT (use a list torrent)."""
    fields: dict[str, object] = {"f": INDEX_FORMAT, "s": index.seq, "t": index.published_at}
    if index.names is not None:
        fields["n"] = list(index.names)
    else:
        fields["x"] = index.list_infohash
        fields["h"] = index.list_hash
    payload = canonical.encode(fields)
    wrap_value(payload)
    return payload


def decode_index(payload: bytes) -> IndexRecord:
    fields = require_map(
        canonical.decode(payload, what="index record", max_size=MAX_VALUE_SIZE), "index"
    )
    check_format(fields, "f", INDEX_FORMAT, "index record")
    inline = "n" in fields
    require_keys(
        fields, {"f", "s", "t", "n"} if inline else {"f", "s", "t", "x", "h"}, "index record"
    )
    if inline:
        names = fields["n"]
        if not isinstance(names, list):
            raise MalformedError("index names must be a list")
        return IndexRecord(fields["s"], fields["t"], names=tuple(names))
    return IndexRecord(fields["s"], fields["t"], list_infohash=fields["x"], list_hash=fields["h"])


def verify_index(
    item: RawItem, publisher: PublicKey, *, now: int, known_seq: int | None = None
) -> VerifiedIndex:
    """BEP-44 signature, salt and schema of a publisher index item, its time, no rollback.

    Spec §4.5 `verify_index`. Raises what `verify_item` raises (§4.2), then what
    `check_index` raises, then `RollbackError` when `s` < `known_seq`. Choosing among the
    items of one lookup is `hubless.core.trust.choose_index`.
    """
    verified = check_index(verify_item(item, publisher, INDEX_SALT), now=now)
    if known_seq is not None and verified.index.seq < known_seq:
        raise RollbackError(f"index seq {verified.index.seq} is older than known seq {known_seq}")
    return verified


def check_index(verified: VerifiedItem, *, now: int) -> VerifiedIndex:
    """The index rules after `verify_item` passed: schema (§4.5) and time (≤ now + 86400 s).

    Raises `MalformedError`, `OversizedError`, `UnsupportedFormatError` or
    `FutureTimestampError`; `WrongNameError` if the item is not under `hubless:index`.
    """
    if verified.salt != INDEX_SALT:
        raise WrongNameError(f"DHT item is for salt {verified.salt!r}, not {INDEX_SALT!r}")
    index = decode_index(verified.payload)
    if index.published_at > now + MAX_CLOCK_SKEW:
        raise FutureTimestampError(f"index is dated {index.published_at - now} s in the future")
    return VerifiedIndex(verified.public_key, index, verified)


def encode_name_list(names: tuple[str, ...]) -> bytes:
    """The bytes of an index list torrent's single file."""
    _check_names(names)
    return canonical.encode({"format": INDEX_FORMAT, "names": list(names)})


def decode_name_list(data: bytes, expected_hash: bytes) -> tuple[str, ...]:
    if len(data) > MAX_INDEX_LIST_SIZE:
        raise OversizedError(f"index list is {len(data)} bytes; the limit is {MAX_INDEX_LIST_SIZE}")
    if hashlib.sha256(data).digest() != expected_hash:
        raise IntegrityError("index list does not match the hash its record signed")
    fields = require_map(
        canonical.decode(data, what="index list", max_size=MAX_INDEX_LIST_SIZE), "index list"
    )
    check_format(fields, "format", INDEX_FORMAT, "index list")
    require_keys(fields, {"format", "names"}, "index list")
    if not isinstance(fields["names"], list):
        raise MalformedError("index list names must be a list")
    names = tuple(fields["names"])
    _check_names(names)
    return names


def build_index(names: tuple[str, ...], seq: int, published_at: int) -> IndexRecord:
    """An inline index if the names fit the DHT value limit; raises `OversizedError` if not."""
    index = IndexRecord(seq, published_at, names=tuple(sorted(set(names))))
    encode_index(index)
    return index


def _check_names(names: tuple[str, ...]) -> None:
    if not all(isinstance(name, str) for name in names):
        raise MalformedError("index names must be text")
    if len(names) > MAX_INDEX_NAMES:
        raise OversizedError(f"index lists {len(names)} names; the limit is {MAX_INDEX_NAMES}")
    if list(names) != sorted(set(names)):
        raise MalformedError("index names must be sorted and unique")
    for name in names:
        try:
            check_name(name)
        except InvalidReferenceError as exc:
            raise MalformedError(f"index: {exc.message}") from exc
