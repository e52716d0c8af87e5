"""The torrents of spec §5.6 built by hand from the text, and torrent metadata §5.7 refuses.

Part of the vector generator (tests/vectors.py): nothing here uses libtorrent to build a
torrent, so the tests can hold libtorrent's output against the text.
"""

from __future__ import annotations

import hashlib
from typing import Any

from hubless.core import bencode
from hubless.net.torrents import BLOB_PIECE, piece_length_for

KIB, MIB, GIB = 1 << 10, 1 << 20, 1 << 30


def manifest_torrent_info(signed: bytes) -> bytes:
    """The manifest torrent's info dict, built from the text of spec §5.6 (not libtorrent)."""
    name = hashlib.sha256(signed).hexdigest() + ".hubless-manifest"
    return bencode.encode(
        {
            b"length": len(signed),
            b"name": name.encode(),
            b"piece length": BLOB_PIECE,
            b"pieces": b"".join(
                hashlib.sha1(signed[at : at + BLOB_PIECE]).digest()
                for at in range(0, len(signed), BLOB_PIECE)
            ),
        }
    )


def content_torrent_info(name: str, files: dict[str, bytes]) -> bytes:
    """The content torrent's info dict, built from the text of spec §5.6 (not libtorrent).

    Files in path order (code point order of the full path); between two files, when the
    first does not end on a piece boundary and either is at least one piece long, a pad
    entry of zeros up to the boundary; SHA-1 of every piece, pads included.
    """
    piece = piece_length_for(sum(len(data) for data in files.values()))
    entries: list[bencode.Bencodable] = []
    stream = bytearray()
    previous_large = False
    for index, (path, data) in enumerate(sorted(files.items())):
        large = len(data) >= piece
        pad = -len(stream) % piece if index and (large or previous_large) else 0
        if pad:
            entries.append({b"attr": b"p", b"length": pad, b"path": [b".pad", b"%d" % pad]})
            stream += bytes(pad)
        entries.append({b"length": len(data), b"path": [s.encode() for s in path.split("/")]})
        stream += data
        previous_large = large
    pieces = b"".join(
        hashlib.sha1(stream[at : at + piece]).digest() for at in range(0, len(stream), piece)
    )
    return bencode.encode(
        {b"files": entries, b"name": name.encode(), b"piece length": piece, b"pieces": pieces}
    )


def infohash(info: bytes) -> bytes:
    return hashlib.sha1(info).digest()


PATTERN = 32  # a file longer than this is given as a pattern of its first 32 bytes repeated


def file_json(path: str, data: bytes) -> list[Any]:
    """`[path, hex]`, or `[path, pattern hex, size]` for a file that repeats its first 32
    bytes up to `size` (keeps files of a piece or more small in torrents.json)."""
    if len(data) <= 64:
        return [path, data.hex()]
    pattern = data[:PATTERN]
    assert (pattern * (len(data) // PATTERN + 1))[: len(data)] == data, path
    return [path, pattern.hex(), len(data)]


def file_bytes(entry: list[Any]) -> bytes:
    """The bytes a `files` entry of torrents.json stands for (the inverse of `file_json`)."""
    data = bytes.fromhex(entry[1])
    return (data * (entry[2] // len(data) + 1))[: entry[2]] if len(entry) == 3 else data


def content_torrent_case(description: str, name: str, files: dict[str, bytes]) -> dict[str, Any]:
    """A torrents.json vector: the files, and the content torrent §5.6 makes of them."""
    info = content_torrent_info(name, files)
    fields = bencode.decode(info)
    assert isinstance(fields, dict) and isinstance(fields[b"files"], list)
    return {
        "description": description,
        "name": name,
        "files": [file_json(path, data) for path, data in sorted(files.items())],
        "piece_length": fields[b"piece length"],
        "entries": [_entry_json(entry) for entry in fields[b"files"]],
        "pieces": _bytes(fields[b"pieces"]).hex(),
        "info": info.hex(),
        "infohash": infohash(info).hex(),
    }


def repeated(pattern: bytes, size: int) -> bytes:
    return (pattern * (size // len(pattern) + 1))[:size]


def mixed_files() -> dict[str, bytes]:
    """Small files packed between files of at least one piece (256 KiB): every pad rule."""
    return {
        "a.txt": b"aaaaa",  # packed at 0
        "b.bin": repeated(hashlib.sha256(b"b").digest(), 256 * KIB + 3),  # pad before, after
        "c.txt": b"cc",  # starts on a boundary (after b's pad)
        "d.bin": repeated(hashlib.sha256(b"d").digest(), 256 * KIB),  # pad before; ends aligned
        "e.txt": b"e",  # no pad after d (d ends on a boundary) and none after the last file
    }


def _bytes(value: bencode.Bencodable) -> bytes:
    assert isinstance(value, bytes)
    return value


def _entry_json(entry: bencode.Bencodable) -> dict[str, Any]:
    assert isinstance(entry, dict) and isinstance(entry[b"path"], list)
    out: dict[str, Any] = {
        "length": entry[b"length"],
        "path": [_bytes(part).decode() for part in entry[b"path"]],
    }
    if b"attr" in entry:
        out["attr"] = _bytes(entry[b"attr"]).decode()
    return out


def pieces_of(sizes: list[int], piece: int) -> int:
    """Pieces of a content torrent of files of `sizes` in this order, laid out as §5.6 says."""
    offset, previous_large = 0, False
    for index, size in enumerate(sizes):
        large = size >= piece
        if index and (large or previous_large):
            offset += -offset % piece
        offset += size
        previous_large = large
    return -(-offset // piece)


def piece_lengths() -> list[dict[str, Any]]:
    """The piece-length rule of §5.6 at its boundaries; `pieces` counts pad entries too."""
    cases = []
    for description, sizes in (
        ("one byte", [[1, 1]]),
        ("exactly 4096 pieces of 256 KiB", [[4096 * 256 * KIB, 1]]),
        ("one byte more: 512 KiB", [[4096 * 256 * KIB + 1, 1]]),
        ("two files, one byte over 1 GiB together: 512 KiB", [[512 * MIB + 1, 1], [512 * MIB, 1]]),
        ("4097 one-byte files: 256 KiB, packed into one piece", [[1, 4097]]),
        ("2001 files of 1000 bytes: packed, 8 pieces", [[1000, 2001]]),
        ("exactly 64 GiB: 16 MiB", [[64 * GIB, 1]]),
        ("above 64 GiB: still 16 MiB, more than 4096 pieces", [[64 * GIB + 1, 1]]),
        ("982 GB", [[982 * 10**9, 1]]),
    ):
        total = sum(size * count for size, count in sizes)
        piece = piece_length_for(total)
        flat = [size for size, count in sizes for _ in range(count)]
        cases.append(
            {
                "description": description,
                "file_sizes": sizes,
                "total_size": total,
                "piece_length": piece,
                "pieces": pieces_of(flat, piece),
            }
        )
    return cases


def _torrent(info: dict[bytes, bencode.Bencodable]) -> bytes:
    return b"d4:info" + bencode.encode(info) + b"e"


def invalid_torrents() -> list[dict[str, Any]]:
    """Torrent metadata from peers that §5.7 refuses, or that is no manifest torrent (§5.6)."""
    piece = 16384

    def files_info(entries: list[tuple[list[bytes], int, bytes]], pieces: int) -> bytes:
        """A `files` torrent of `entries` (path, length, attr) with `pieces` bytes of pieces."""
        return _torrent(
            {
                b"files": [
                    {b"length": size, b"path": path, **({b"attr": attr} if attr else {})}
                    for path, size, attr in entries
                ],
                b"name": b"tiny-llama",
                b"piece length": piece,
                b"pieces": b"\x01" * pieces,
            }
        )

    a, pad, b = ([b"a.bin"], 10, b""), ([b".pad", b"16374"], 16374, b"p"), ([b"b.bin"], 10, b"")
    blob = {b"length": 100, b"name": b"m.hubless-manifest", b"piece length": piece}
    cases = [
        ("pieces one byte short", "MalformedError", False, files_info([a], 19)),
        ("no pieces", "MalformedError", False, _torrent({**blob})),
        (
            "pieces for 1 piece where the pad entry makes 2 (pads count)",
            "MalformedError",
            False,
            files_info([a, pad, b], 20),
        ),
        ("a symbolic link entry", "MalformedError", False, files_info([(*a[:2], b"l")], 20)),
        ("a non-pad path listed twice", "MalformedError", False, files_info([a, pad, a], 40)),
        ("a '..' path segment", "HostilePathError", False, files_info([([b".."], 1, b"")], 20)),
        (
            "a path segment holding '/'",
            "HostilePathError",
            False,
            files_info([([b"sub/a.bin"], 1, b"")], 20),
        ),
        (
            "a torrent name holding '/'",
            "HostilePathError",
            False,
            _torrent({**blob, b"name": b"a/m", b"pieces": b"\x01" * 20}),
        ),
        (
            "manifest torrent in multi-file mode with one entry",
            "MalformedError",
            True,
            files_info([a], 20),
        ),
        (
            "manifest torrent with one file and a pad entry",
            "MalformedError",
            True,
            files_info([a, pad], 20),
        ),
        (
            "manifest torrent of 32 MiB + 1 byte",
            "OversizedError",
            True,
            _torrent(
                {
                    **blob,
                    b"length": 32 * MIB + 1,
                    b"piece length": 16 * MIB,
                    b"pieces": b"\x01" * 20 * 3,
                }
            ),
        ),
    ]
    return [
        {
            "kind": "torrent",
            "description": description,
            "error": error,
            "manifest_torrent": manifest_torrent,
            "torrent": data.hex(),
        }
        for description, error, manifest_torrent, data in cases
    ]
