"""What a home's daemon serves and keeps alive, read from the store (spec §8.5).

`hubless status` and `Daemon.status()` read it whether or not the daemon runs: the daemon
writes its row, each record's last check and each torrent's peers and uploaded bytes into
the state database (`hubless.store.keepalive`). Also how a one-shot publish learns that
the running daemon serves what it published (`wait_served`).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from ..config import Config
from ..core.keys import PublicKey
from ..store import keepalive as store
from ..store.lock import running_daemon
from ..store.state import State
from . import keepalive


@dataclass(frozen=True)
class RecordStatus:
    """One record kept alive: the newest seq held and what its last check found."""

    publisher: PublicKey
    name: str | None  # None: the publisher index
    own_seq: int | None  # revision (or index) seq of the kept item; None: none kept yet
    version: str | None
    bep44_seq: int | None
    current: int | None  # closest nodes holding that seq at the last check
    checked_at: int | None
    put_at: int | None
    stored: int | None  # nodes that stored the last put, of `queried`
    queried: int | None
    outcome: str | None
    message: str

    def summary(self) -> dict[str, Any]:
        return {
            "publisher": self.publisher.text,
            "name": self.name,
            "seq": self.own_seq,
            "version": self.version,
            "bep44_seq": self.bep44_seq,
            "current_nodes": self.current,
            "checked_at": self.checked_at,
            "put_at": self.put_at,
            "stored": self.stored,
            "queried": self.queried,
            "outcome": self.outcome,
            "message": self.message,
        }


@dataclass(frozen=True)
class TorrentStatus:
    """One torrent of the seeds table; `serving`: the running daemon serves it."""

    infohash: bytes
    kind: str
    publisher: PublicKey
    name: str
    seq: int
    serving: bool
    peers: int | None
    uploaded: int | None
    updated_at: int | None

    def summary(self) -> dict[str, Any]:
        return {
            "infohash": self.infohash.hex(),
            "kind": self.kind,
            "publisher": self.publisher.text,
            "name": self.name,
            "seq": self.seq,
            "serving": self.serving,
            "peers": self.peers,
            "uploaded": self.uploaded,
            "updated_at": self.updated_at,
        }


@dataclass(frozen=True)
class DaemonStatus:
    """What the home's daemon does, as written in the store (readable without it)."""

    running: bool
    pid: int | None
    started_at: int | None
    heartbeat_at: int | None
    republish_interval: float | None
    listen_port: int | None
    records: tuple[RecordStatus, ...]
    torrents: tuple[TorrentStatus, ...]

    def summary(self) -> dict[str, Any]:
        return {
            "running": self.running,
            "pid": self.pid,
            "started_at": self.started_at,
            "heartbeat_at": self.heartbeat_at,
            "republish_interval": self.republish_interval,
            "listen_port": self.listen_port,
            "records": [r.summary() for r in self.records],
            "torrents": [t.summary() for t in self.torrents],
        }


def home_status(config: Config) -> DaemonStatus:
    """Read the status of `config`'s home from its store (own connection, no network)."""
    state = State(config.data_dir / "state.db")
    try:
        return _status(state, running_daemon(config.data_dir))
    finally:
        state.close()


def _status(state: State, pid: int | None) -> DaemonStatus:
    row = store.daemon_row(state)
    running = pid is not None
    if running and row is not None and pid and row.pid != pid:
        row = None  # the row of an earlier daemon that died without cleaning up
    health = store.health(state)
    kept = {(k.publisher.text, k.item.salt): k for k in store.kept_items(state)}
    records = []
    for target in keepalive.targets_in(state):
        k = kept.get((target.publisher.text, target.salt))
        h = health.get((target.publisher.text, target.salt))
        known = state.known(target.publisher, target.name) if target.name else None
        records.append(
            RecordStatus(
                target.publisher,
                target.name,
                k.own_seq if k else None,
                known.version if known else None,
                k.item.seq if k else None,
                h.current if h else None,
                h.checked_at if h else None,
                h.put_at if h else None,
                h.stored if h else None,
                h.queried if h else None,
                h.outcome if h else None,
                h.message if h else ("no signed item kept yet" if k is None else ""),
            )
        )
    stats = store.seed_stats(state) if running else {}
    torrents = []
    for e in state.seeds():
        s = stats.get(e.infohash)
        torrents.append(
            TorrentStatus(
                e.infohash,
                e.kind,
                e.publisher,
                e.name,
                e.seq,
                s is not None,
                s.peers if s else None,
                s.uploaded if s else None,
                s.updated_at if s else None,
            )
        )
    return DaemonStatus(
        running,
        (pid or (row.pid if row else None)) if running else None,
        row.started_at if row and running else None,
        row.heartbeat_at if row and running else None,
        row.republish_interval if row and running else None,
        row.listen_port if row and running else None,
        tuple(records),
        tuple(torrents),
    )


def wait_served(config: Config, infohashes: list[bytes], timeout: float) -> bool:
    """Whether the running daemon serves every one of `infohashes` within `timeout` s (it
    writes a statistics row for each torrent as soon as it serves it)."""
    deadline = time.monotonic() + timeout
    state = State(config.data_dir / "state.db")
    try:
        while True:
            if running_daemon(config.data_dir) is None:
                return False
            served = store.seed_stats(state)
            if all(ih in served for ih in infohashes):
                return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.2)
    finally:
        state.close()
