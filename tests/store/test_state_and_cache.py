"""Local state never moves backwards, and the cache only ever shows complete, verified files."""

from __future__ import annotations

import hashlib
import multiprocessing
import os
from pathlib import Path

import pytest
from hubless.core.errors import IntegrityError, StoreError
from hubless.core.keys import SigningKey
from hubless.core.manifest import FileEntry
from hubless.store import cache as cache_module
from hubless.store.cache import Cache, materialise
from hubless.store.hashed import hash_in_place
from hubless.store.state import KnownModel, State

KEY = SigningKey(hashlib.sha256(b"state").digest()).public


def model(seq: int) -> KnownModel:
    return KnownModel(KEY, "m", seq, f"v{seq}", bytes([seq]) * 32, bytes([seq]) * 20, b"manifest")


def test_remember_never_lowers_the_seq(tmp_path: Path) -> None:
    state = State(tmp_path / "state.db")
    state.remember(model(3))
    state.remember(model(2))
    known = state.known(KEY, "m")
    assert known is not None and known.seq == 3
    state.remember(model(4))
    assert state.known(KEY, "m").seq == 4  # type: ignore[union-attr]


def _remember_then_die(path: str) -> None:
    state = State(Path(path))
    with state.transaction() as db:
        db.execute("UPDATE models SET seq = 99")
        os._exit(9)  # dies inside the transaction, before COMMIT


def test_a_crash_inside_a_transaction_changes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    State(path).remember(model(5))
    child = multiprocessing.get_context("spawn").Process(
        target=_remember_then_die, args=(str(path),)
    )
    child.start()
    child.join(30)
    assert child.exitcode == 9
    assert State(path).known(KEY, "m").seq == 5  # type: ignore[union-attr]


def entry(path: str, data: bytes) -> FileEntry:
    return FileEntry(path, len(data), hashlib.sha256(data).digest())


def test_blobs_are_verified_before_they_enter(tmp_path: Path) -> None:
    cache = Cache(tmp_path / "cache")
    good = tmp_path / "good.bin"
    good.write_bytes(b"weights")
    e = entry("w.bin", b"weights")
    blob = cache.add_blob(good, e)
    assert blob.read_bytes() == b"weights" and cache.has_blob(e)
    bad = tmp_path / "bad.bin"
    bad.write_bytes(b"tampered")
    other = entry("x.bin", b"expected")
    with pytest.raises(IntegrityError, match="does not match the manifest"):
        cache.add_blob(bad, other)
    assert not cache.has_blob(other)
    assert (tmp_path / "cache" / "CACHEDIR.TAG").read_bytes().startswith(b"Signature: 8a477f59")


def test_a_file_hashed_while_it_downloaded_is_not_hashed_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = Cache(tmp_path / "cache")
    src = tmp_path / "weights.bin"
    src.write_bytes(b"w" * 5000)
    hashed = hash_in_place(src)
    assert hashed is not None
    monkeypatch.setattr(cache_module, "sha256_file", _no_hashing)
    blob = cache.add_blob(src, entry("w.bin", b"w" * 5000), move=True, hashed=hashed)
    assert blob.read_bytes() == b"w" * 5000 and not src.exists()
    assert not list(cache.tmp.iterdir())  # the private folder it passed through is gone


def test_a_file_written_after_it_was_hashed_is_hashed_again(tmp_path: Path) -> None:
    cache = Cache(tmp_path / "cache")
    src = tmp_path / "weights.bin"
    src.write_bytes(b"w" * 5000)
    hashed = hash_in_place(src)
    assert hashed is not None
    before = src.stat().st_mtime_ns
    src.write_bytes(b"x" * 5000)  # same size, other bytes, a later modification time
    os.utime(src, ns=(before + 10**9, before + 10**9))
    e = entry("w.bin", b"w" * 5000)
    with pytest.raises(IntegrityError, match="does not match the manifest"):
        cache.add_blob(src, e, move=True, hashed=hashed)
    assert not cache.has_blob(e)
    wrong = hash_in_place(tmp_path / "missing.bin")
    assert wrong is None


def _no_hashing(path: Path) -> bytes:
    raise AssertionError(f"{path} was hashed again")


def test_snapshots_share_unchanged_files_and_appear_whole(tmp_path: Path) -> None:
    cache = Cache(tmp_path / "cache")
    files = []
    for name, data in (("config.json", b"{}"), ("model.safetensors", b"x" * 100)):
        src = tmp_path / name
        src.write_bytes(data)
        files.append(entry(name, data))
        cache.add_blob(src, files[-1])
    one = cache.snapshot(KEY, "m", 1, files, b"manifest-1")
    two = cache.snapshot(KEY, "m", 2, files, b"manifest-2")
    assert (one / "model.safetensors").stat().st_ino == (two / "model.safetensors").stat().st_ino
    assert (one / ".hubless" / "manifest").read_bytes() == b"manifest-1"
    missing = [*files, entry("new.bin", b"not cached")]
    with pytest.raises(StoreError, match="not in the cache"):
        cache.snapshot(KEY, "m", 3, missing, b"manifest-3")
    assert not cache.snapshot_dir(KEY, "m", 3).exists()  # nothing half-made is visible
    assert not [
        p for p in cache.snapshot_dir(KEY, "m", 3).parent.iterdir() if p.name.startswith(".")
    ]


def test_materialise_refuses_a_non_empty_folder(tmp_path: Path) -> None:
    cache = Cache(tmp_path / "cache")
    target = tmp_path / "out"
    target.mkdir()
    (target / "keep.txt").write_text("mine")
    with pytest.raises(StoreError, match="not empty"):
        materialise(cache, [], target, b"m")
    assert (target / "keep.txt").read_text() == "mine"
