"""Keys at rest: sealed with a passphrase, 0600, and every way to get it wrong is a clear error."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest
from hubless.core.errors import KeyStoreError, UsageError
from hubless.store.keystore import KeyStore


def test_passphrase_round_trip_and_file_mode(tmp_path: Path) -> None:
    store = KeyStore(tmp_path / "keys")
    info = store.create("alice", "correct horse")
    assert info.encrypted
    assert stat.S_IMODE(os.stat(info.path).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(tmp_path / "keys").st_mode) == 0o700
    key = store.load("alice", "correct horse")
    assert key.public == info.public
    assert key.seed.hex() not in info.path.read_text()  # the seed is not stored in the clear


def test_wrong_or_missing_passphrase_is_a_clear_error(tmp_path: Path) -> None:
    store = KeyStore(tmp_path)
    store.create("alice", "right horse")
    with pytest.raises(KeyStoreError, match="wrong passphrase"):
        store.load("alice", "wrong")
    with pytest.raises(KeyStoreError, match="locked with a passphrase"):
        store.load("alice", None)


def test_unencrypted_keys_only_when_asked(tmp_path: Path) -> None:
    store = KeyStore(tmp_path)
    info = store.create("ci", None)
    assert not info.encrypted
    assert store.load("ci", None).public == info.public
    with pytest.raises(UsageError):
        store.create("empty", "")


def test_refuses_to_overwrite_a_key(tmp_path: Path) -> None:
    store = KeyStore(tmp_path)
    store.create("alice", None)
    with pytest.raises(KeyStoreError, match="already exists"):
        store.create("alice", None)


def test_a_key_file_readable_by_others_is_refused(tmp_path: Path) -> None:
    store = KeyStore(tmp_path)
    info = store.create("alice", None)
    os.chmod(info.path, 0o644)
    with pytest.raises(KeyStoreError, match="readable by others"):
        store.load("alice", None)


def test_a_tampered_key_file_is_refused(tmp_path: Path) -> None:
    store = KeyStore(tmp_path)
    info = store.create("alice", None)
    doc = json.loads(info.path.read_text())
    doc["seed"] = "00" * 32
    info.path.write_text(json.dumps(doc))
    with pytest.raises(KeyStoreError, match="does not match"):
        store.load("alice", None)
    info.path.write_text("{not json")
    with pytest.raises(KeyStoreError, match="unreadable"):
        store.load("alice", None)


@pytest.mark.parametrize("name", ["../escape", "", "a/b", ".hidden"])
def test_key_names_cannot_escape_the_folder(tmp_path: Path, name: str) -> None:
    with pytest.raises(UsageError):
        KeyStore(tmp_path).create(name, None)


def test_missing_key_names_the_fix(tmp_path: Path) -> None:
    with pytest.raises(KeyStoreError) as caught:
        KeyStore(tmp_path).load("nobody", None)
    assert "hubless key new" in caught.value.hint


def test_a_missing_key_hint_lists_the_keys_that_exist(tmp_path: Path) -> None:
    store = KeyStore(tmp_path)
    store.create("work", None)
    store.create("home", None)
    with pytest.raises(KeyStoreError) as caught:
        store.load("nosuchkey", None)
    assert "home, work" in caught.value.hint


def test_a_wrong_passphrase_hint_says_the_passphrase_is_wrong(tmp_path: Path) -> None:
    store = KeyStore(tmp_path)
    store.create("default", "right horse")
    with pytest.raises(KeyStoreError) as caught:
        store.load("default", "wrong horse")
    assert "passphrase is wrong" in caught.value.hint
