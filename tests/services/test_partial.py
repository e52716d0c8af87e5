"""Which cached file a download starts from (spec §8.4): same path, nearest revision first,
else the same size; never the revision itself, never a link; a resumed download is kept."""

from __future__ import annotations

import hashlib
from pathlib import Path

from hubless.core.manifest import FileEntry, Manifest
from hubless.services.partial import lay_down, starting_files
from hubless.store.cache import Cache

from .conftest import NAME, PUBLISHER


def entry(path: str, data: bytes) -> FileEntry:
    return FileEntry(path, len(data), hashlib.sha256(data).digest())


def manifest(seq: int, *files: FileEntry) -> Manifest:
    history = ()
    return Manifest(PUBLISHER.public, NAME, f"v{seq}", seq, 1, b"\x01" * 20, tuple(files), history)


def snapshot(cache: Cache, name: str, files: dict[str, bytes]) -> Path:
    folder = cache.model_dir(PUBLISHER.public, NAME) / "snapshots" / name
    for rel, data in files.items():
        (folder / rel).parent.mkdir(parents=True, exist_ok=True)
        (folder / rel).write_bytes(data)
    (folder / ".hubless").mkdir(parents=True, exist_ok=True)
    (folder / ".hubless" / "manifest").write_bytes(b"x" * 9)
    return folder


def test_same_path_from_the_nearest_revision(tmp_path: Path) -> None:
    cache = Cache(tmp_path / "cache")
    snapshot(cache, "1", {"w.bin": b"one"})
    near = snapshot(cache, "3", {"w.bin": b"three"})
    snapshot(cache, "4", {"w.bin": b"four, the revision being pulled"})
    wanted = entry("w.bin", b"four")
    assert starting_files(cache, manifest(4, wanted), [wanted]) == {"w.bin": near / "w.bin"}


def test_same_size_when_no_path_matches_and_never_the_manifest_folder(tmp_path: Path) -> None:
    cache = Cache(tmp_path / "cache")
    old = snapshot(cache, "2~abc", {"old-name.bin": b"12345678", "other.bin": b"123"})
    renamed, fresh, empty = (
        entry("new-name.bin", b"abcdefgh"),
        entry("n.bin", b"9" * 9),
        entry("e.txt", b""),
    )
    got = starting_files(cache, manifest(3, empty, fresh, renamed), [renamed, fresh, empty])
    # 9 bytes is the size of .hubless/manifest, which is not a model file
    assert got == {"new-name.bin": old / "old-name.bin"}


def test_links_are_not_followed(tmp_path: Path) -> None:
    cache = Cache(tmp_path / "cache")
    folder = snapshot(cache, "1", {})
    outside = tmp_path / "secret"
    outside.write_bytes(b"secret")
    (folder / "w.bin").symlink_to(outside)
    wanted = entry("w.bin", b"public")
    assert starting_files(cache, manifest(2, wanted), [wanted]) == {}


def test_lay_down_cuts_to_size_and_keeps_what_is_there(tmp_path: Path) -> None:
    cache = Cache(tmp_path / "cache")
    old = snapshot(cache, "1", {"a.bin": b"0123456789", "b.bin": b"old"})
    root = tmp_path / "partial" / NAME
    (root).mkdir(parents=True)
    (root / "b.bin").write_bytes(b"resumed")
    starts = {"a.bin": old / "a.bin", "b.bin": old / "b.bin"}
    laid = lay_down(starts, root, {"a.bin": 4, "b.bin": 3})
    assert laid == 4
    assert (root / "a.bin").read_bytes() == b"0123"
    assert (root / "b.bin").read_bytes() == b"resumed"
    assert (root / "a.bin").stat().st_mode & 0o200  # libtorrent writes the changed pieces


def test_no_link_on_the_way_is_followed(tmp_path: Path) -> None:
    """A cache others can write only warns (spec §8.4): a linked revision folder, or a linked
    folder inside one, must not make a pull copy the user's own files into the cache."""
    cache = Cache(tmp_path / "cache")
    outside = tmp_path / "home-of-the-user"
    (outside / "sub").mkdir(parents=True)
    (outside / "w.bin").write_bytes(b"secret")
    (outside / "sub" / "w.bin").write_bytes(b"secret")
    snapshots = cache.model_dir(PUBLISHER.public, NAME) / "snapshots"
    snapshots.mkdir(parents=True)
    (snapshots / "1").symlink_to(outside, target_is_directory=True)
    inner = snapshot(cache, "2", {})
    (inner / "sub").symlink_to(outside / "sub", target_is_directory=True)
    wanted, nested = entry("w.bin", b"public"), entry("sub/w.bin", b"public")
    assert starting_files(cache, manifest(3, nested, wanted), [nested, wanted]) == {}
    root = tmp_path / "partial" / NAME
    starts = {"sub/w.bin": inner / "sub" / "w.bin"}
    assert lay_down(starts, root, {"sub/w.bin": 6}, under=cache.root) == 0
    assert not (root / "sub" / "w.bin").exists()
