"""The DHT record: which manifest is the latest for one model (spec/PROTOCOL.md §4).

The record is a canonical msgpack map carried as the BEP-44 value (a bencoded byte
string) under key = publisher key, salt = model name. It names the manifest torrent and
the SHA-256 of the manifest bytes, with the publisher's own version seq.
"""

from __future__ import annotations

from dataclasses import dataclass

from . import canonical
from .bep44 import MAX_VALUE_SIZE, RawItem, VerifiedItem, verify_item, wrap_value
from .errors import (
    FutureTimestampError,
    InvalidReferenceError,
    MalformedError,
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
    require_str,
)
from .keys import PublicKey
from .refs import check_name, check_version

RECORD_FORMAT = 1


@dataclass(frozen=True)
class Record:
    """The fields of a record; building one checks every field's type and range."""

    seq: int
    version: str
    manifest_infohash: bytes
    manifest_hash: bytes
    published_at: int

    def __post_init__(self) -> None:
        check_int("record seq", self.seq, 0, MAX_SEQ)
        check_int("record time", self.published_at, 0, MAX_TIME)
        check_infohash("record manifest infohash", self.manifest_infohash)
        check_bytes("record manifest hash", self.manifest_hash, SHA256_SIZE)
        try:
            check_version(self.version)
        except InvalidReferenceError as exc:
            raise MalformedError(f"record version: {exc.message}") from exc


@dataclass(frozen=True)
class VerifiedRecord:
    """A record whose BEP-44 signature, key, salt, schema, time and seq were all checked.

    Only `verify_record` creates one. `item` keeps the signed bytes so that anybody can
    put the very same item into the DHT again to keep it alive.
    """

    publisher: PublicKey
    name: str
    record: Record
    item: VerifiedItem


def encode_record(record: Record) -> bytes:
    """The record's msgpack payload; refuses one whose bencoded value would exceed 1000 bytes."""
    payload = canonical.encode(
        {
            "f": RECORD_FORMAT,
            "s": record.seq,
            "v": record.version,
            "m": record.manifest_infohash,
            "h": record.manifest_hash,
            "t": record.published_at,
        }
    )
    wrap_value(payload)
    return payload


def decode_record(payload: bytes) -> Record:
    """Parse a record payload, checking format version, keys, types and ranges."""
    obj = canonical.decode(payload, what="record", max_size=MAX_VALUE_SIZE)
    fields = require_map(obj, "record")
    check_format(fields, "f", RECORD_FORMAT, "record")
    require_keys(fields, {"f", "s", "v", "m", "h", "t"}, "record")
    return Record(
        seq=fields["s"],
        version=require_str(fields["v"], "record version"),
        manifest_infohash=fields["m"],
        manifest_hash=fields["h"],
        published_at=fields["t"],
    )


def verify_record(item: RawItem, publisher: PublicKey, name: str, *, now: int) -> VerifiedRecord:
    """Apply spec §4.3 steps 1-8 to a DHT item, in order, and return the verified record.

    Step 9 (against what this client saw before) is `hubless.core.trust.check_known`.
    """
    check_name(name)
    verified = verify_item(item, publisher, name.encode("ascii"))
    return check_record(verified, name, now=now)


def check_record(verified: VerifiedItem, name: str, *, now: int) -> VerifiedRecord:
    """The record rules of spec §4.3 after the BEP-44 item check: schema and time."""
    if verified.salt != name.encode("ascii"):
        raise WrongNameError(f"DHT item is for salt {verified.salt!r}, not {name!r}")
    record = decode_record(verified.payload)
    if record.published_at > now + MAX_CLOCK_SKEW:
        raise FutureTimestampError(
            f"record for {name} is dated {record.published_at - now} s in the future"
        )
    return VerifiedRecord(verified.public_key, name, record, verified)
