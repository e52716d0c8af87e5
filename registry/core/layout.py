"""The content torrent's layout: piece length, file order and pad entries (spec §5.6).

Pure rules, no hashing and no files: which entries (files and BEP-47 pad files) a content
torrent lists, at which offsets, and the bencoded info dict once the piece hashes are known.
Files of at least one piece are aligned (they start on a piece boundary and the next entry
starts on one), so an unchanged large file keeps its piece hashes and a selection of large
files fetches no neighbour's bytes; smaller files are packed back to back, so a model of
many small files costs no padding (`decisions/0001-content-torrent-v1-pad-aligned.md`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from . import bencode

MIN_PIECE = 256 * 1024
MAX_PIECE = 16 * 1024 * 1024
TARGET_PIECES = 4096
PAD_FOLDER = ".pad"


def piece_length_for(total_size: int) -> int:
    """The content torrent's piece length in bytes for files summing to `total_size` (§5.6).

    The smallest power of two P from 256 KiB to 16 MiB with `total_size <= 4096 * P`, and
    16 MiB above 64 GiB. `total_size` is the sum of the files' sizes without padding.
    """
    piece = MIN_PIECE
    while piece < MAX_PIECE and total_size > piece * TARGET_PIECES:
        piece *= 2
    return piece


@dataclass(frozen=True)
class Entry:
    """One entry of a content torrent's `files` list: a file, or a pad file of zeros.

    `path` is below the torrent's root folder (`.pad/<size>` for a pad entry); `offset` is
    where the entry's bytes start in the concatenation of all entries.
    """

    path: str
    size: int
    offset: int
    pad: bool = False


def content_entries(files: Iterable[tuple[str, int]], piece: int) -> list[Entry]:
    """The `files` entries of a content torrent (§5.6) for (path, size) pairs, any order.

    Files go in code point order of their path. Between two consecutive files A and B a pad
    entry of P - (end of A mod P) bytes is inserted when A does not end on a piece boundary
    and A or B is at least P bytes long; none before the first file or after the last.
    """
    ordered = sorted(files)
    out: list[Entry] = []
    offset = 0
    previous_large = False
    for index, (path, size) in enumerate(ordered):
        large = size >= piece
        if index and offset % piece and (large or previous_large):
            pad = piece - offset % piece
            out.append(Entry(f"{PAD_FOLDER}/{pad}", pad, offset, pad=True))
            offset += pad
        out.append(Entry(path, size, offset))
        offset += size
        previous_large = large
    return out


def total_length(entries: Iterable[Entry]) -> int:
    """Bytes of the concatenation of all entries, pads included."""
    return sum(e.size for e in entries)


def piece_count(entries: list[Entry], piece: int) -> int:
    """Pieces of a torrent of `entries`: the last one may be shorter than `piece`."""
    return -(-total_length(entries) // piece)


def content_info(name: str, entries: list[Entry], piece: int, pieces: bytes) -> bytes:
    """The bencoded info dict of §5.6: `files`, `name`, `piece length`, `pieces`, nothing else.

    A file entry is `{length, path}`; a pad entry `{attr: "p", length, path: [".pad", N]}`.
    `pieces` must hold 20 bytes (SHA-1) per piece.
    """
    if len(pieces) != 20 * piece_count(entries, piece):
        raise AssertionError("pieces must hold one SHA-1 per piece")  # a caller bug, not input
    listed: list[bencode.Bencodable] = []
    for entry in entries:
        fields: dict[bytes, bencode.Bencodable] = {
            b"length": entry.size,
            b"path": [part.encode() for part in entry.path.split("/")],
        }
        if entry.pad:
            fields[b"attr"] = b"p"
        listed.append(fields)
    return bencode.encode(
        {b"files": listed, b"name": name.encode(), b"piece length": piece, b"pieces": pieces}
    )
