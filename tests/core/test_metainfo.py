"""Torrent metadata from peers is parsed strictly and must list exactly the manifest's files."""

from __future__ import annotations

import hashlib

import pytest
from hubless.core import bencode
from hubless.core.errors import HostilePathError, IntegrityError, MalformedError, OversizedError
from hubless.core.keys import SigningKey
from hubless.core.manifest import FileEntry, Manifest
from hubless.core.metainfo import (
    Metainfo,
    check_blob_metainfo,
    check_matches_manifest,
    parse_metainfo,
)

KEY = SigningKey(hashlib.sha256(b"metainfo").digest())


def torrent(files: list[tuple[str, int, bytes]], name: bytes = b"m") -> tuple[bytes, bytes]:
    info: dict[bytes, bencode.Bencodable] = {
        b"name": name,
        b"piece length": 16384,
        b"pieces": b"\x00" * 20 * -(-sum(size for _, size, _ in files) // 16384),
        b"files": [
            {
                b"length": size,
                b"path": path.encode().split(b"/"),
                **({b"attr": attr} if attr else {}),
            }
            for path, size, attr in files
        ],
    }
    return bencode.encode({b"info": info}), hashlib.sha1(bencode.encode(info)).digest()


def manifest(content: bytes, files: list[tuple[str, int]]) -> Manifest:
    entries = tuple(FileEntry(p, s, hashlib.sha256(p.encode()).digest()) for p, s in files)
    return Manifest(KEY.public, "m", "v1", 1, 0, content, entries)


def test_matching_torrent_with_pad_files_passes() -> None:
    data, ih = torrent([("a.bin", 10, b""), (".pad/16374", 16374, b"p"), ("b/c.json", 5, b"")])
    meta = parse_metainfo(data)
    assert meta.infohash_v1 == ih and meta.name == "m"
    check_matches_manifest(meta, manifest(ih, [("a.bin", 10), ("b/c.json", 5)]))


@pytest.mark.parametrize(
    "files,name",
    [
        ([("a.bin", 10, b"")], b"m"),  # a file missing
        ([("a.bin", 11, b""), ("b/c.json", 5, b"")], b"m"),  # wrong size
        ([("a.bin", 10, b""), ("b/c.json", 5, b"p")], b"m"),  # a real file disguised as padding
        ([("a.bin", 10, b""), ("b/c.json", 5, b""), ("extra", 1, b"")], b"m"),  # an extra file
        ([("a.bin", 10, b""), ("b/c.json", 5, b"")], b"other"),  # another root folder
    ],
)
def test_torrents_that_differ_from_the_manifest_are_refused(
    files: list[tuple[str, int, bytes]], name: bytes
) -> None:
    data, ih = torrent(files, name)
    with pytest.raises(IntegrityError):
        check_matches_manifest(parse_metainfo(data), manifest(ih, [("a.bin", 10), ("b/c.json", 5)]))


def test_a_torrent_for_another_infohash_is_refused() -> None:
    data, _ = torrent([("a.bin", 10, b"")])
    with pytest.raises(IntegrityError):
        check_matches_manifest(parse_metainfo(data), manifest(b"\x05" * 20, [("a.bin", 10)]))


@pytest.mark.parametrize(
    "data",
    [b"", b"de", b"d4:infoi1ee", b"d4:infod4:name1:m12:piece lengthi0eee", b"x" * 10],
)
def test_malformed_metadata_is_refused(data: bytes) -> None:
    with pytest.raises(MalformedError):
        parse_metainfo(data)


def test_symlink_entries_are_refused() -> None:
    data, _ = torrent([("a.bin", 10, b"l")])
    with pytest.raises(MalformedError, match="symbolic link"):
        parse_metainfo(data)


@pytest.mark.parametrize(
    "files,name",
    [
        ([("a/../../evil.sh", 1, b"")], b"m"),  # a '..' segment
        ([("a/./b", 1, b"")], b"m"),  # a '.' segment
        ([("a//b", 1, b"")], b"m"),  # an empty segment
        ([("a.bin", 1, b"")], b"m/n"),  # a folder hidden in the root name
        ([("a.bin", 1, b"")], b".."),
    ],
)
def test_path_components_libtorrent_would_rewrite_are_refused(
    files: list[tuple[str, int, bytes]], name: bytes
) -> None:
    data, _ = torrent(files, name)
    with pytest.raises(HostilePathError):
        parse_metainfo(data)


def test_a_segment_holding_a_slash_is_refused() -> None:
    info = {
        b"name": b"m",
        b"piece length": 16384,
        b"pieces": b"",
        b"files": [{b"length": 1, b"path": [b"tokenizer/vocab.txt"]}],
    }
    with pytest.raises(HostilePathError):
        parse_metainfo(bencode.encode({b"info": info}))


def test_the_same_file_twice_is_refused() -> None:
    data, _ = torrent([("a.bin", 1, b""), ("a.bin", 1, b"")])
    with pytest.raises(MalformedError, match="twice"):
        parse_metainfo(data)


def test_pad_files_of_equal_size_share_a_name() -> None:
    """libtorrent names pad files `.pad/<size>`: equal-size shards repeat the name."""
    data, _ = torrent(
        [
            ("a.bin", 10, b""),
            (".pad/16374", 16374, b"p"),
            ("b.bin", 10, b""),
            (".pad/16374", 16374, b"p"),
            ("c.bin", 10, b""),
        ]
    )
    assert [f.path for f in parse_metainfo(data).files if not f.pad] == ["a.bin", "b.bin", "c.bin"]


def test_pieces_must_be_20_bytes_per_piece_pads_counted() -> None:
    """§5.7: ceil(total / piece length) pieces, where total includes the pad files."""
    files = [("a.bin", 10, b""), (".pad/16374", 16374, b"p"), ("b.bin", 10, b"")]
    good, _ = torrent(files)
    assert len(parse_metainfo(good).files) == 3
    info = bencode.decode(good)
    assert isinstance(info, dict) and isinstance(info[b"info"], dict)
    for pieces in (b"", b"\x00" * 20, b"\x00" * 39, b"\x00" * 60):
        bad = bencode.encode({b"info": {**info[b"info"], b"pieces": pieces}})
        with pytest.raises(MalformedError, match="pieces"):
            parse_metainfo(bad)


def blob(info: dict[bytes, bencode.Bencodable]) -> Metainfo:
    return parse_metainfo(bencode.encode({b"info": info}))


def test_a_manifest_torrent_is_one_file_in_single_file_mode() -> None:
    single = {b"length": 100, b"name": b"m", b"piece length": 16384, b"pieces": b"\x00" * 20}
    check_blob_metainfo(blob(single), 100, "manifest torrent")
    with pytest.raises(OversizedError, match="not one file under the size limit"):
        check_blob_metainfo(blob(single), 99, "manifest torrent")
    one_entry, _ = torrent([("m", 100, b"")])
    with pytest.raises(MalformedError, match="single-file"):
        check_blob_metainfo(parse_metainfo(one_entry), 100, "manifest torrent")
