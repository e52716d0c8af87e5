"""What keeps a home's records alive, in its state database (spec §8.5).

- **Kept items**: per (publisher, salt), the exact signed BEP-44 item (salt, seq, value,
  signature) of the newest record this home verified, with the record's own seq. A restart
  can put it again without asking the DHT. Writes only move forward (spec §8.2).
- **Record health**: what the last keep-alive check of each item found and did.
- **Seed statistics** and the **daemon row**: what the running daemon serves, with peers and
  bytes uploaded, and who it is; `hubless status` reads them whether or not it runs.

Plain functions over a `State`: they share its connection and its transactions.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from ..core.bep44 import RawItem
from ..core.keys import PublicKey
from .state import State


@dataclass(frozen=True)
class KeptItem:
    """The newest verified signed item of one record; `own_seq` is the record's own seq
    (the revision seq, or the index seq for a publisher index), which orders kept items."""

    item: RawItem
    own_seq: int
    kept_at: int

    @property
    def publisher(self) -> PublicKey:
        return PublicKey(self.item.public_key)


@dataclass(frozen=True)
class Health:
    """The last keep-alive check of a kept item (times are Unix seconds).

    `outcome`: `put` (stored on `stored` of `queried` nodes), `current` (enough of the
    closest nodes already held `seq`: nothing sent), `newer` (the DHT holds a newer record:
    nothing put), `failed` (lookup or put failed; `message` says why), `held-back`
    (equivocation or another reason not to put).
    """

    publisher: PublicKey
    salt: bytes
    seq: int
    checked_at: int
    current: int | None
    put_at: int | None
    stored: int | None
    queried: int | None
    outcome: str
    message: str


@dataclass(frozen=True)
class SeedStats:
    infohash: bytes
    peers: int
    uploaded: int  # payload bytes, all time
    updated_at: int


@dataclass(frozen=True)
class DaemonRow:
    pid: int
    started_at: int
    heartbeat_at: int
    republish_interval: float
    listen_port: int


# --- kept items ---------------------------------------------------------------------------------


def keep_item(state: State, item: RawItem, own_seq: int) -> bool:
    """Keep `item` (already verified by the caller) unless a newer one is kept; True if kept.

    Newer means a higher record seq, or the same record seq under a higher BEP-44 seq (the
    same record signed again: nodes holding the higher seq refuse the lower one).
    """
    publisher = PublicKey(item.public_key).text
    with state.transaction() as db:
        row = db.execute(
            "SELECT own_seq, seq FROM kept_items WHERE publisher=? AND salt=?",
            (publisher, item.salt),
        ).fetchone()
        if row is not None and (row[0], row[1]) >= (own_seq, item.seq):
            return False
        db.execute(
            "INSERT OR REPLACE INTO kept_items VALUES (?, ?, ?, ?, ?, ?, ?)",
            (
                publisher,
                item.salt,
                own_seq,
                item.seq,
                item.value,
                item.signature,
                int(time.time()),
            ),
        )
    return True


def kept_item(state: State, publisher: PublicKey, salt: bytes) -> KeptItem | None:
    rows = state.rows(
        "SELECT publisher, salt, own_seq, seq, value, signature, kept_at FROM kept_items "
        "WHERE publisher=? AND salt=?",
        (publisher.text, salt),
    )
    return _kept(rows[0]) if rows else None


def kept_items(state: State) -> list[KeptItem]:
    rows = state.rows(
        "SELECT publisher, salt, own_seq, seq, value, signature, kept_at FROM kept_items "
        "ORDER BY publisher, salt"
    )
    return [_kept(r) for r in rows]


def _kept(row: tuple[object, ...]) -> KeptItem:
    publisher, salt, own_seq, seq, value, signature, kept_at = row
    assert isinstance(publisher, str) and isinstance(salt, bytes)
    assert isinstance(value, bytes) and isinstance(signature, bytes)
    assert isinstance(own_seq, int) and isinstance(seq, int) and isinstance(kept_at, int)
    item = RawItem(PublicKey.parse(publisher).raw, salt, seq, value, signature)
    return KeptItem(item, own_seq, kept_at)


# --- health -------------------------------------------------------------------------------------


def record_health(
    state: State,
    item: RawItem,
    outcome: str,
    *,
    current: int | None = None,
    stored: int | None = None,
    queried: int | None = None,
    message: str = "",
) -> None:
    """Write what a keep-alive check found; a `put` outcome also sets the put time."""
    now = int(time.time())
    publisher = PublicKey(item.public_key).text
    with state.transaction() as db:
        before = db.execute(
            "SELECT put_at, stored, queried FROM record_health WHERE publisher=? AND salt=?",
            (publisher, item.salt),
        ).fetchone()
        put_at, last_stored, last_queried = before if before else (None, None, None)
        if outcome == "put":
            put_at, last_stored, last_queried = now, stored, queried
        db.execute(
            "INSERT OR REPLACE INTO record_health VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                publisher,
                item.salt,
                item.seq,
                now,
                current,
                put_at,
                last_stored,
                last_queried,
                outcome,
                message,
            ),
        )


def health(state: State) -> dict[tuple[str, bytes], Health]:
    """Every health row, keyed by (publisher text, salt)."""
    rows = state.rows(
        "SELECT publisher, salt, seq, checked_at, current, put_at, stored, queried, outcome, "
        "message FROM record_health"
    )
    found: dict[tuple[str, bytes], Health] = {}
    for r in rows:
        publisher, salt = r[0], r[1]
        assert isinstance(publisher, str) and isinstance(salt, bytes)
        found[(publisher, salt)] = Health(
            PublicKey.parse(publisher),
            salt,
            _int(r[2]),
            _int(r[3]),
            _opt(r[4]),
            _opt(r[5]),
            _opt(r[6]),
            _opt(r[7]),
            str(r[8]),
            str(r[9]),
        )
    return found


# --- seed statistics and the daemon row ---------------------------------------------------------


def write_seed_stats(state: State, stats: list[SeedStats], *, replace_all: bool = False) -> None:
    """Upsert statistics rows; `replace_all` first drops rows of torrents not listed."""
    with state.transaction() as db:
        if replace_all:
            db.execute("DELETE FROM seed_stats")
        for s in stats:
            db.execute(
                "INSERT OR REPLACE INTO seed_stats VALUES (?, ?, ?, ?)",
                (s.infohash, s.peers, s.uploaded, s.updated_at),
            )


def drop_seed_stats(state: State, infohashes: list[bytes]) -> None:
    with state.transaction() as db:
        for ih in infohashes:
            db.execute("DELETE FROM seed_stats WHERE infohash=?", (ih,))


def seed_stats(state: State) -> dict[bytes, SeedStats]:
    rows = state.rows("SELECT infohash, peers, uploaded, updated_at FROM seed_stats")
    found: dict[bytes, SeedStats] = {}
    for ih, peers, uploaded, updated_at in rows:
        assert isinstance(ih, bytes)
        found[ih] = SeedStats(ih, _int(peers), _int(uploaded), _int(updated_at))
    return found


def daemon_started(state: State, pid: int, interval: float, listen_port: int) -> None:
    """The daemon row for a new daemon; what an earlier one served is forgotten."""
    now = int(time.time())
    with state.transaction() as db:
        db.execute("DELETE FROM seed_stats")
        db.execute(
            "INSERT OR REPLACE INTO daemon VALUES (1, ?, ?, ?, ?, ?)",
            (pid, now, now, interval, listen_port),
        )


def daemon_heartbeat(state: State, pid: int) -> None:
    with state.transaction() as db:
        db.execute("UPDATE daemon SET heartbeat_at=? WHERE pid=?", (int(time.time()), pid))


def daemon_stopped(state: State, pid: int) -> None:
    """Remove the daemon row (only our own) and what it served."""
    with state.transaction() as db:
        if db.execute("DELETE FROM daemon WHERE pid=?", (pid,)).rowcount:
            db.execute("DELETE FROM seed_stats")


def daemon_row(state: State) -> DaemonRow | None:
    rows = state.rows(
        "SELECT pid, started_at, heartbeat_at, republish_interval, listen_port FROM daemon"
    )
    if not rows:
        return None
    pid, started, heartbeat, interval, port = rows[0]
    assert isinstance(interval, float | int)
    return DaemonRow(_int(pid), _int(started), _int(heartbeat), float(interval), _int(port))


def _int(value: object) -> int:
    assert isinstance(value, int)
    return value


def _opt(value: object) -> int | None:
    assert value is None or isinstance(value, int)
    return value
