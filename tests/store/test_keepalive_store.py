"""What the daemon keeps in the store: exact signed items that only move forward, a schema
migration that keeps old homes working, and a daemon lock that a killed daemon releases."""

from __future__ import annotations

import hashlib
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from hubless.core.bep44 import sign_item
from hubless.core.keys import SigningKey
from hubless.store import keepalive as kept
from hubless.store.lock import DaemonRunningError, HomeLock, running_daemon
from hubless.store.state import SCHEMA_VERSION, State

KEY = SigningKey(hashlib.sha256(b"hubless store test: keepalive").digest())


def test_kept_items_only_move_forward(tmp_path: Path) -> None:
    state = State(tmp_path / "state.db")
    v2 = sign_item(KEY, b"tiny", 5, b"v2")
    assert kept.keep_item(state, v2, own_seq=2)
    # An older record is never kept over a newer one, whatever its BEP-44 seq.
    assert not kept.keep_item(state, sign_item(KEY, b"tiny", 9, b"v1"), own_seq=1)
    # The same record under a lower BEP-44 seq is no improvement either.
    assert not kept.keep_item(state, sign_item(KEY, b"tiny", 3, b"v2"), own_seq=2)
    stored = kept.kept_item(state, KEY.public, b"tiny")
    assert stored is not None and stored.item == v2 and stored.own_seq == 2
    # The same record signed again under a higher BEP-44 seq replaces it (nodes holding the
    # higher seq would refuse the lower one).
    again = sign_item(KEY, b"tiny", 7, b"v2")
    assert kept.keep_item(state, again, own_seq=2)
    newer = sign_item(KEY, b"tiny", 1, b"v3")
    assert kept.keep_item(state, newer, own_seq=3)  # a newer record wins at any BEP-44 seq
    assert [k.item for k in kept.kept_items(state)] == [newer]
    state.close()


def test_a_schema_1_home_opens_and_gains_the_new_tables(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    db = sqlite3.connect(path)
    db.executescript(
        """
        CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
        INSERT INTO meta VALUES ('schema', '1');
        CREATE TABLE pinned (publisher TEXT PRIMARY KEY, label TEXT, pinned_at INTEGER NOT NULL);
        """
    )
    db.execute("INSERT INTO pinned VALUES (?, 'old', 1)", (KEY.public.text,))
    db.commit()
    db.close()
    state = State(path)
    assert SCHEMA_VERSION == 2 and state.schema_version == 2
    assert state.pinned() == {KEY.public.text: "old"}  # nothing old was lost
    assert kept.kept_items(state) == [] and kept.daemon_row(state) is None
    state.close()


def test_a_newer_schema_is_refused(tmp_path: Path) -> None:
    from hubless.core.errors import StoreError

    state = State(tmp_path / "state.db")
    with state.transaction() as db:
        db.execute("UPDATE meta SET value='99' WHERE key='schema'")
    state.close()
    with pytest.raises(StoreError, match="newer hubless"):
        State(tmp_path / "state.db")


def test_data_version_moves_when_another_connection_commits(tmp_path: Path) -> None:
    daemon_side, other = State(tmp_path / "state.db"), State(tmp_path / "state.db")
    before = daemon_side.data_version()
    assert daemon_side.data_version() == before
    other.pin(KEY.public)
    assert daemon_side.data_version() != before
    daemon_side.close()
    other.close()


def test_second_lock_names_the_holder(tmp_path: Path) -> None:
    with HomeLock(tmp_path):
        assert running_daemon(tmp_path) == os.getpid()
        with pytest.raises(DaemonRunningError, match=f"pid {os.getpid()}"):
            HomeLock(tmp_path).acquire()
    assert running_daemon(tmp_path) is None
    with HomeLock(tmp_path):  # released: it can be taken again
        pass


def test_a_killed_holder_leaves_no_stale_lock(tmp_path: Path) -> None:
    code = (
        "import sys, time; from pathlib import Path\n"
        "from hubless.store.lock import HomeLock\n"
        "HomeLock(Path(sys.argv[1])).acquire(); print('locked', flush=True); time.sleep(60)\n"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", code, str(tmp_path)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "locked"
        assert running_daemon(tmp_path) == proc.pid
        with pytest.raises(DaemonRunningError):
            HomeLock(tmp_path).acquire()
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        assert proc.stdout is not None
        proc.stdout.close()
    deadline = time.monotonic() + 5
    while running_daemon(tmp_path) is not None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert running_daemon(tmp_path) is None
    with HomeLock(tmp_path):  # the pid left in the file does not matter
        assert running_daemon(tmp_path) is not None


def test_seeds_version_moves_with_what_is_served_not_with_other_writes(tmp_path: Path) -> None:
    from hubless.store.follows import INDEX_TARGET, Follows
    from hubless.store.state import SeedEntry

    daemon_side, other = State(tmp_path / "state.db"), State(tmp_path / "state.db")
    empty = daemon_side.seeds_version()
    entry = SeedEntry(b"\x01" * 20, "content", KEY.public, "tiny", 1, b"d4:infoe", tmp_path)
    other.add_seed(entry)
    served = daemon_side.seeds_version()
    assert served != empty
    version = daemon_side.data_version()
    Follows(other).schedule(KEY.public, INDEX_TARGET, next_poll=60, polled_at=1)
    other.add_seed(entry)  # the same torrent again
    assert daemon_side.data_version() != version  # another connection wrote ...
    assert daemon_side.seeds_version() == served  # ... nothing a daemon serves
    other.remove_seed(entry.infohash)
    assert daemon_side.seeds_version() == empty
    daemon_side.close()
    other.close()
