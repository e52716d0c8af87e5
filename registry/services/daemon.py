"""The daemon: the one long-running service of a home (spec §8.5).

It serves every torrent in the home's seeds table, keeps the records this home verified
alive in the DHT (`hubless.services.keepalive`; with the publisher's key, it signs that
key's records again, `hubless.services.seed`), and writes what it does to the state
database, where `hubless status` reads it. Other processes of the same home never talk to
it: they write the store (a publish, a pull, a removal) and the daemon picks the change up
within `poll_interval` seconds (SQLite's `data_version` says when another connection
committed, and a digest of the seeds table whether what to serve changed). One daemon per
home: `hubless.store.lock.HomeLock`.

    with hubless.Client() as client, hubless.Daemon(client) as daemon:
        ...                      # serving and keeping alive, in a background thread
        print(daemon.status())
"""

from __future__ import annotations

import dataclasses
import logging
import os
import random
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from types import TracebackType
from typing import Protocol

from ..core.errors import HublessError, UsageError
from ..core.keys import SigningKey
from ..store import keepalive as store
from ..store.lock import HomeLock
from ..store.state import SeedEntry, State
from . import keepalive, seed
from .context import Context
from .events import Event, Listener
from .intervals import RECORD_LIFETIME, REPUBLISH_EVERY
from .mirror import HookRunner, MirrorOptions, mirror_round
from .poll import next_poll_due
from .status import DaemonStatus, home_status

__all__ = ["RECORD_LIFETIME", "REPUBLISH_EVERY", "Daemon", "DaemonStatus", "home_status"]

log = logging.getLogger(__name__)

_FULL_SYNC_EVERY = 30.0  # seconds: re-read the seeds table even without a change signal
_FIRST_CHECK_SPREAD = 0.1  # first checks spread over this fraction of the interval ...
_FIRST_CHECK_MAX = 60.0  # ... and at most this many seconds
_JITTER = 0.2  # each interval is between (1 - _JITTER) and 1 times the configured one
_SIGN = ("sign", b"")  # the key holder's republish job, among the records' slots
_FOLLOW = ("follow", b"")  # the mirror round's job
_FOLLOW_TICK = 1.0  # seconds between looks at the follows' schedule
_WAKE_EVERY = 0.5  # seconds: how often `wait_until_set` lets signal handlers run


class _HasContext(Protocol):
    @property
    def ctx(self) -> Context: ...


# --- the daemon ----------------------------------------------------------------------------------


def wait_until_set(stop: threading.Event) -> None:
    """Block until `stop` is set, waking every `_WAKE_EVERY` seconds.

    Python runs signal handlers in the main thread only, between bytecodes. A SIGTERM the
    kernel delivers to another thread (one of libtorrent's; under a tracer such as strace
    this happens) leaves a wait without a timeout blocked for good, and `hubless seed`
    never stopped; a wait that wakes runs the handler, which sets `stop`.
    """
    while not stop.wait(_WAKE_EVERY):
        pass


class Daemon:
    """The long-running service of one home; `start()`/`stop()` or a context manager.

    `source` is a `hubless.Client` (or a use-case `Context`). `key`: the publisher key whose
    records this daemon signs again itself. `republish_interval` (seconds, below the two-hour
    record lifetime): how often each kept record is checked and, if needed, put again.
    `on_event` receives one event per thing done (default: the source's listener).
    `workers`: keep-alive checks run at once (a lookup near a departed node waits out
    libtorrent's 15 s RPC timeout; checks in sequence would fall behind under churn).
    `mirror`: how followed publishers and models are polled, fetched and announced (spec
    §8.7; a daemon with follows is a mirror). Raises `DaemonRunningError` (a `UsageError`)
    from `start()` when another daemon holds the home, and what joining the network raises.
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
        workers: int = 8,
        mirror: MirrorOptions | None = None,
    ) -> None:
        if not 0 < republish_interval < RECORD_LIFETIME:
            raise UsageError(
                f"republish interval {republish_interval:g}s must be above 0 and below the "
                f"{RECORD_LIFETIME:g}s DHT nodes keep a record"
            )
        shared = source if isinstance(source, Context) else source.ctx
        self.shared = shared
        self._on_event = on_event or shared.on_event
        self._stop = threading.Event()  # also every context's `cancel`: stop cuts work short
        # The loop thread and each worker get their own state connection (one SQLite
        # connection must not run two threads' transactions at once); all share the caller's
        # network session.
        self.ctx = self._context()
        self.workers = max(1, workers)
        self._local = threading.local()
        self._worker_states: list[State] = []
        self._pool: ThreadPoolExecutor | None = None
        self._inflight: dict[tuple[str, bytes], Future[None]] = {}
        self.key = key
        self.republish_interval = republish_interval
        self.poll_interval = poll_interval
        self.stats_interval = stats_interval
        self._lock = HomeLock(self.ctx.config.data_dir)
        self._thread: threading.Thread | None = None
        self._serving: dict[bytes, SeedEntry] = {}
        self._missing: set[bytes] = set()
        self._peers: dict[bytes, int] = {}
        self._due: dict[tuple[str, bytes], float] = {}
        self._targets: dict[tuple[str, bytes], keepalive.Target] = {}
        self._next_sign = 0.0
        self._next_follow = 0.0
        self._last_version = 0
        self._last_seeds = b""
        self.mirror = mirror or MirrorOptions()
        self._hooks: HookRunner | None = None
        self._pid = os.getpid()

    def _context(self) -> Context:
        return self.shared.worker(serve=True, on_event=self._on_event, cancel=self._stop)

    def _worker_context(self) -> Context:
        ctx: Context | None = getattr(self._local, "ctx", None)
        if ctx is None:
            ctx = self._local.ctx = self._context()
            with self.ctx._lock:
                self._worker_states.append(ctx.state)
        return ctx

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
            self._last_seeds = self.ctx.state.seeds_version()
            self._sync()
            now = time.monotonic()
            self._next_sign = now + self._first_delay()
        except BaseException:
            self._lock.release()
            raise
        self._pool = ThreadPoolExecutor(self.workers, thread_name_prefix="hubless-keepalive")
        if self.mirror.exec_cmd and self.mirror.hooks is None:
            self._hooks = HookRunner(self.ctx, self.mirror.exec_cmd)
        self._thread = threading.Thread(target=self._run, name="hubless-daemon", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop the loop, stop serving, remove the daemon row and release the lock.

        A mirror's download under way gives up at once, keeping what it verified (the next
        start goes on with it); lookups under way finish, each bounded by its timeout."""
        if self._thread is None:
            return
        self._stop.set()
        if self._hooks is not None:  # a running hook is left running, not waited for
            self._hooks.close()
            self._hooks = None
        self._thread.join()
        self._thread = None
        if self._pool is not None:  # checks under way finish: each is bounded in time
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None
        self._inflight.clear()
        for state in self._worker_states:
            state.close()
        self._worker_states.clear()
        self._local = threading.local()
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
            wait_until_set(stop)
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
                seeds = self._last_seeds
                if version != self._last_version:
                    self._last_version = version
                    seeds = self.ctx.state.seeds_version()
                if seeds != self._last_seeds or now >= next_full:
                    self._last_seeds = seeds
                    next_full = now + _FULL_SYNC_EVERY
                    self._sync()
                if now >= next_stats:
                    next_stats = now + self.stats_interval
                    self._stats()
                self._dispatch()
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
            if seed.unrecorded_manifest(self.ctx, entry):
                self.ctx.state.remove_seed(ih)
                self._emit(
                    f"not serving {_what(entry)}: it was signed but never recorded (a publish "
                    "was interrupted); dropped"
                )
                continue
            if not entry.save_path.exists():
                if ih not in self._missing:
                    self._missing.add(ih)
                    self._emit(f"not serving {_what(entry)}: {entry.save_path} is gone")
                continue
            try:
                self.ctx.seed_torrent(entry, remember=False, start=True)
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

    def _dispatch(self) -> None:
        """Hand due keep-alive checks to the workers (each record at most once at a time)."""
        assert self._pool is not None
        for slot in [s for s, f in self._inflight.items() if f.done()]:
            error = self._inflight.pop(slot).exception()
            if error is not None:
                log.error("keep-alive check failed", exc_info=error)
                self._emit(f"error: a keep-alive check failed: {error}")
        now = time.monotonic()
        free = self.workers - len(self._inflight)
        signing = self.key is not None and now >= self._next_sign
        if signing and free > 0 and _SIGN not in self._inflight:
            assert self.key is not None
            self._next_sign = now + self._next_delay()
            self._inflight[_SIGN] = self._pool.submit(self._sign, self.key)
            free -= 1
        if now >= self._next_follow and free > 0 and _FOLLOW not in self._inflight:
            self._next_follow = now + _FOLLOW_TICK
            self._inflight[_FOLLOW] = self._pool.submit(self._follow)
            free -= 1
        due = sorted(
            (when, slot)
            for slot, when in self._due.items()
            if when <= now and slot not in self._inflight
        )
        for _, slot in due[: max(0, free)]:
            self._due[slot] = now + self._next_delay()
            self._inflight[slot] = self._pool.submit(self._check, self._targets[slot])

    def _check(self, target: keepalive.Target) -> None:
        keepalive.check(self._worker_context(), target)

    def _sign(self, key: SigningKey) -> None:
        seed.republish(self._worker_context(), key)

    def _follow(self) -> None:
        """One mirror round: fetch, verify, seed and announce every new followed version."""
        ctx = self._worker_context()
        due = next_poll_due(ctx)
        if due is not None and due <= time.time():
            options = self.mirror
            if self._hooks is not None:
                options = dataclasses.replace(options, hooks=self._hooks)
            mirror_round(ctx, options)

    def _emit(self, message: str) -> None:
        self.ctx.emit(Event("daemon", message))


def _what(entry: SeedEntry) -> str:
    return f"{entry.name} seq {entry.seq} ({entry.kind} {entry.infohash.hex()[:12]}…)"
