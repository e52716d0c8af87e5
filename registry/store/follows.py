"""What this home follows, and the publisher indexes it accepted (spec §4.5, §8.2).

Tables of their own in the state database, created by `Follows(state)` (no schema version
change: older code ignores tables it does not know):

- `known_indexes`: per publisher, the highest index accepted (§8.2: its seq and payload
  digest defeat rollback and equivocation), the names it lists, and its exact signed item,
  so that a mirror can put it again verbatim (§8.5).
- `follows`: followed (publisher, name); name '' follows every model of the publisher's
  index, including models published later; `excluded` marks a model of a followed
  publisher that the user unfollowed.
- `follow_polls`: per followed model (target = its name) and per followed publisher's
  index (target = `hubless:index`): when to poll next, failures in a row, the last error,
  why polling stopped (a rewritten history), and the highest revision handed to the
  follower (`delivered_seq`), which only the follower moves, once it holds that revision.
- `follow_removed`: models the index dropped while their publisher was followed. They stay
  followed until the user was told (`acknowledge_removed`).

Every write is one transaction. Reads take one too: a consistent view across the tables.
The accepted indexes live here, not in a module of their own, because accepting one is what
marks the followed models it dropped, in the same transaction.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from ..core.bep44 import RawItem
from ..core.errors import StoreError
from ..core.index import INDEX_SALT
from ..core.keys import PublicKey
from .state import State

#: The poll target of a publisher's index (model names never contain ':').
INDEX_TARGET = INDEX_SALT.decode("ascii")
_ALL = ""  # the `follows.name` of a whole-publisher follow

_SCHEMA = """
CREATE TABLE IF NOT EXISTS known_indexes (
    publisher TEXT PRIMARY KEY,
    seq INTEGER NOT NULL,
    digest BLOB NOT NULL,
    published_at INTEGER NOT NULL,
    names TEXT NOT NULL,
    item_seq INTEGER NOT NULL,
    item_value BLOB NOT NULL,
    item_signature BLOB NOT NULL,
    seen_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS follows (
    publisher TEXT NOT NULL,
    name TEXT NOT NULL,
    excluded INTEGER NOT NULL DEFAULT 0,
    since INTEGER NOT NULL,
    PRIMARY KEY (publisher, name)
);
CREATE TABLE IF NOT EXISTS follow_polls (
    publisher TEXT NOT NULL,
    target TEXT NOT NULL,
    next_poll REAL NOT NULL,
    failures INTEGER NOT NULL DEFAULT 0,
    last_poll REAL,
    last_error TEXT,
    stopped TEXT,
    delivered_seq INTEGER,
    PRIMARY KEY (publisher, target)
);
CREATE TABLE IF NOT EXISTS follow_removed (
    publisher TEXT NOT NULL,
    name TEXT NOT NULL,
    removed_at INTEGER NOT NULL,
    index_seq INTEGER NOT NULL,
    PRIMARY KEY (publisher, name)
);
"""


@dataclass(frozen=True)
class AcceptedIndex:
    """A publisher index that passed every rule (`hubless.core.trust.choose_index`)."""

    publisher: PublicKey
    seq: int
    digest: bytes  # SHA-256 of the signed payload
    published_at: int
    names: tuple[str, ...]
    item: RawItem  # exactly as signed: what a verbatim re-put repeats

    def __repr__(self) -> str:
        return (
            f"AcceptedIndex({self.publisher.text[:12]}…, seq={self.seq}, names={len(self.names)})"
        )


@dataclass(frozen=True)
class IndexChange:
    """What accepting an index changed: nothing (`newer` False) or names added and removed."""

    newer: bool
    added: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()


@dataclass(frozen=True)
class Poll:
    """The poll schedule and progress of one target (a model name, or `INDEX_TARGET`)."""

    publisher: PublicKey
    target: str
    next_poll: float  # Unix seconds
    failures: int  # failed polls in a row
    last_poll: float | None
    last_error: str | None
    stopped: str | None  # set: polling stopped for good (until followed again)
    delivered_seq: int | None  # highest revision the follower holds; None: none yet


@dataclass(frozen=True)
class FollowedModel:
    """One model this home follows, and why.

    `explicit`: followed by name; `via_index`: listed by (or, when `removed_at` is set,
    dropped from) the index of a followed publisher.
    """

    publisher: PublicKey
    name: str
    explicit: bool
    via_index: bool
    removed_at: int | None
    poll: Poll | None


@dataclass(frozen=True)
class FollowedPublisher:
    """A publisher followed whole: every model its index lists."""

    publisher: PublicKey
    since: int
    index: AcceptedIndex | None
    poll: Poll | None


class Follows:
    """Follows, poll schedules and accepted indexes in `state`'s database."""

    def __init__(self, state: State) -> None:
        self._state = state
        with self._tx() as db:
            for statement in _SCHEMA.split(";"):
                if statement.strip():
                    db.execute(statement)

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        try:
            with self._state.transaction() as db:
                yield db
        except sqlite3.Error as exc:
            raise StoreError(f"state database: {exc}") from exc

    # --- accepted publisher indexes (§8.2) ----------------------------------------------------

    def known_index(self, publisher: PublicKey) -> AcceptedIndex | None:
        with self._tx() as db:
            return _index(db, publisher)

    def remember_index(self, accepted: AcceptedIndex) -> IndexChange:
        """Keep a newer accepted index; an index not newer than the stored one changes nothing.

        When the publisher is followed whole, names it dropped are kept followed and marked
        for the user's notice (`follow_removed`), and names it lists again lose that mark.
        """
        p = accepted.publisher.text
        with self._tx() as db:
            old = _index(db, accepted.publisher)
            if old is not None and old.seq >= accepted.seq:
                return IndexChange(False)
            item = accepted.item
            db.execute(
                "INSERT OR REPLACE INTO known_indexes VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    p,
                    accepted.seq,
                    accepted.digest,
                    accepted.published_at,
                    json.dumps(list(accepted.names)),
                    item.seq,
                    item.value,
                    item.signature,
                    int(time.time()),
                ),
            )
            before = set(old.names) if old is not None else set()
            added = tuple(sorted(set(accepted.names) - before))
            removed = tuple(sorted(before - set(accepted.names)))
            db.executemany(
                "DELETE FROM follow_removed WHERE publisher=? AND name=?",
                [(p, name) for name in accepted.names],
            )
            if _follows_all(db, p):
                db.executemany(
                    "INSERT OR IGNORE INTO follow_removed VALUES (?, ?, ?, ?)",
                    [(p, name, int(time.time()), accepted.seq) for name in removed],
                )
        return IndexChange(True, added, removed)

    # --- what is followed ---------------------------------------------------------------------

    def follow(self, publisher: PublicKey, name: str | None, now: float) -> bool:
        """Follow a model (or, `name` None, the whole publisher); False if already followed.

        Following again clears a stop and an exclusion, and makes the target due now.
        """
        p, key = publisher.text, name if name is not None else _ALL
        with self._tx() as db:
            row = db.execute(
                "SELECT excluded FROM follows WHERE publisher=? AND name=?", (p, key)
            ).fetchone()
            new = row is None or bool(row[0])
            db.execute(
                "INSERT INTO follows VALUES (?, ?, 0, ?) "
                "ON CONFLICT (publisher, name) DO UPDATE SET excluded=0",
                (p, key, int(now)),
            )
            target = name if name is not None else INDEX_TARGET
            db.execute(
                "INSERT INTO follow_polls (publisher, target, next_poll) VALUES (?, ?, ?) "
                "ON CONFLICT (publisher, target) DO UPDATE SET "
                "next_poll=excluded.next_poll, failures=0, stopped=NULL",
                (p, target, now),
            )
        return new

    def unfollow(self, publisher: PublicKey, name: str | None) -> bool:
        """Stop following; False if it was not followed.

        `name` None forgets every follow of the publisher. A model followed only through
        its publisher's index is excluded from then on (following it by name undoes that).
        """
        p = publisher.text
        with self._tx() as db:
            if name is None:
                found = db.execute("SELECT 1 FROM follows WHERE publisher=?", (p,)).fetchone()
                db.execute("DELETE FROM follows WHERE publisher=?", (p,))
                db.execute("DELETE FROM follow_polls WHERE publisher=?", (p,))
                db.execute("DELETE FROM follow_removed WHERE publisher=?", (p,))
                return found is not None
            explicit = db.execute(
                "SELECT 1 FROM follows WHERE publisher=? AND name=? AND excluded=0", (p, name)
            ).fetchone()
            through_index = _follows_all(db, p) and (
                name in _index_names(db, p)
                or db.execute(
                    "SELECT 1 FROM follow_removed WHERE publisher=? AND name=?", (p, name)
                ).fetchone()
                is not None
            )
            db.execute("DELETE FROM follows WHERE publisher=? AND name=?", (p, name))
            db.execute("DELETE FROM follow_removed WHERE publisher=? AND name=?", (p, name))
            db.execute("DELETE FROM follow_polls WHERE publisher=? AND target=?", (p, name))
            if through_index:
                db.execute("INSERT INTO follows VALUES (?, ?, 1, ?)", (p, name, int(time.time())))
        return explicit is not None or through_index

    def publishers(self) -> list[FollowedPublisher]:
        """Publishers followed whole, by key text."""
        with self._tx() as db:
            rows = db.execute(
                "SELECT publisher, since FROM follows WHERE name=? ORDER BY publisher", (_ALL,)
            ).fetchall()
            found = []
            for text, since in rows:
                key = PublicKey.parse(text)
                found.append(
                    FollowedPublisher(key, since, _index(db, key), _poll(db, key, INDEX_TARGET))
                )
        return found

    def models(self) -> list[FollowedModel]:
        """Every model followed, by name or through a followed publisher's index."""
        with self._tx() as db:
            explicit, via, removed = _followed(db)
            found = []
            for p, n in sorted(explicit | via):
                key = PublicKey.parse(p)
                found.append(
                    FollowedModel(
                        key,
                        n,
                        (p, n) in explicit,
                        (p, n) in via,
                        removed.get((p, n)),
                        _poll(db, key, n),
                    )
                )
        return found

    def next_due(self) -> float | None:
        """The earliest next poll (Unix seconds) of a followed publisher's index or of a
        followed model whose polling was not stopped; 0.0 for one never polled; None when
        nothing is followed. Three reads and no key parsing: a daemon asks every second."""
        with self._tx() as db:
            explicit, via, _ = _followed(db)
            polls = {
                (p, t): (when, stopped)
                for p, t, when, stopped in db.execute(
                    "SELECT publisher, target, next_poll, stopped FROM follow_polls"
                ).fetchall()
            }
            whole = [
                p for (p,) in db.execute("SELECT publisher FROM follows WHERE name=?", (_ALL,))
            ]
        times = [polls.get((p, INDEX_TARGET), (0.0, None))[0] for p in whole]
        for model in explicit | via:
            when, stopped = polls.get(model, (0.0, None))
            if stopped is None:
                times.append(when)
        return float(min(times)) if times else None

    def acknowledge_removed(self, pairs: Iterable[tuple[PublicKey, str]]) -> None:
        """The user was told these models left their publisher's index: stop following them
        (unless followed by name)."""
        with self._tx() as db:
            for publisher, name in pairs:
                p = publisher.text
                db.execute("DELETE FROM follow_removed WHERE publisher=? AND name=?", (p, name))
                explicit = db.execute(
                    "SELECT 1 FROM follows WHERE publisher=? AND name=? AND excluded=0", (p, name)
                ).fetchone()
                if explicit is None:
                    db.execute("DELETE FROM follow_polls WHERE publisher=? AND target=?", (p, name))

    # --- poll schedule and delivery -----------------------------------------------------------

    def known_indexes(self) -> list[AcceptedIndex]:
        """Every publisher index accepted here, followed or not, by key text."""
        with self._tx() as db:
            rows = db.execute("SELECT publisher FROM known_indexes ORDER BY publisher").fetchall()
            found = [_index(db, PublicKey.parse(r[0])) for r in rows]
        return [i for i in found if i is not None]

    def poll(self, publisher: PublicKey, target: str) -> Poll | None:
        with self._tx() as db:
            return _poll(db, publisher, target)

    def schedule(
        self,
        publisher: PublicKey,
        target: str,
        *,
        next_poll: float,
        polled_at: float,
        error: str | None = None,
        stopped: str | None = None,
    ) -> Poll:
        """Record a poll: success (`error` None: failures reset), failure (one more in a
        row), or a stop; return the new schedule."""
        p = publisher.text
        with self._tx() as db:
            db.execute(
                "INSERT OR IGNORE INTO follow_polls (publisher, target, next_poll) "
                "VALUES (?, ?, ?)",
                (p, target, next_poll),
            )
            db.execute(
                "UPDATE follow_polls SET next_poll=?, last_poll=?, last_error=?, stopped=?, "
                "failures=CASE WHEN ? IS NULL THEN 0 ELSE failures + 1 END "
                "WHERE publisher=? AND target=?",
                (next_poll, polled_at, error, stopped, error, p, target),
            )
            poll = _poll(db, publisher, target)
        assert poll is not None
        return poll

    def fetch_failed(self, publisher: PublicKey, name: str, error: str) -> None:
        """A revision of `name` was found but could not be fetched (a full disk, no peer):
        keep `error` for `following` to show. The schedule stays: the poll itself worked,
        and its next success clears the error."""
        with self._tx() as db:
            db.execute(
                "UPDATE follow_polls SET last_error=? WHERE publisher=? AND target=?",
                (error, publisher.text, name),
            )

    def due(self, publisher: PublicKey, target: str, at: float) -> None:
        """Poll `target` again at `at` (Unix seconds), whatever was scheduled."""
        with self._tx() as db:
            db.execute(
                "UPDATE follow_polls SET next_poll=? WHERE publisher=? AND target=?",
                (at, publisher.text, target),
            )

    def deliver(self, publisher: PublicKey, name: str, seq: int) -> None:
        """The follower holds revision `seq` of `name` now; never moves backwards."""
        with self._tx() as db:
            db.execute(
                "INSERT OR IGNORE INTO follow_polls (publisher, target, next_poll) "
                "VALUES (?, ?, 0)",
                (publisher.text, name),
            )
            db.execute(
                "UPDATE follow_polls SET delivered_seq=? WHERE publisher=? AND target=? "
                "AND (delivered_seq IS NULL OR delivered_seq < ?)",
                (seq, publisher.text, name, seq),
            )


def _followed(
    db: sqlite3.Connection,
) -> tuple[set[tuple[str, str]], set[tuple[str, str]], dict[tuple[str, str], int]]:
    """The (publisher text, name) pairs followed by name, those followed through an index
    (less the excluded ones), and when each model left its publisher's index."""
    rows = db.execute("SELECT publisher, name, excluded FROM follows").fetchall()
    explicit = {(p, n) for p, n, ex in rows if n != _ALL and not ex}
    excluded = {(p, n) for p, n, ex in rows if ex}
    removed: dict[tuple[str, str], int] = {
        (p, n): at
        for p, n, at in db.execute("SELECT publisher, name, removed_at FROM follow_removed")
    }
    via: set[tuple[str, str]] = set()
    for p in {p for p, n, _ in rows if n == _ALL}:
        via |= {(p, n) for n in _index_names(db, p)}
        via |= {(rp, n) for rp, n in removed if rp == p}
    return explicit, via - excluded, removed


def _follows_all(db: sqlite3.Connection, publisher: str) -> bool:
    row = db.execute(
        "SELECT 1 FROM follows WHERE publisher=? AND name=?", (publisher, _ALL)
    ).fetchone()
    return row is not None


def _index_names(db: sqlite3.Connection, publisher: str) -> list[str]:
    row = db.execute("SELECT names FROM known_indexes WHERE publisher=?", (publisher,)).fetchone()
    return list(json.loads(row[0])) if row is not None else []


def _index(db: sqlite3.Connection, publisher: PublicKey) -> AcceptedIndex | None:
    row = db.execute(
        "SELECT seq, digest, published_at, names, item_seq, item_value, item_signature "
        "FROM known_indexes WHERE publisher=?",
        (publisher.text,),
    ).fetchone()
    if row is None:
        return None
    item = RawItem(publisher.raw, INDEX_SALT, row[4], row[5], row[6])
    return AcceptedIndex(publisher, row[0], row[1], row[2], tuple(json.loads(row[3])), item)


def _poll(db: sqlite3.Connection, publisher: PublicKey, target: str) -> Poll | None:
    row = db.execute(
        "SELECT next_poll, failures, last_poll, last_error, stopped, delivered_seq "
        "FROM follow_polls WHERE publisher=? AND target=?",
        (publisher.text, target),
    ).fetchone()
    return Poll(publisher, target, *row) if row is not None else None
