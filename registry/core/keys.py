"""Ed25519 publisher keys and their text form (spec/PROTOCOL.md §2).

A publisher is its 32-byte Ed25519 public key. Its text form is 52 characters of
lowercase RFC 4648 base32 without padding; 64 hex digits are accepted on input.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from dataclasses import dataclass

import nacl.exceptions
import nacl.signing

from .errors import BadSignatureError, InvalidReferenceError

PUBLIC_KEY_SIZE = 32
SEED_SIZE = 32
SIGNATURE_SIZE = 64
KEY_TEXT_LENGTH = 52
# What "surrounding whitespace" means for key text and references (spec §2, §3): ASCII only,
# so that every runtime's trim agrees (U+0085, U+00A0, U+FEFF and U+001C are not stripped).
ASCII_WHITESPACE = "\t\n\f\r "


@dataclass(frozen=True, repr=False)
class PublicKey:
    """A publisher's Ed25519 public key."""

    raw: bytes

    def __post_init__(self) -> None:
        if len(self.raw) != PUBLIC_KEY_SIZE:
            raise InvalidReferenceError(
                f"a public key is {PUBLIC_KEY_SIZE} bytes, not {len(self.raw)}"
            )

    @property
    def text(self) -> str:
        return base64.b32encode(self.raw).decode("ascii").rstrip("=").lower()

    def __str__(self) -> str:
        return self.text

    def __repr__(self) -> str:
        return f"PublicKey({self.text!r})"

    def verify(self, message: bytes, signature: bytes) -> None:
        """Raise `BadSignatureError` unless `signature` signs `message` under this key."""
        if len(signature) != SIGNATURE_SIZE:
            raise BadSignatureError(f"a signature is {SIGNATURE_SIZE} bytes, not {len(signature)}")
        try:
            nacl.signing.VerifyKey(self.raw).verify(message, signature)
        except (nacl.exceptions.BadSignatureError, nacl.exceptions.ValueError) as exc:
            raise BadSignatureError(f"signature does not verify under key {self.text}") from exc

    @classmethod
    def parse(cls, text: str) -> PublicKey:
        """Parse the base32 text form (or 64 hex digits); `InvalidReferenceError` if neither.

        Only ASCII whitespace (TAB, LF, FF, CR, SPACE) around the key is ignored (spec §2).
        """
        cleaned = text.strip(ASCII_WHITESPACE)
        if len(cleaned) == 2 * PUBLIC_KEY_SIZE:
            try:
                return cls(bytes.fromhex(cleaned))
            except ValueError:
                pass
        if len(cleaned) != KEY_TEXT_LENGTH:
            raise InvalidReferenceError(
                f"publisher key {cleaned[:80]!r} is {len(cleaned)} characters; expected "
                f"{KEY_TEXT_LENGTH} base32 characters (or 64 hex digits)"
            )
        try:
            raw = base64.b32decode(cleaned.upper() + "====", casefold=False)
        except binascii.Error as exc:
            raise InvalidReferenceError(f"publisher key {cleaned!r} is not base32") from exc
        if base64.b32encode(raw).decode("ascii").rstrip("=").lower() != cleaned.lower():
            raise InvalidReferenceError(f"publisher key {cleaned!r} is not canonical base32")
        return cls(raw)


@dataclass(frozen=True, repr=False)
class SigningKey:
    """A publisher's secret: the 32-byte Ed25519 seed. Never printed by repr."""

    seed: bytes

    def __post_init__(self) -> None:
        if len(self.seed) != SEED_SIZE:
            raise InvalidReferenceError(f"a key seed is {SEED_SIZE} bytes, not {len(self.seed)}")

    def __repr__(self) -> str:
        return f"SigningKey(public={self.public.text})"

    @property
    def public(self) -> PublicKey:
        return PublicKey(bytes(nacl.signing.SigningKey(self.seed).verify_key))

    def sign(self, message: bytes) -> bytes:
        """Detached Ed25519 signature of `message`."""
        return nacl.signing.SigningKey(self.seed).sign(message).signature

    @property
    def expanded_secret(self) -> bytes:
        """libtorrent's 64-byte expanded Ed25519 secret for `dht_put_mutable_item`.

        SHA-512 of the seed with the scalar clamped as RFC 8032 §5.1.5 describes.
        """
        h = bytearray(hashlib.sha512(self.seed).digest())
        h[0] &= 248
        h[31] &= 63
        h[31] |= 64
        return bytes(h)

    @classmethod
    def from_seed(cls, seed: bytes) -> SigningKey:
        return cls(seed)

    @classmethod
    def generate(cls, entropy: bytes) -> SigningKey:
        """A key from 32 bytes of caller-supplied randomness (the core draws none itself)."""
        return cls(entropy)
