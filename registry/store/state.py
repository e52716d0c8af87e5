"""Local trust state in SQLite: what this machine has seen, pinned, subscribed to and seeds.

Every write is one transaction, so a crash at any line leaves the old state or the new.
The highest seq and the manifest seen for each model are what defeat rollback (spec §8.2).
The database is also how processes of one home talk: the daemon polls it (`data_version`)
for what others publish, pull or remove. The tables the daemon keeps records alive with
(exact signed items, their health, seed statistics) are read and written by
`hubless.store.keepalive`; their schema is here, with every other table's.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..core.errors import StoreError
from ..core.keys import PublicKey

SCHEMA_VERSION = 2
# Schema 2 adds kept_items, record_health, seed_stats and daemon (spec §8.5); a schema-1
# database gains them empty when opened, and its models are re-put once a resolve or the
# key holder stores their signed items.
_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS models (
    publisher TEXT NOT NULL,
    name TEXT NOT NULL,
    seq INTEGER NOT NULL,
    version TEXT NOT NULL,
    manifest_hash BLOB NOT NULL,
    manifest_infohash BLOB NOT NULL,
    manifest BLOB NOT NULL,
    seen_at INTEGER NOT NULL,
    PRIMARY KEY (publisher, name)
);
CREATE TABLE IF NOT EXISTS pinned (
    publisher TEXT PRIMARY KEY,
    label TEXT,
    pinned_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS subscriptions (
    publisher TEXT PRIMARY KEY,
    since INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS seeds (
    infohash BLOB PRIMARY KEY,
    kind TEXT NOT NULL CHECK (kind IN ('manifest', 'content')),
    publisher TEXT NOT NULL,
    name TEXT NOT NULL,
    seq INTEGER NOT NULL,
    torrent BLOB NOT NULL,
    save_path TEXT NOT NULL,
    added_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS published (
    publisher TEXT NOT NULL,
    name TEXT NOT NULL,
    PRIMARY KEY (publisher, name)
);
CREATE TABLE IF NOT EXISTS key_alerts (
    publisher TEXT NOT NULL,
    name TEXT NOT NULL,
    status TEXT NOT NULL,
    detail TEXT NOT NULL,
    seen_at INTEGER NOT NULL,
    PRIMARY KEY (publisher, name)
);
CREATE TABLE IF NOT EXISTS index_seq (
    publisher TEXT PRIMARY KEY,
    seq INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS kept_items (
    publisher TEXT NOT NULL,
    salt BLOB NOT NULL,
    own_seq INTEGER NOT NULL,
    seq INTEGER NOT NULL,
    value BLOB NOT NULL,
    signature BLOB NOT NULL,
    kept_at INTEGER NOT NULL,
    PRIMARY KEY (publisher, salt)
);
CREATE TABLE IF NOT EXISTS record_health (
    publisher TEXT NOT NULL,
    salt BLOB NOT NULL,
    seq INTEGER NOT NULL,
    checked_at INTEGER NOT NULL,
    current INTEGER,
    put_at INTEGER,
    stored INTEGER,
    queried INTEGER,
    outcome TEXT NOT NULL,
    message TEXT NOT NULL,
    PRIMARY KEY (publisher, salt)
);
CREATE TABLE IF NOT EXISTS seed_stats (
    infohash BLOB PRIMARY KEY,
    peers INTEGER NOT NULL,
    uploaded INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS daemon (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    pid INTEGER NOT NULL,
    started_at INTEGER NOT NULL,
    heartbeat_at INTEGER NOT NULL,
    republish_interval REAL NOT NULL,
    listen_port INTEGER NOT NULL
);
"""


@dataclass(frozen=True)
class KnownModel:
    """The newest verified manifest this machine holds for a model."""

    publisher: PublicKey
    name: str
    seq: int
    version: str
    manifest_hash: bytes
    manifest_infohash: bytes
    manifest: bytes


@dataclass(frozen=True)
class SeedEntry:
    infohash: bytes
    kind: str
    publisher: PublicKey
    name: str
    seq: int
    torrent: bytes
    save_path: Path


#: Seconds a write waits for another process's transaction (SQLite's busy timeout).
BUSY_TIMEOUT = 60.0


class State:
    """The state database at `path`: one connection per instance, shared by its threads.

    Many processes may open one database at once (WAL mode, a busy timeout, and a file lock
    around the first open, which switches the journal mode and creates the tables). Within
    a process, one lock serialises the threads that share the connection.
    """

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._mutex = threading.RLock()
        try:
            with _setup_lock(path):
                self._db = sqlite3.connect(
                    path, timeout=BUSY_TIMEOUT, isolation_level=None, check_same_thread=False
                )
                self._db.execute(f"PRAGMA busy_timeout={int(BUSY_TIMEOUT * 1000)}")
                self._db.execute("PRAGMA journal_mode=WAL")
                self._db.execute("PRAGMA synchronous=FULL")
                self._create(path)
        except sqlite3.Error as exc:
            raise StoreError(f"cannot open state database {path}: {exc}") from exc

    def _create(self, path: Path) -> None:
        with self.transaction() as db:
            for statement in _SCHEMA.split(";"):
                if statement.strip():
                    db.execute(statement)
            row = db.execute("SELECT value FROM meta WHERE key='schema'").fetchone()
            if row is not None and int(row[0]) > SCHEMA_VERSION:
                raise StoreError(f"state database {path} is from a newer hubless (schema {row[0]})")
            if row is None or int(row[0]) < SCHEMA_VERSION:
                # Older schemas only lack tables, which the statements above created.
                db.execute(
                    "INSERT OR REPLACE INTO meta VALUES ('schema', ?)", (str(SCHEMA_VERSION),)
                )

    def close(self) -> None:
        with self._mutex:
            self._db.close()

    @property
    def schema_version(self) -> int:
        row = self._db.execute("SELECT value FROM meta WHERE key='schema'").fetchone()
        return int(row[0])

    def data_version(self) -> int:
        """A number that changes whenever another connection commits (SQLite's
        `PRAGMA data_version`): the daemon's cheap "did another process write?" poll."""
        try:
            return int(self._db.execute("PRAGMA data_version").fetchone()[0])
        except sqlite3.Error as exc:
            raise StoreError(f"state database is unreadable: {exc}") from exc

    def seeds_version(self) -> bytes:
        """A 32-byte digest of what a daemon serves and keeps alive: the set of infohashes in
        the seeds table and the number of models known. The daemon's second look after
        `data_version` said another connection wrote: a mirror's own poll schedule is
        written several times a second, which must not make it re-read every seed."""
        infohashes = self._query("SELECT infohash FROM seeds ORDER BY infohash")
        known = self._query("SELECT count(*) FROM models")[0][0]
        digest = hashlib.sha256(b"".join(bytes(r[0]) for r in infohashes))
        digest.update(str(known).encode())
        return digest.digest()

    def rows(self, query: str, args: tuple[object, ...] = ()) -> list[tuple[object, ...]]:
        """Rows of one read-only query (for the store's other modules)."""
        try:
            return list(self._db.execute(query, args).fetchall())
        except sqlite3.Error as exc:
            raise StoreError(f"state database is unreadable: {exc}") from exc

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """BEGIN IMMEDIATE ... COMMIT, rolled back on any exception; one thread at a time."""
        with self._mutex:
            try:
                self._db.execute("BEGIN IMMEDIATE")
            except sqlite3.Error as exc:
                raise StoreError(f"state database is busy or broken: {exc}") from exc
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            else:
                self._db.execute("COMMIT")

    def _query(self, sql: str, args: tuple[object, ...] = ()) -> list[tuple[Any, ...]]:
        """Run a read on the shared connection, one thread at a time."""
        with self._mutex:
            try:
                return list(self._db.execute(sql, args).fetchall())
            except sqlite3.Error as exc:
                raise StoreError(f"state database is busy or broken: {exc}") from exc

    # --- models: highest seen seq and manifest ------------------------------------------------

    def known(self, publisher: PublicKey, name: str) -> KnownModel | None:
        rows = self._query(
            "SELECT seq, version, manifest_hash, manifest_infohash, manifest FROM models "
            "WHERE publisher=? AND name=?",
            (publisher.text, name),
        )
        if not rows:
            return None
        return KnownModel(publisher, name, *rows[0])

    def remember(self, model: KnownModel) -> None:
        """Record a newer verified manifest; never lowers the seq already stored."""
        with self.transaction() as db:
            row = db.execute(
                "SELECT seq FROM models WHERE publisher=? AND name=?",
                (model.publisher.text, model.name),
            ).fetchone()
            if row is not None and row[0] >= model.seq:
                return
            db.execute(
                "INSERT OR REPLACE INTO models VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    model.publisher.text,
                    model.name,
                    model.seq,
                    model.version,
                    model.manifest_hash,
                    model.manifest_infohash,
                    model.manifest,
                    int(time.time()),
                ),
            )

    def models(self, publisher: PublicKey | None = None) -> list[KnownModel]:
        query = "SELECT publisher, name FROM models"
        args: tuple[str, ...] = ()
        if publisher is not None:
            query, args = query + " WHERE publisher=?", (publisher.text,)
        names = self._query(query + " ORDER BY publisher, name", args)
        found = [self.known(PublicKey.parse(p), n) for p, n in names]
        return [m for m in found if m is not None]

    # --- what this machine publishes and seeds ------------------------------------------------

    def mark_published(self, publisher: PublicKey, name: str | None = None) -> list[str]:
        """Add `name` (if any) to this publisher's models; return all of them, sorted."""
        with self.transaction() as db:
            if name is not None:
                db.execute("INSERT OR IGNORE INTO published VALUES (?, ?)", (publisher.text, name))
            rows = db.execute(
                "SELECT name FROM published WHERE publisher=? ORDER BY name", (publisher.text,)
            ).fetchall()
        return [r[0] for r in rows]

    def next_index_seq(self, publisher: PublicKey) -> int:
        with self.transaction() as db:
            row = db.execute(
                "SELECT seq FROM index_seq WHERE publisher=?", (publisher.text,)
            ).fetchone()
            seq = (row[0] if row else 0) + 1
            db.execute("INSERT OR REPLACE INTO index_seq VALUES (?, ?)", (publisher.text, seq))
        return seq

    def add_seed(self, entry: SeedEntry) -> None:
        with self.transaction() as db:
            db.execute(
                "INSERT OR REPLACE INTO seeds VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    entry.infohash,
                    entry.kind,
                    entry.publisher.text,
                    entry.name,
                    entry.seq,
                    entry.torrent,
                    str(entry.save_path),
                    int(time.time()),
                ),
            )

    def remove_seed(self, infohash: bytes) -> bool:
        """Stop serving a torrent from now on (a running daemon drops it within seconds)."""
        with self.transaction() as db:
            gone = db.execute("DELETE FROM seeds WHERE infohash=?", (infohash,)).rowcount
        return bool(gone)

    def seeds(self) -> list[SeedEntry]:
        rows = self._query(
            "SELECT infohash, kind, publisher, name, seq, torrent, save_path FROM seeds "
            "ORDER BY added_at"
        )
        return [
            SeedEntry(r[0], r[1], PublicKey.parse(r[2]), r[3], r[4], r[5], Path(r[6])) for r in rows
        ]

    # --- records under our own keys that this machine did not sign (spec §8.5) --------------

    def set_key_alert(self, publisher: PublicKey, name: str, status: str, detail: str) -> None:
        """Remember that the DHT holds a record of `name` under our key not signed here."""
        with self.transaction() as db:
            db.execute(
                "INSERT OR REPLACE INTO key_alerts VALUES (?, ?, ?, ?, ?)",
                (publisher.text, name, status, detail, int(time.time())),
            )

    def clear_key_alert(self, publisher: PublicKey, name: str) -> None:
        with self.transaction() as db:
            db.execute(
                "DELETE FROM key_alerts WHERE publisher=? AND name=?", (publisher.text, name)
            )

    def key_alerts(self) -> list[tuple[PublicKey, str, str, str, int]]:
        """(publisher, name, status, detail, seen_at) of every open alert, for `status`."""
        rows = self._query(
            "SELECT publisher, name, status, detail, seen_at FROM key_alerts "
            "ORDER BY publisher, name"
        )
        return [(PublicKey.parse(r[0]), r[1], r[2], r[3], r[4]) for r in rows]

    # --- pinned publishers and subscriptions --------------------------------------------------

    def pin(self, publisher: PublicKey, label: str | None = None) -> None:
        with self.transaction() as db:
            db.execute(
                "INSERT OR REPLACE INTO pinned VALUES (?, ?, ?)",
                (publisher.text, label, int(time.time())),
            )

    def pinned(self) -> dict[str, str | None]:
        rows = self._query("SELECT publisher, label FROM pinned ORDER BY publisher")
        return dict(rows)

    def subscribe(self, publisher: PublicKey) -> None:
        with self.transaction() as db:
            db.execute(
                "INSERT OR IGNORE INTO subscriptions VALUES (?, ?)",
                (publisher.text, int(time.time())),
            )

    def subscriptions(self) -> list[PublicKey]:
        rows = self._query("SELECT publisher FROM subscriptions ORDER BY publisher")
        return [PublicKey.parse(r[0]) for r in rows]


@contextmanager
def _setup_lock(path: Path) -> Iterator[None]:
    """An exclusive file lock beside the database while one process opens and migrates it.

    Switching a new database to WAL and creating its tables race between processes opening
    it for the first time at once ("database is locked"); the lock makes them take turns.
    """
    fd = os.open(path.with_name(path.name + ".lock"), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)
