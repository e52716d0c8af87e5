"""BEP-44 mutable items: the signed DHT envelope around a hubless value (spec §4).

The DHT value is always a bencoded byte string holding a msgpack document. libtorrent
sets the BEP-44 `seq` itself, so it is transport only; hubless values carry their own seq.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from . import bencode
from .errors import (
    MalformedError,
    NotFoundError,
    OversizedError,
    UntrustedDataError,
    WrongNameError,
    WrongPublisherError,
)
from .keys import PublicKey, SigningKey

MAX_VALUE_SIZE = 1000
MAX_SALT_SIZE = 64


def signing_message(salt: bytes, seq: int, value_bencoded: bytes) -> bytes:
    """The bytes a BEP-44 mutable item signature covers."""
    head = b"4:salt%d:%s" % (len(salt), salt) if salt else b""
    return head + b"3:seqi%de1:v" % seq + value_bencoded


def wrap_value(payload: bytes) -> bytes:
    """Bencode `payload` as the byte-string DHT value, refusing more than 1000 bytes."""
    value = bencode.encode(payload)
    if len(value) > MAX_VALUE_SIZE:
        raise OversizedError(
            f"DHT value is {len(value)} bytes bencoded; BEP-44 allows {MAX_VALUE_SIZE}"
        )
    return value


@dataclass(frozen=True)
class RawItem:
    """A mutable item exactly as some DHT node returned it: nothing here is trusted yet."""

    public_key: bytes
    salt: bytes
    seq: int
    value: bytes  # the bencoded value (a byte string for hubless)
    signature: bytes


@dataclass(frozen=True)
class VerifiedItem:
    """A mutable item whose BEP-44 signature verified under `public_key` for `salt`."""

    public_key: PublicKey
    salt: bytes
    seq: int
    payload: bytes  # the value, un-bencoded
    signature: bytes

    def raw(self) -> RawItem:
        """The item exactly as its publisher signed it: what anyone may put again (BEP-44)."""
        return RawItem(
            self.public_key.raw, self.salt, self.seq, bencode.encode(self.payload), self.signature
        )


def verify_item(item: RawItem, expected_key: PublicKey, expected_salt: bytes) -> VerifiedItem:
    """Check a DHT item's key, salt, size and signature; return its payload (spec §4.2).

    Raises what `verify_signature` raises (steps 1-5), then `MalformedError` when the value
    the key signed is not one canonical bencoded byte string (steps 6-7).
    """
    verify_signature(item, expected_key, expected_salt)
    payload = bencode.decode(item.value)
    if not isinstance(payload, bytes):
        raise MalformedError("DHT value is not a bencoded byte string")
    return VerifiedItem(expected_key, item.salt, item.seq, payload, item.signature)


def verify_signature(item: RawItem, expected_key: PublicKey, expected_salt: bytes) -> None:
    """Spec §4.2 steps 1-5: key, salt, size, seq range and signature of a DHT item.

    An item that passes was signed by the expected key: whatever is wrong with its value
    afterwards is the publisher's data, not a forgery (spec §8.1 step 2).
    """
    if item.public_key != expected_key.raw:
        raise WrongPublisherError("DHT item is signed by another key than the one asked for")
    if item.salt != expected_salt:
        raise WrongNameError(f"DHT item is for salt {item.salt!r}, not {expected_salt!r}")
    if len(item.value) > MAX_VALUE_SIZE:
        raise OversizedError(f"DHT value is {len(item.value)} bytes; the limit is {MAX_VALUE_SIZE}")
    if not 0 <= item.seq < 2**63:
        raise MalformedError(f"DHT item seq {item.seq} is out of range")
    expected_key.verify(signing_message(item.salt, item.seq, item.value), item.signature)


def sign_item(key: SigningKey, salt: bytes, seq: int, payload: bytes) -> RawItem:
    """A signed mutable item, as a DHT node would store it (used by vectors and test nets)."""
    if len(salt) > MAX_SALT_SIZE:
        raise OversizedError(f"salt is {len(salt)} bytes; BEP-44 allows {MAX_SALT_SIZE}")
    value = wrap_value(payload)
    signature = key.sign(signing_message(salt, seq, value))
    return RawItem(key.public.raw, salt, seq, value, signature)


def newest_valid(items: Iterable[RawItem], key: PublicKey, salt: bytes) -> VerifiedItem:
    """The valid item with the highest BEP-44 seq among `items` (invalid ones are dropped).

    For values without their own version counter; hubless records choose by theirs instead
    (`hubless.core.trust.choose_record`, spec §4.1). Raises `NotFoundError` when none is valid.
    """
    valid: list[VerifiedItem] = []
    for item in items:
        try:
            valid.append(verify_item(item, key, salt))
        except UntrustedDataError:
            continue
    if not valid:
        name = salt.decode("ascii", "backslashreplace")
        raise NotFoundError(f"no valid DHT item for {name!r} under key {key.text}")
    return max(valid, key=lambda item: item.seq)
