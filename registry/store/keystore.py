"""Publisher keys at rest: one JSON file per key, 0600, sealed with a passphrase.

The seed is encrypted with a key derived by Argon2id (libsodium's interactive limits) and
sealed in a SecretBox; a key may be stored without a passphrase only when asked explicitly.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path

import nacl.exceptions
import nacl.pwhash
import nacl.secret
import nacl.utils

from ..core.errors import KeyStoreError, UsageError
from ..core.keys import PublicKey, SigningKey
from ..files import atomic_write, private_dir

KEY_FILE_FORMAT = 1
_KEY_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
DEFAULT_KEY = "default"
MIN_PASSPHRASE = 8  # characters, for new keys only (existing keys load with any passphrase)


@dataclass(frozen=True)
class KeyInfo:
    name: str
    public: PublicKey
    encrypted: bool
    path: Path


class KeyStore:
    """The key files under `folder`."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def _path(self, name: str) -> Path:
        if not _KEY_NAME.fullmatch(name):
            raise UsageError(f"key name {name!r} may use letters, digits, '.', '_' and '-'")
        return self.folder / f"{name}.key"

    def exists(self, name: str) -> bool:
        return self._path(name).exists()

    def create(self, name: str, passphrase: str | None, *, seed: bytes | None = None) -> KeyInfo:
        """Make a new key (from fresh randomness unless `seed` is given) and store it."""
        path = self._path(name)
        if path.exists():
            raise KeyStoreError(f"key {name!r} already exists at {path}")
        key = SigningKey(seed if seed is not None else nacl.utils.random(32))
        doc: dict[str, object] = {
            "format": KEY_FILE_FORMAT,
            "public_key": key.public.text,
        }
        if passphrase is None:
            doc.update({"kdf": "none", "seed": key.seed.hex()})
        else:
            if len(passphrase) < MIN_PASSPHRASE:
                raise UsageError(
                    f"a passphrase for a new key needs at least {MIN_PASSPHRASE} characters "
                    f"(this one has {len(passphrase)})",
                    hint="a few words are easy to type and hard to guess; or create the key "
                    "with --no-passphrase",
                )
            salt = nacl.utils.random(nacl.pwhash.argon2id.SALTBYTES)
            ops, mem = (
                nacl.pwhash.argon2id.OPSLIMIT_INTERACTIVE,
                nacl.pwhash.argon2id.MEMLIMIT_INTERACTIVE,
            )
            box = nacl.secret.SecretBox(_derive(passphrase, salt, ops, mem))
            doc.update(
                {
                    "kdf": "argon2id",
                    "opslimit": ops,
                    "memlimit": mem,
                    "salt": salt.hex(),
                    "sealed_seed": bytes(box.encrypt(key.seed)).hex(),
                }
            )
        private_dir(self.folder)
        atomic_write(path, (json.dumps(doc, indent=1) + "\n").encode(), mode=0o600)
        return KeyInfo(name, key.public, passphrase is not None, path)

    def _read(self, name: str) -> tuple[dict[str, object], Path]:
        path = self._path(name)
        try:
            doc = json.loads(path.read_text())
        except FileNotFoundError:
            raise KeyStoreError(f"no key named {name!r}", hint=self._other_keys()) from None
        except (OSError, ValueError) as exc:
            raise KeyStoreError(f"key file {path} is unreadable: {exc}") from exc
        if not isinstance(doc, dict) or doc.get("format") != KEY_FILE_FORMAT:
            raise KeyStoreError(f"key file {path} is not a hubless key file")
        if os.stat(path).st_mode & 0o077:
            raise KeyStoreError(f"key file {path} is readable by others", hint=f"chmod 600 {path}")
        return doc, path

    def _other_keys(self) -> str:
        """A hint for a key name that does not exist: the names that do, or how to make one."""
        names = sorted(p.stem for p in self.folder.glob("*.key")) if self.folder.is_dir() else []
        if not names:
            return "there is no key here yet: create one with: hubless key new"
        return f"the keys here are: {', '.join(names)} (or create one with: hubless key new)"

    def info(self, name: str) -> KeyInfo:
        doc, path = self._read(name)
        try:
            public = PublicKey.parse(str(doc["public_key"]))
        except (KeyError, UsageError) as exc:
            raise KeyStoreError(f"key file {path} has no valid public key") from exc
        return KeyInfo(name, public, doc.get("kdf") != "none", path)

    def list(self) -> list[KeyInfo]:
        if not self.folder.is_dir():
            return []
        return [self.info(p.stem) for p in sorted(self.folder.glob("*.key"))]

    def load(self, name: str, passphrase: str | None) -> SigningKey:
        """The signing key; `KeyStoreError` on a wrong or missing passphrase."""
        doc, path = self._read(name)
        try:
            if doc["kdf"] == "none":
                key = SigningKey(bytes.fromhex(str(doc["seed"])))
            elif doc["kdf"] == "argon2id":
                if passphrase is None:
                    raise KeyStoreError(
                        f"key {name!r} is locked with a passphrase",
                        hint="type it at the prompt or set HUBLESS_PASSPHRASE",
                    )
                secret = _derive(
                    passphrase,
                    bytes.fromhex(str(doc["salt"])),
                    int(str(doc["opslimit"])),
                    int(str(doc["memlimit"])),
                )
                try:
                    seed = nacl.secret.SecretBox(secret).decrypt(
                        bytes.fromhex(str(doc["sealed_seed"]))
                    )
                except nacl.exceptions.CryptoError:
                    raise KeyStoreError(
                        f"wrong passphrase for key {name!r}",
                        hint="the passphrase is wrong: type it again, or correct "
                        "HUBLESS_PASSPHRASE if it is set",
                    ) from None
                key = SigningKey(seed)
            else:
                raise KeyStoreError(f"key file {path} uses unknown protection {doc['kdf']!r}")
        except (KeyError, ValueError, UsageError) as exc:
            raise KeyStoreError(f"key file {path} is damaged: {exc}") from exc
        if key.public.text != doc.get("public_key"):
            raise KeyStoreError(f"key file {path} holds a seed that does not match its public key")
        return key


def _derive(passphrase: str, salt: bytes, ops: int, mem: int) -> bytes:
    return bytes(
        nacl.pwhash.argon2id.kdf(
            nacl.secret.SecretBox.KEY_SIZE, passphrase.encode(), salt, opslimit=ops, memlimit=mem
        )
    )
