"""What every use case receives: configuration, store, cache, network, torrents, events.

`Context` is the toolbox; `hubless.services.client.Client` is the public facade that builds
one and calls the use cases with it. Use cases import this module, never the facade, so
there is no import circle. The network is started on first use through a factory, so
commands that need no network never load libtorrent. With `config.offline` the network is
never started (`OfflineError`), and nothing that merely records a seed starts it either.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from ..config import Config
from ..core.errors import OfflineError
from ..net.contract import Network, Torrents
from ..store.cache import Cache
from ..store.keystore import KeyStore
from ..store.state import SeedEntry, State
from .events import Event, Listener, ignore


@dataclass
class Context:
    """One identity on one machine: its home (state, cache, keys) and its network."""

    config: Config
    state: State
    cache: Cache
    keys: KeyStore
    torrents: Torrents
    network_factory: Callable[[float], Network]  # joins the DHT within that many seconds
    on_event: Listener = ignore
    # False in one-shot processes: torrents go into the seeds table for the home's daemon,
    # and this process neither serves nor announces them (it exits soon; spec §8.5).
    serve: bool = True
    # Set when this process stops (a daemon's SIGTERM): a download under way gives up with
    # `StoppedError`, keeping what it verified; rounds of work end between their steps.
    cancel: threading.Event = field(default_factory=threading.Event)
    _network: Network | None = field(default=None, repr=False)
    _seeding: set[bytes] = field(default_factory=set, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _seed_lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _local: threading.local = field(default_factory=threading.local, repr=False)

    @property
    def network(self) -> Network:
        """The network session, started (and joined to its DHT) on first use.

        Raises `OfflineError` in offline mode, and `NetTimeoutError` when the DHT cannot be
        joined within the configured lookup timeout.
        """
        return self.network_within(self.config.dht_timeout)

    def network_within(self, timeout: float) -> Network:
        """The network session, joining the DHT within `timeout` seconds if not started yet."""
        if self.config.offline:
            raise OfflineError("this needs the network, and hubless runs offline")
        with self._lock:
            if self._network is None:
                self._network = self.network_factory(timeout)
            return self._network

    @property
    def network_started(self) -> bool:
        return self._network is not None

    @property
    def seeding(self) -> frozenset[bytes]:
        """Infohashes this process serves right now."""
        return frozenset(self._seeding)

    def emit(self, event: Event) -> None:
        """Report `event` to the context's listener and to the calling thread's own."""
        self.emitter()(event)

    def worker(
        self,
        *,
        serve: bool,
        on_event: Listener = ignore,
        cancel: threading.Event | None = None,
    ) -> Context:
        """A context for another thread: this one's home, cache, keys and network session,
        with its own state connection (one SQLite connection must not serve two threads)."""
        return Context(
            config=self.config,
            state=State(self.config.data_dir / "state.db"),
            cache=self.cache,
            keys=self.keys,
            torrents=self.torrents,
            network_factory=lambda timeout: self.network,
            on_event=on_event,
            serve=serve,
            cancel=cancel if cancel is not None else threading.Event(),
        )

    def emitter(self) -> Listener:
        """`emit` bound to the calling thread's listener, for callbacks run on other threads
        (libtorrent's progress arrives on its alert thread)."""
        extra: Listener | None = getattr(self._local, "listener", None)
        on_event = self.on_event

        def emit(event: Event) -> None:
            on_event(event)
            if extra is not None:
                extra(event)

        return emit

    @contextlib.contextmanager
    def listening(self, listener: Listener | None) -> Iterator[None]:
        """Send this thread's events to `listener` too, for the `with` block (one call's
        progress callback; other threads' calls keep theirs)."""
        previous = getattr(self._local, "listener", None)
        self._local.listener = listener
        try:
            yield
        finally:
            self._local.listener = previous

    def seed_torrent(self, entry: SeedEntry, *, remember: bool = True, start: bool = False) -> None:
        """Put a torrent in the seeds table, which the home's daemon serves (unless told not
        to remember it), and serve it now when this process serves (`serve`) and its network
        runs already (or `start`: start it for this). Offline, nothing is started."""
        if remember:
            self.state.add_seed(entry)
        if not self.serve or self.config.offline or not (start or self.network_started):
            return
        network = self.network
        # The upload limit is for model bytes: a manifest (a few kB) waits for no bandwidth
        # round, or every consumer's resolve would (bench/fanout.py: 0.7 s per fetch).
        limit = self.config.upload_limit if entry.kind == "content" else 0
        with self._seed_lock:  # threads finishing one pull together seed it once
            if entry.infohash in self._seeding:
                return
            network.seed(entry.torrent, entry.save_path, trust_files=True, upload_limit=limit)
            self._seeding.add(entry.infohash)

    def stop_seeding(self, infohash: bytes) -> None:
        """Stop serving a torrent in this process (the seeds table keeps it for later)."""
        with self._seed_lock:
            if infohash in self._seeding:
                self.network.remove(infohash)
                self._seeding.discard(infohash)

    def close(self) -> None:
        """Stop the network (if started) and close the state database."""
        with self._lock:
            if self._network is not None:
                self._network.close()
                self._network = None
            self._seeding.clear()
        self.state.close()
