"""What every use case receives: configuration, store, cache, network, torrents, events.

`Context` is the toolbox; `hubless.services.client.Client` is the public facade that builds
one and calls the use cases with it. Use cases import this module, never the facade, so
there is no import circle. The network is started on first use through a factory, so
commands that need no network never load libtorrent.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from ..config import Config
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
    network_factory: Callable[[], Network]
    on_event: Listener = ignore
    _network: Network | None = field(default=None, repr=False)
    _seeding: set[bytes] = field(default_factory=set, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def network(self) -> Network:
        """The network session, started (and joined to its DHT) on first use."""
        with self._lock:
            if self._network is None:
                self._network = self.network_factory()
            return self._network

    @property
    def network_started(self) -> bool:
        return self._network is not None

    def emit(self, event: Event) -> None:
        self.on_event(event)

    def seed_torrent(self, entry: SeedEntry, *, remember: bool = True) -> None:
        """Serve a torrent now and (unless told otherwise) again whenever `seed` runs."""
        if remember:
            self.state.add_seed(entry)
        if entry.infohash in self._seeding:
            return
        # The upload limit is for model bytes: a manifest (a few kB) waits for no bandwidth
        # round, or every consumer's resolve would (bench/fanout.py: 0.7 s per fetch).
        limit = self.config.upload_limit if entry.kind == "content" else 0
        self.network.seed(entry.torrent, entry.save_path, trust_files=True, upload_limit=limit)
        self._seeding.add(entry.infohash)

    def stop_seeding(self, infohash: bytes) -> None:
        """Stop serving a torrent in this process (the seeds table keeps it for later)."""
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
