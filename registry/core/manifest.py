"""The signed manifest of one model release (spec/PROTOCOL.md §5).

A manifest lists every file with size and SHA-256, names the content torrent, chains to
the previous manifest by hash and carries the compact table of every earlier revision.
It is canonical msgpack signed with Ed25519 under its own domain string, so a manifest
signature can never be mistaken for a BEP-44 signature or the other way round.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

from . import canonical
from .errors import (
    FutureTimestampError,
    IntegrityError,
    InvalidReferenceError,
    MalformedError,
    OversizedError,
    UsageError,
    WrongNameError,
    WrongPublisherError,
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
    check_text,
    require_keys,
    require_map,
    require_str,
)
from .keys import SIGNATURE_SIZE, PublicKey, SigningKey
from .paths import check_paths
from .refs import check_name, check_version
from .webseeds import WebSeed, check_web_seeds, decode_web_seeds

MANIFEST_FORMAT = 1  # a manifest without web seeds (§11)
MANIFEST_FORMAT_WEB_SEEDS = 2  # format 1 plus `web_seeds` (§5.8, §11)
MANIFEST_FORMATS = (MANIFEST_FORMAT, MANIFEST_FORMAT_WEB_SEEDS)
SIGNATURE_DOMAIN = b"hubless manifest v1\x00"
MAX_MANIFEST_SIZE = 32 * 1024 * 1024
MAX_FILES = 200_000
MAX_HISTORY = 100_000
MAX_FILE_SIZE = 2**63 - 1
MAX_DESCRIPTION = 4096
MAX_LICENSE = 128
MAX_TAGS = 32
MAX_TAG = 64
MAX_YANK_REASON = 512

_REQUIRED = {
    "format",
    "publisher",
    "name",
    "version",
    "seq",
    "created",
    "content",
    "files",
    "history",
}
_OPTIONAL = frozenset({"prev", "yanked", "description", "license", "tags"})
_OPTIONAL_BY_FORMAT = {
    MANIFEST_FORMAT: _OPTIONAL,
    MANIFEST_FORMAT_WEB_SEEDS: _OPTIONAL | {"web_seeds"},
}


@dataclass(frozen=True)
class FileEntry:
    """One file of a release: relative POSIX path, size in bytes, SHA-256 of its bytes."""

    path: str
    size: int
    sha256: bytes


@dataclass(frozen=True)
class HistoryEntry:
    """One earlier revision, as the compact history table lists it (spec §5.4)."""

    seq: int
    version: str
    manifest_infohash: bytes
    manifest_hash: bytes
    created: int
    yanked: str | None = None


@dataclass(frozen=True)
class Manifest:
    """The unsigned content of a manifest. Building one checks every field (spec §5.3)."""

    publisher: PublicKey
    name: str
    version: str
    seq: int
    created: int
    content_infohash: bytes
    files: tuple[FileEntry, ...]
    history: tuple[HistoryEntry, ...] = ()
    prev: bytes | None = None
    yanked: str | None = None
    description: str | None = None
    license: str | None = None
    tags: tuple[str, ...] = field(default=())
    web_seeds: tuple[WebSeed, ...] = field(default=())

    def __post_init__(self) -> None:
        _validate(self)

    @property
    def format(self) -> int:
        """The body's format number: 2 exactly when it names web seeds (§11)."""
        return MANIFEST_FORMAT_WEB_SEEDS if self.web_seeds else MANIFEST_FORMAT

    @property
    def total_size(self) -> int:
        return sum(f.size for f in self.files)

    def file(self, path: str) -> FileEntry:
        for entry in self.files:
            if entry.path == path:
                return entry
        raise KeyError(path)


@dataclass(frozen=True)
class VerifiedManifest:
    """A manifest whose signature, publisher, name, schema, paths and history were checked.

    Only `verify_manifest` creates one. `hash` is the SHA-256 of `data`, the exact signed
    bytes, which the record and the next manifest's `prev` point at.
    """

    manifest: Manifest
    data: bytes
    hash: bytes


def manifest_hash(data: bytes) -> bytes:
    """SHA-256 of a signed manifest's bytes: its identity in records and history."""
    return hashlib.sha256(data).digest()


def encode_body(manifest: Manifest) -> bytes:
    """Canonical msgpack of the manifest's fields: the bytes the signature covers."""
    body: dict[str, Any] = {
        "format": manifest.format,
        "publisher": manifest.publisher.raw,
        "name": manifest.name,
        "version": manifest.version,
        "seq": manifest.seq,
        "created": manifest.created,
        "content": manifest.content_infohash,
        "files": [[f.path, f.size, f.sha256] for f in manifest.files],
        "history": [
            [h.seq, h.version, h.manifest_infohash, h.manifest_hash, h.created, h.yanked]
            for h in manifest.history
        ],
    }
    optional = {
        "prev": manifest.prev,
        "yanked": manifest.yanked,
        "description": manifest.description,
        "license": manifest.license,
        "tags": list(manifest.tags) if manifest.tags else None,
        "web_seeds": [[w.kind, w.base] for w in manifest.web_seeds] or None,
    }
    body.update({key: value for key, value in optional.items() if value is not None})
    return canonical.encode(body)


def signing_message(body: bytes) -> bytes:
    """Domain-separated message: it starts with bytes no BEP-44 message can start with."""
    return SIGNATURE_DOMAIN + body


def sign_manifest(manifest: Manifest, key: SigningKey) -> bytes:
    """The signed manifest bytes: canonical msgpack `{"manifest": body, "signature": sig}`."""
    if key.public != manifest.publisher:
        raise WrongPublisherError("manifest names another publisher than the signing key")
    body = encode_body(manifest)
    signed = canonical.encode({"manifest": body, "signature": key.sign(signing_message(body))})
    if len(signed) > MAX_MANIFEST_SIZE:
        raise UsageError(
            f"the manifest would be {len(signed):,} bytes; "
            f"clients accept at most {MAX_MANIFEST_SIZE:,}",
            hint="publish fewer files per model (shard less finely) or split the model",
        )
    return signed


def verify_manifest(
    data: bytes,
    publisher: PublicKey,
    name: str,
    *,
    now: int,
    expected_hash: bytes | None = None,
) -> VerifiedManifest:
    """Apply the rules of spec §5.5 in order: size, hash, envelope, signature, fields."""
    if len(data) > MAX_MANIFEST_SIZE:
        raise OversizedError(f"manifest is {len(data)} bytes; the limit is {MAX_MANIFEST_SIZE}")
    if expected_hash is not None and manifest_hash(data) != expected_hash:
        raise IntegrityError(f"manifest bytes of {name} do not match the hash the record signed")
    envelope = require_map(
        canonical.decode(data, what="manifest", max_size=MAX_MANIFEST_SIZE), "manifest envelope"
    )
    require_keys(envelope, {"manifest", "signature"}, "manifest envelope")
    body = envelope["manifest"]
    if not isinstance(body, bytes):
        raise MalformedError("manifest envelope field 'manifest' must be bytes")
    signature = check_bytes("manifest signature", envelope["signature"], SIGNATURE_SIZE)
    publisher.verify(signing_message(body), signature)
    manifest = decode_body(body)
    if manifest.publisher != publisher:
        raise WrongPublisherError(f"manifest names publisher {manifest.publisher.text}")
    if manifest.name != name:
        raise WrongNameError(f"manifest is for model {manifest.name!r}, not {name!r}")
    if manifest.created > now + MAX_CLOCK_SKEW:
        raise FutureTimestampError(f"manifest of {name} is dated {manifest.created - now} s ahead")
    return VerifiedManifest(manifest, data, manifest_hash(data))


def decode_body(body: bytes) -> Manifest:
    """Parse manifest body bytes into a `Manifest`, refusing anything off the schema."""
    fields = require_map(
        canonical.decode(body, what="manifest body", max_size=MAX_MANIFEST_SIZE), "manifest"
    )
    check_format(fields, "format", MANIFEST_FORMATS, "manifest")
    optional = _OPTIONAL_BY_FORMAT[fields["format"]]
    require_keys(fields, _REQUIRED, "manifest", optional)
    if fields["format"] == MANIFEST_FORMAT_WEB_SEEDS and "web_seeds" not in fields:
        raise MalformedError("manifest format 2 names no web seeds: it must be format 1")
    for key in optional & fields.keys():
        if fields[key] is None or fields[key] == []:
            raise MalformedError(f"manifest field {key!r} is present but empty: omit it instead")
    publisher = check_bytes("manifest publisher", fields["publisher"], 32)
    files = _list(fields["files"], "manifest files", MAX_FILES)
    history = _list(fields["history"], "manifest history", MAX_HISTORY)
    tags = fields.get("tags")
    return Manifest(
        publisher=PublicKey(publisher),
        name=require_str(fields["name"], "manifest name"),
        version=require_str(fields["version"], "manifest version"),
        seq=fields["seq"],
        created=fields["created"],
        content_infohash=fields["content"],
        files=tuple(_file_entry(item) for item in files),
        history=tuple(_history_entry(item) for item in history),
        prev=fields.get("prev"),
        yanked=fields.get("yanked"),
        description=fields.get("description"),
        license=fields.get("license"),
        tags=tuple(_list(tags, "manifest tags", MAX_TAGS)) if tags is not None else (),
        web_seeds=decode_web_seeds(fields["web_seeds"]) if "web_seeds" in fields else (),
    )


def _list(value: Any, what: str, limit: int) -> list[Any]:
    if not isinstance(value, list):
        raise MalformedError(f"{what} must be a list")
    if len(value) > limit:
        raise MalformedError(f"{what} has {len(value)} entries; the limit is {limit}")
    return value


def _file_entry(item: Any) -> FileEntry:
    if not isinstance(item, list) or len(item) != 3:
        raise MalformedError("manifest file entry must be [path, size, sha256]")
    return FileEntry(item[0], item[1], item[2])


def _history_entry(item: Any) -> HistoryEntry:
    if not isinstance(item, list) or len(item) != 6:
        raise MalformedError(
            "manifest history entry must be [seq, version, infohash, hash, created, yanked]"
        )
    return HistoryEntry(*item)


def _validate(m: Manifest) -> None:
    """Every field's type and range, path safety and history shape (spec §5.3, §5.4, §6)."""
    try:
        check_name(m.name)
        check_version(m.version)
    except InvalidReferenceError as exc:
        raise MalformedError(f"manifest: {exc.message}") from exc
    check_int("manifest seq", m.seq, 0, MAX_SEQ)
    check_int("manifest created", m.created, 0, MAX_TIME)
    check_infohash("manifest content infohash", m.content_infohash)
    if not m.files:
        raise MalformedError("manifest lists no files")
    paths = [entry.path for entry in m.files]
    check_paths(paths)
    for entry in m.files:
        check_int(f"size of {entry.path!r}", entry.size, 0, MAX_FILE_SIZE)
        check_bytes(f"sha256 of {entry.path!r}", entry.sha256, SHA256_SIZE)
    if paths != sorted(paths):
        raise MalformedError("manifest files are not sorted by path")
    _validate_history(m)
    for what, text, limit in (
        ("yank reason", m.yanked, MAX_YANK_REASON),
        ("description", m.description, MAX_DESCRIPTION),
        ("license", m.license, MAX_LICENSE),
    ):
        if text is not None:
            check_text(text, f"manifest {what}", limit, multiline=what == "description")
    if len(m.tags) > MAX_TAGS:
        raise MalformedError(f"manifest has more than {MAX_TAGS} tags")
    for tag in m.tags:
        check_text(tag, "manifest tag", MAX_TAG)
    if list(m.tags) != sorted(set(m.tags)):
        raise MalformedError("manifest tags must be sorted and unique")
    check_web_seeds(m.web_seeds)


def _validate_history(m: Manifest) -> None:
    previous_seq = -1
    for entry in m.history:
        check_int("history seq", entry.seq, 0, MAX_SEQ)
        if entry.seq <= previous_seq:
            raise MalformedError("manifest history is not in strictly increasing seq order")
        previous_seq = entry.seq
        try:
            check_version(entry.version)
        except InvalidReferenceError as exc:
            raise MalformedError(f"history version: {exc.message}") from exc
        check_infohash("history manifest infohash", entry.manifest_infohash)
        check_bytes("history manifest hash", entry.manifest_hash, SHA256_SIZE)
        check_int("history created", entry.created, 0, MAX_TIME)
        if entry.yanked is not None:
            check_text(entry.yanked, "history yank reason", MAX_YANK_REASON)
    if m.history:
        if m.history[-1].seq >= m.seq:
            raise MalformedError("manifest history holds a seq not older than the manifest's own")
        if m.prev is None:
            raise MalformedError("manifest has history but no 'prev' hash")
        check_bytes("manifest prev", m.prev, SHA256_SIZE)
        if m.prev != m.history[-1].manifest_hash:
            raise MalformedError("manifest 'prev' is not the hash of the last history entry")
    elif m.prev is not None:
        raise MalformedError("manifest has a 'prev' hash but no history")


def check_matches_record(
    verified: VerifiedManifest, seq: int, version: str, *, what: str = "the record"
) -> None:
    """A record (or history row) and the manifest it names must agree on seq and label."""
    m = verified.manifest
    if (m.seq, m.version) != (seq, version):
        raise MalformedError(
            f"{what} names seq {seq} ({version}) but the manifest is seq {m.seq} ({m.version})"
        )
