"""Reading a v1 .torrent (BEP-3 metainfo) from peers, and matching it to a manifest.

Metadata arrives from untrusted peers. Before anything is downloaded, its file list must
be exactly the manifest's files (pad files aside) under the model's name (spec §5.6, §5.7),
and a manifest torrent must be one file in single-file mode.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from . import bencode
from .errors import HostilePathError, IntegrityError, MalformedError, OversizedError
from .manifest import Manifest

MAX_METAINFO_SIZE = 64 * 1024 * 1024
PIECE_HASH_SIZE = 20  # SHA-1, one per piece (BEP-3)


@dataclass(frozen=True)
class TorrentFile:
    """One file of a torrent: path below the torrent's root folder, size, pad flag."""

    path: str
    size: int
    pad: bool


@dataclass(frozen=True)
class Metainfo:
    name: str
    piece_length: int
    files: tuple[TorrentFile, ...]
    infohash_v1: bytes
    single_file: bool

    @property
    def total_size(self) -> int:
        return sum(f.size for f in self.files)


def parse_metainfo(data: bytes) -> Metainfo:
    """Parse .torrent bytes (or a bare info dict wrapped as `d4:info...e`), spec §5.7.

    At most 64 MiB (`OversizedError`); canonical bencode, field types, no symbolic links, no
    non-pad path twice, `pieces` 20 bytes per piece (`MalformedError`); every name and path
    segment a plain component (`HostilePathError`).
    """
    if len(data) > MAX_METAINFO_SIZE:
        raise OversizedError(f"torrent metadata is {len(data)} bytes; limit {MAX_METAINFO_SIZE}")
    top = bencode.decode(data)
    info = top.get(b"info") if isinstance(top, dict) else None
    if not isinstance(info, dict):
        raise MalformedError("torrent has no info dictionary")
    name = _segment(_text(info.get(b"name"), "torrent name"), "torrent name")
    piece_length = info.get(b"piece length")
    if not isinstance(piece_length, int) or piece_length <= 0:
        raise MalformedError("torrent piece length is missing or not positive")
    infohash = hashlib.sha1(bencode.encode(info)).digest()
    if b"files" not in info:
        size = _size(info.get(b"length"))
        _check_pieces(info, piece_length, size)
        return Metainfo(name, piece_length, (TorrentFile(name, size, False),), infohash, True)
    entries = info[b"files"]
    if not isinstance(entries, list) or not entries:
        raise MalformedError("torrent file list is empty or not a list")
    files = []
    for entry in entries:
        if not isinstance(entry, dict):
            raise MalformedError("torrent file entry is not a dictionary")
        parts = entry.get(b"path")
        if not isinstance(parts, list) or not parts:
            raise MalformedError("torrent file entry has no path")
        path = "/".join(_segment(_text(p, "torrent path segment"), "torrent path") for p in parts)
        attr = entry.get(b"attr", b"")
        if not isinstance(attr, bytes):
            raise MalformedError("torrent file attributes are not a byte string")
        if b"l" in attr:
            raise MalformedError(f"torrent lists {path!r} as a symbolic link")
        pad = b"p" in attr
        files.append(TorrentFile(path, _size(entry.get(b"length")), pad))
    real = [f.path for f in files if not f.pad]  # pad files repeat names: .pad/<size>
    if len(set(real)) != len(real):
        raise MalformedError("torrent lists the same file twice")
    _check_pieces(info, piece_length, sum(f.size for f in files))
    return Metainfo(name, piece_length, tuple(files), infohash, False)


def check_blob_metainfo(meta: Metainfo, max_size: int, what: str) -> None:
    """A manifest (or index list) torrent, before download: one file of at most `max_size`.

    Single-file mode only (spec §5.6): a `files` list, even of one entry or with pad entries,
    is `MalformedError`; a length over `max_size` bytes is `OversizedError`.
    """
    if not meta.single_file:
        raise MalformedError(f"{what} is not a single-file torrent")
    if meta.total_size > max_size:
        raise OversizedError(
            f"{what} is not one file under the size limit: {meta.total_size} bytes, "
            f"limit {max_size}"
        )


def check_matches_manifest(meta: Metainfo, manifest: Manifest) -> None:
    """Raise `IntegrityError` unless the torrent holds exactly the manifest's files."""
    if meta.infohash_v1 != manifest.content_infohash:
        raise IntegrityError("content torrent metadata does not hash to the manifest's infohash")
    if meta.name != manifest.name:
        raise IntegrityError(f"content torrent is named {meta.name!r}, not {manifest.name!r}")
    listed = {f.path: f.size for f in meta.files if not f.pad}
    if meta.single_file:
        listed = {}
    wanted = {f.path: f.size for f in manifest.files}
    if listed != wanted:
        raise IntegrityError("content torrent's files differ from the manifest's files")


def _text(value: object, what: str) -> str:
    if not isinstance(value, bytes):
        raise MalformedError(f"{what} is missing")
    try:
        return value.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise MalformedError(f"{what} is not UTF-8") from exc


def _segment(text: str, what: str) -> str:
    """One path component as peers sent it: libtorrent would rewrite anything else."""
    if not text or text in (".", "..") or "/" in text or "\\" in text or "\0" in text:
        raise HostilePathError(f"{what} component {text[:80]!r} is not a plain name")
    return text


def _check_pieces(info: dict[bytes, bencode.Bencodable], piece_length: int, total: int) -> None:
    """`pieces` holds one SHA-1 per piece: 20 * ceil(total / piece length) bytes, pads counted."""
    pieces = info.get(b"pieces")
    count = -(-total // piece_length)
    if not isinstance(pieces, bytes) or len(pieces) != PIECE_HASH_SIZE * count:
        raise MalformedError(
            f"torrent pieces must be {PIECE_HASH_SIZE * count} bytes: 20 for each of "
            f"{count} pieces of {piece_length} bytes"
        )


def _size(value: object) -> int:
    if not isinstance(value, int) or value < 0:
        raise MalformedError("torrent file length is missing or negative")
    return value
