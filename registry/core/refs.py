"""Model names, version labels and references `KEY/NAME[@VERSION]` (spec/PROTOCOL.md §3).

Names become the BEP-44 salt and folder names on disk, so they are short ASCII words in the
style of model-hub repository names: letters, digits, `.`, `_`, `-`; no leading or trailing
punctuation, no `..`, at most 64 bytes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .errors import InvalidReferenceError, UsageError
from .keys import ASCII_WHITESPACE, PublicKey
from .paths import is_device_name

MAX_NAME_LENGTH = 64
MAX_VERSION_LENGTH = 64
URI_SCHEME = "hubless://"

_NAME = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?")
_VERSION = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9._+-]*[A-Za-z0-9])?")


def check_name(name: str) -> str:
    """Return `name` if it is a valid model name, else raise `InvalidReferenceError`."""
    _check_label(name, "model name", _NAME, MAX_NAME_LENGTH, "'.', '_' and '-'")
    if is_device_name(name):
        raise InvalidReferenceError(f"model name {name!r} is a reserved device name on Windows")
    return name


def check_version(label: str) -> str:
    """Return `label` if it is a valid version label, else raise `InvalidReferenceError`."""
    return _check_label(
        label, "version label", _VERSION, MAX_VERSION_LENGTH, "'.', '_', '+' and '-'"
    )


def _check_label(text: str, what: str, pattern: re.Pattern[str], limit: int, marks: str) -> str:
    if not isinstance(text, str) or not text:
        raise InvalidReferenceError(f"{what} must be non-empty text")
    if len(text) > limit:
        raise InvalidReferenceError(f"{what} is {len(text)} characters; at most {limit}")
    if not pattern.fullmatch(text) or ".." in text:
        raise InvalidReferenceError(
            f"{what} {text!r} may use only letters, digits, {marks}, must start and end with "
            "a letter or digit, and may not contain '..'"
        )
    return text


@dataclass(frozen=True)
class Reference:
    """What a user types to name a model: publisher key, model name, optional version."""

    publisher: PublicKey
    name: str
    version: str | None = None

    def __post_init__(self) -> None:
        check_name(self.name)
        if self.version is not None:
            check_version(self.version)

    @property
    def salt(self) -> bytes:
        return self.name.encode("ascii")

    def __str__(self) -> str:
        tail = f"@{self.version}" if self.version else ""
        return f"{self.publisher.text}/{self.name}{tail}"

    @property
    def uri(self) -> str:
        return URI_SCHEME + str(self)

    def at(self, version: str | None) -> Reference:
        return Reference(self.publisher, self.name, version)


def pin_version(ref: Reference, version: str, *, named_by: str) -> Reference:
    """`ref` at `version`, which an option named `named_by` gave (`version=`, `--revision`).

    Raises `InvalidReferenceError` for a label that is not a version (spec §3), and
    `UsageError` when `ref` already names another version.
    """
    check_version(version)
    if ref.version is not None and ref.version != version:
        raise UsageError(
            f"{ref} names version {ref.version}, but {named_by} says {version}",
            hint=f"give the version once: either @VERSION or {named_by}",
        )
    return ref.at(version)


def parse_reference(text: str) -> Reference:
    """Parse `KEY/NAME`, `KEY/NAME@VERSION` or `hubless://KEY/NAME[@VERSION]` (spec §3).

    Strips ASCII whitespace only (TAB, LF, FF, CR, SPACE); raises `InvalidReferenceError`.
    """
    raw = text.strip(ASCII_WHITESPACE)
    if raw.lower().startswith(URI_SCHEME):
        raw = raw[len(URI_SCHEME) :]
    key_text, slash, rest = raw.partition("/")
    if not slash or not rest:
        raise InvalidReferenceError(
            f"reference {text!r} is not KEY/NAME[@VERSION]", hint="e.g. <52-char key>/my-model@v1"
        )
    if rest.endswith("/"):
        rest = rest[:-1]
    name, at, version = rest.partition("@")
    if at and not version:
        raise InvalidReferenceError(f"reference {text!r} has '@' but no version")
    return Reference(
        PublicKey.parse(key_text), check_name(name), check_version(version) if at else None
    )
