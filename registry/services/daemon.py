"""The daemon: the one long-running service of a home (spec §8.5).

It serves every torrent in the home's seeds table, keeps the records this home verified
alive in the DHT (`hubless.services.keepalive`; with the publisher's key, it signs that
key's records again, `hubless.services.seed`), and writes what it does to the state
database, where `hubless status` reads it. Other processes of the same home never talk to
it: they write the store (a publish, a pull, a removal) and the daemon picks the change up
within `poll_interval` seconds (SQLite's `data_version` says when another connection
committed). One daemon per home: `hubless.store.lock.HomeLock`.

    with hubless.Client() as client, hubless.Daemon(client) as daemon:
        ...                      # serving and keeping alive, in a background thread
        print(daemon.status())
"""

from __future__ import annotations

import logging
import os
import random
import threading
import time
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Protocol

from ..config import Config
from ..core.errors import HublessError, UsageError
from ..core.keys import PublicKey, SigningKey
from ..store import keepalive as store
from ..store.lock import HomeLock, running_daemon
from ..store.state import SeedEntry, State
from . import keepalive, seed
from .context import Context
from .events import Event, Listener

log = logging.getLogger(__name__)

REPUBLISH_EVERY = seed.REPUBLISH_EVERY
#: BEP-44 nodes drop items after about two hours: re-putting less often keeps nothing alive.
RECORD_LIFETIME = 2 * 3600.0
_FULL_SYNC_EVERY = 30.0  # seconds: re-read the seeds table even without a change signal
_FIRST_CHECK_SPREAD = 0.1  # first checks spread over this fraction of the interval ...
_FIRST_CHECK_MAX = 60.0  # ... and at most this many seconds
_JITTER = 0.2  # each interval is between (1 - _JITTER) and 1 times the configured one


class _HasContext(Protocol):
    @property
    def ctx(self) -> Context: ...


# --- status --------------------------------------------------------------------------------------


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


# --- the daemon ----------------------------------------------------------------------------------


class Daemon:
    """The long-running service of one home; `start()`/`stop()` or a context manager.

    `source` is a `hubless.Client` (or a use-case `Context`). `key`: the publisher key whose
    records this daemon signs again itself. `republish_interval` (seconds, below the two-hour
    record lifetime): how often each kept record is checked and, if needed, put again.
    `on_event` receives one event per thing done (default: the source's listener).
    Raises `DaemonRunningError` (a `UsageError`) from `start()` when another daemon holds
    the home, and what joining the network raises.
    """

    def __init__(
        self,
        source: _HasContext | Context,
        *,
        key: SigningKey | None = None,
        republish_interval: float = REPUBLISH_EVERY,
        poll_interval: float = 0.5,
        stats_interval: float = 5.0,
        on_event: Listener | None = None,
    ) -> None:
        if not 0 < republish_interval < RECORD_LIFETIME:
            raise UsageError(
                f"republish interval {republish_interval:g}s must be above 0 and below the "
                f"{RECORD_LIFETIME:g}s DHT nodes keep a record"
            )
        shared = source if isinstance(source, Context) else source.ctx
        self.shared = shared
        # The loop thread gets its own state connection (one SQLite connection must not run
        # two threads' transactions at once) and shares the caller's network session.
        self.ctx = Context(
            config=shared.config,
            state=State(shared.config.data_dir / "state.db"),
            cache=shared.cache,
            keys=shared.keys,
            torrents=shared.torrents,
            network_factory=lambda: shared.network,
            on_event=on_event or shared.on_event,
            serve=True,
        )
        self.key = key
        self.republish_interval = republish_interval
        self.poll_interval = poll_interval
        self.stats_interval = stats_interval
        self._lock = HomeLock(self.ctx.config.data_dir)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._serving: dict[bytes, SeedEntry] = {}
        self._missing: set[bytes] = set()
        self._peers: dict[bytes, int] = {}
        self._due: dict[tuple[str, bytes], float] = {}
        self._targets: dict[tuple[str, bytes], keepalive.Target] = {}
        self._next_sign = 0.0
        self._pid = os.getpid()

    # --- lifecycle --------------------------------------------------------------------------

    def start(self) -> Daemon:
        """Take the home's lock, join the network, serve everything, start the loop thread."""
        if self._thread is not None:
            return self
        self._lock.acquire()
        try:
            network = self.ctx.network
            port = int(getattr(network, "listen_port", 0) or 0)
            store.daemon_started(self.ctx.state, self._pid, self.republish_interval, port)
            self._emit(
                f"daemon {self._pid} started: re-putting every "
                f"{self.republish_interval:g}s, listening on port {port}"
            )
            self._stop.clear()
            self._last_version = self.ctx.state.data_version()
            self._sync()
            now = time.monotonic()
            self._next_sign = now + self._first_delay()
        except BaseException:
            self._lock.release()
            raise
        self._thread = threading.Thread(target=self._run, name="hubless-daemon", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop the loop, stop serving, remove the daemon row and release the lock."""
        if self._thread is None:
            return
        self._stop.set()
        self._thread.join()
        self._thread = None
        for ih in list(self._serving):
            self.ctx.stop_seeding(ih)
        self._serving.clear()
        try:
            store.daemon_stopped(self.ctx.state, self._pid)
        finally:
            self._lock.release()
        self._emit(f"daemon {self._pid} stopped")

    def close(self) -> None:
        """Stop (if running) and close the daemon's state connection; the network session
        belongs to the client it came from."""
        self.stop()
        self.ctx.state.close()

    def run(self, stop: threading.Event) -> None:
        """Start, serve until `stop` is set, then close (what `hubless seed` does)."""
        try:
            self.start()
            stop.wait()
        finally:
            self.close()

    @property
    def running(self) -> bool:
        return self._thread is not None

    def status(self) -> DaemonStatus:
        """This home's status as the store holds it (see `home_status`)."""
        return home_status(self.ctx.config)

    def __enter__(self) -> Daemon:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # --- the loop ---------------------------------------------------------------------------

    def _run(self) -> None:
        next_full = time.monotonic() + _FULL_SYNC_EVERY
        next_stats = time.monotonic()
        while not self._stop.wait(self.poll_interval):
            try:
                now = time.monotonic()
                version = self.ctx.state.data_version()
                if version != self._last_version or now >= next_full:
                    self._last_version = version
                    next_full = now + _FULL_SYNC_EVERY
                    self._sync()
                if now >= next_stats:
                    next_stats = now + self.stats_interval
                    self._stats()
                self._keep_one()
            except HublessError as exc:
                self._emit(f"error: {exc.message}")
            except Exception:  # the service must outlive one bad round
                log.exception("daemon round failed")
                self._emit("error: a daemon round failed (details with --debug)")

    def _first_delay(self) -> float:
        spread = min(self.republish_interval * _FIRST_CHECK_SPREAD, _FIRST_CHECK_MAX)
        return random.uniform(0, spread)

    def _next_delay(self) -> float:
        return self.republish_interval * random.uniform(1 - _JITTER, 1.0)

    def _sync(self) -> None:
        """Serve what the seeds table holds and nothing else; schedule what to keep alive."""
        entries = {e.infohash: e for e in self.ctx.state.seeds()}
        started: list[store.SeedStats] = []
        now_s = int(time.time())
        for ih, entry in entries.items():
            if ih in self._serving:
                continue
            if not entry.save_path.exists():
                if ih not in self._missing:
                    self._missing.add(ih)
                    self._emit(f"not serving {_what(entry)}: {entry.save_path} is gone")
                continue
            try:
                self.ctx.seed_torrent(entry, remember=False)
            except HublessError as exc:
                self._emit(f"cannot serve {_what(entry)}: {exc.message}")
                continue
            self._missing.discard(ih)
            self._serving[ih] = entry
            started.append(store.SeedStats(ih, 0, 0, now_s))
            self._emit(f"serving {_what(entry)}")
        gone = [ih for ih in self._serving if ih not in entries]
        for ih in gone:
            entry = self._serving.pop(ih)
            self.ctx.stop_seeding(ih)
            self._peers.pop(ih, None)
            self._emit(f"stopped serving {_what(entry)}: removed from this home")
        if started:
            store.write_seed_stats(self.ctx.state, started)
        if gone:
            store.drop_seed_stats(self.ctx.state, gone)
        skip = self.key.public if self.key is not None else None
        targets = {(t.publisher.text, t.salt): t for t in keepalive.targets(self.ctx, skip=skip)}
        now = time.monotonic()
        for slot in targets.keys() - self._targets.keys():
            self._due[slot] = now + self._first_delay()
        for slot in self._targets.keys() - targets.keys():
            self._due.pop(slot, None)
        self._targets = targets

    def _stats(self) -> None:
        """Peers and bytes uploaded of every served torrent, into the store; log changes."""
        rows = []
        now_s = int(time.time())
        for ih, entry in self._serving.items():
            try:
                progress = self.ctx.network.progress(ih)
            except HublessError:
                continue
            before = self._peers.get(ih, 0)
            if progress.peers != before:
                self._emit(f"{_what(entry)}: {progress.peers} peer(s), was {before}")
            self._peers[ih] = progress.peers
            rows.append(store.SeedStats(ih, progress.peers, progress.uploaded, now_s))
        store.write_seed_stats(self.ctx.state, rows)
        store.daemon_heartbeat(self.ctx.state, self._pid)

    def _keep_one(self) -> None:
        """Run the one keep-alive job most overdue, if any (keeps the loop responsive)."""
        now = time.monotonic()
        if self.key is not None and now >= self._next_sign:
            self._next_sign = now + self._next_delay()
            seed.republish(self.ctx, self.key)
            return
        due = [(when, slot) for slot, when in self._due.items() if when <= now]
        if not due:
            return
        _, slot = min(due)
        self._due[slot] = now + self._next_delay()
        keepalive.check(self.ctx, self._targets[slot])

    def _emit(self, message: str) -> None:
        self.ctx.emit(Event("daemon", message))


def _what(entry: SeedEntry) -> str:
    return f"{entry.name} seq {entry.seq} ({entry.kind} {entry.infohash.hex()[:12]}…)"
