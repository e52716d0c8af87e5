"""Content and blob torrents: our one-pass hashing agrees with libtorrent's own, byte for byte."""

from __future__ import annotations

import hashlib
import os
import random
import warnings
from pathlib import Path

import libtorrent as lt
import pytest
from hubless.core.errors import HostilePathError, UsageError
from hubless.core.layout import content_entries
from hubless.net.torrents import (
    MAX_PIECE,
    MIN_PIECE,
    create_blob_torrent,
    create_content_torrent,
    file_priorities_for,
    infohash_of,
    piece_length_for,
    torrent_files,
)

KIB = 1024
MIB = 1024 * KIB


def _write(folder: Path, files: dict[str, int], seed: int = 1) -> list[str]:
    rng = random.Random(seed)
    for rel, size in files.items():
        path = folder / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(rng.randbytes(size))
    return list(files)


FILES = {
    "config.json": 1000,
    "model-00001.safetensors": 700 * KIB,
    "model-00002.safetensors": 256 * KIB,  # exactly one piece
    "tokenizer/vocab.txt": 37,
    "empty.txt": 0,
}


@pytest.fixture
def model(tmp_path: Path) -> Path:
    folder = tmp_path / "tiny-model"
    _write(folder, FILES)
    return folder


def _reference(folder: Path, relpaths: list[str], piece: int) -> bytes:
    """The same torrent hashed by libtorrent itself (set_piece_hashes), pads placed as §5.6
    says: the layout is ours, every piece hash is libtorrent's."""
    sizes = {rel: (folder / rel).stat().st_size for rel in relpaths}
    storage = lt.file_storage()
    for entry in content_entries(sizes.items(), piece):
        flags = lt.file_storage.flag_pad_file if entry.pad else 0
        storage.add_file(f"{folder.name}/{entry.path}", entry.size, flags)
    with warnings.catch_warnings():  # the file_storage constructor is deprecated in 2.1
        warnings.simplefilter("ignore", DeprecationWarning)
        ct = lt.create_torrent(storage, piece, lt.create_torrent.v1_only)
    lt.set_piece_hashes(ct, str(folder.parent))
    ct.set_creation_date(0)
    return bytes(lt.bencode(ct.generate()))


def test_one_pass_hashing_matches_libtorrent(model: Path) -> None:
    made = create_content_torrent(model, FILES)
    assert made.torrent_bytes == _reference(model, list(FILES), made.piece_length)
    assert made.infohash_v1 == infohash_of(made.torrent_bytes)
    info = lt.bencode(lt.bdecode(made.torrent_bytes)[b"info"])
    assert made.infohash_v1 == hashlib.sha1(info).digest()


def test_file_sha256_and_sizes(model: Path) -> None:
    made = create_content_torrent(model, FILES)
    assert dict(made.sizes) == FILES
    for rel in FILES:
        assert made.file_sha256[rel] == hashlib.sha256((model / rel).read_bytes()).digest()


def test_hashing_with_several_pieces_per_read(tmp_path: Path) -> None:
    folder = tmp_path / "m"
    _write(folder, {"big.bin": 9 * MIB + 123, "small.bin": 5})
    made = create_content_torrent(folder, ["big.bin", "small.bin"])
    assert made.torrent_bytes == _reference(folder, ["big.bin", "small.bin"], made.piece_length)


def test_same_files_same_infohash(model: Path, tmp_path: Path) -> None:
    first = create_content_torrent(model, FILES)
    again = create_content_torrent(model, reversed(list(FILES)))
    assert first.torrent_bytes == again.torrent_bytes
    elsewhere = tmp_path / "copy"
    _write(elsewhere, FILES)
    renamed = create_content_torrent(elsewhere, FILES, name="tiny-model")
    assert renamed.infohash_v1 == first.infohash_v1


def test_torrent_is_v1_with_large_files_aligned_and_small_ones_packed(model: Path) -> None:
    made = create_content_torrent(model, FILES)
    info = lt.torrent_info(lt.bdecode(made.torrent_bytes))
    assert not info.info_hashes().has_v2()
    files, piece = info.layout(), made.piece_length
    real = [
        i
        for i in range(files.num_files())
        if not files.file_flags(i) & lt.file_storage.flag_pad_file
    ]
    for i, following in zip(real, [*real[1:], None], strict=True):
        if files.file_size(i) >= piece:  # starts on a boundary, and so does the next file
            assert files.file_offset(i) % piece == 0
            if following is not None:
                assert files.file_offset(following) % piece == 0
    small = [i for i in real if files.file_size(i) < piece]
    # config.json, empty.txt and tokenizer/vocab.txt: no pad between config.json and empty.txt
    assert files.file_offset(small[1]) == files.file_offset(small[0]) + files.file_size(small[0])
    pads = sum(files.file_size(i) for i in range(files.num_files())) - sum(FILES.values())
    assert 0 < pads < 2 * piece
    assert b"creation date" not in made.torrent_bytes


def test_many_small_files_cost_no_padding(tmp_path: Path) -> None:
    folder = tmp_path / "m"
    sizes = {f"tok/piece-{i:04d}.json": 900 + i % 200 for i in range(2001)}
    _write(folder, sizes)
    made = create_content_torrent(folder, sizes)
    assert made.torrent_bytes == _reference(folder, list(sizes), made.piece_length)
    info = lt.torrent_info(lt.bdecode(made.torrent_bytes))
    assert info.total_size() == sum(sizes.values())  # not one pad byte
    assert info.num_pieces() == -(-sum(sizes.values()) // made.piece_length)


def test_changing_one_file_changes_only_its_pieces(model: Path) -> None:
    before = create_content_torrent(model, FILES)
    (model / "config.json").write_bytes(b"{}" * 500)
    after = create_content_torrent(model, FILES)
    hashes = [lt.bdecode(t.torrent_bytes)[b"info"][b"pieces"] for t in (before, after)]
    pieces = [[h[i : i + 20] for i in range(0, len(h), 20)] for h in hashes]
    changed = [i for i, (a, b) in enumerate(zip(*pieces, strict=True)) if a != b]
    assert len(changed) == 1


def test_piece_length_scales_with_size() -> None:
    assert piece_length_for(0) == MIN_PIECE
    assert piece_length_for(1024 * MIB) == MIN_PIECE
    assert piece_length_for(2 * 1024 * MIB) == 512 * KIB
    assert piece_length_for(20 * 1024 * MIB) == 8 * MIB
    assert piece_length_for(982 * 1024**3) == MAX_PIECE


@pytest.mark.parametrize("rel", ["../x", "/etc/passwd", "a/../../b", "a//b", "./a", ""])
def test_hostile_paths_are_refused(model: Path, rel: str) -> None:
    with pytest.raises(HostilePathError):
        create_content_torrent(model, [rel])


def test_file_priorities_select_named_files(model: Path) -> None:
    made = create_content_torrent(model, FILES)
    assert torrent_files(made.torrent_bytes) == FILES
    priorities = file_priorities_for(made.torrent_bytes, ["config.json"])
    info = lt.torrent_info(lt.bdecode(made.torrent_bytes))
    chosen = [info.layout().file_path(i) for i, p in enumerate(priorities) if p]
    assert chosen == [os.path.join("tiny-model", "config.json")]
    with pytest.raises(UsageError):
        file_priorities_for(made.torrent_bytes, ["nope"])


def test_blob_torrent_is_deterministic() -> None:
    data = random.Random(7).randbytes(40_000)
    torrent, infohash = create_blob_torrent("manifest", data)
    assert (torrent, infohash) == create_blob_torrent("manifest", data)
    info = lt.torrent_info(lt.bdecode(torrent))
    assert info.piece_length() == 16 * KIB and info.num_pieces() == 3
    assert infohash == infohash_of(torrent)
    assert torrent.startswith(b"d4:info") and b"creation date" not in torrent
