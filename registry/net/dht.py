"""The DHT half of a libtorrent session: BEP-44 gets and puts, routing-table stats.

`Dht` keeps the requests waiting for an answer and consumes the DHT alerts that the session's
alert loop hands it. Items go back *raw* (`hubless.core.bep44.RawItem`): the value exactly
as bencoded, the BEP-44 seq and signature as nodes sent them. Verifying them is the core's
job (`hubless.core.trust`), never this module's.
"""

from __future__ import annotations

import contextlib
import hashlib
import threading
import time
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field
from typing import Any

import libtorrent as lt

from ..core import bencode
from ..core.bep44 import RawItem, wrap_value
from ..core.errors import NetTimeoutError, UsageError
from ..core.keys import PublicKey, SigningKey
from .contract import PutReport, Traffic, format_endpoint
from .krpc import KrpcClient, KrpcConfig, SilentNodes
from .profile import NetProfile

_POLL = 0.1  # seconds between routing-table polls while waiting for the DHT


@dataclass
class _Get:
    future: Future[list[RawItem]]
    items: list[RawItem] = field(default_factory=list)


def network_id(profile: NetProfile) -> str:
    """A file-name-safe name for the DHT a profile joins: saved routing tables are kept per
    network, so a private network never contacts nodes remembered from another one."""
    if profile.kind == "mainline":
        return "public"
    nodes = ",".join(sorted(format_endpoint(h, p) for h, p in profile.bootstrap))
    return "private-" + hashlib.sha256(nodes.encode()).hexdigest()[:16]


def salt_text(salt: bytes) -> str:
    """A salt for messages: model names are ASCII; anything else is shown escaped."""
    return salt.decode("ascii", "backslashreplace")


class Dht:
    """BEP-44 requests on one libtorrent session; `handle` takes the session's DHT alerts."""

    def __init__(self, ses: Any, lock: threading.Lock, profile: NetProfile) -> None:
        self._ses = ses
        self._lock = lock
        self._profile = profile
        # KRPC clients, one per caller at a time (each its own UDP socket): the daemon's
        # keep-alive workers look up and put at once instead of queueing on one socket.
        self._krpc_idle: list[KrpcClient] = []
        self._krpc_all: list[KrpcClient] = []
        self._krpc_closed = False
        self._krpc_lock = threading.Lock()
        self.silent = SilentNodes()  # nodes that timed out, shared by the KRPC clients
        self._gets: dict[tuple[bytes, bytes], deque[_Get]] = {}
        self._puts: dict[tuple[bytes, bytes], deque[Future[int]]] = {}
        self._stats: deque[Future[int]] = deque()
        self._counters: deque[Future[dict[str, int]]] = deque()

    # --- alerts (called from the alert thread) ------------------------------------------------

    def handle(self, a: Any) -> bool:
        """Consume `a` if it is a DHT alert; copy what is needed out of it at once."""
        if isinstance(a, lt.dht_mutable_item_alert):
            self._on_item(a)
        elif isinstance(a, lt.dht_put_alert):
            key = (bytes(a.public_key), bytes(a.salt))
            with self._lock:
                waiting = self._puts.get(key)
                fut = waiting.popleft() if waiting else None
            if fut is not None and not fut.done():
                fut.set_result(int(a.num_success))
        elif isinstance(a, lt.dht_stats_alert):
            nodes = sum(int(b["num_nodes"]) for b in a.routing_table)
            with self._lock:
                stats = self._stats.popleft() if self._stats else None
            if stats is not None and not stats.done():
                stats.set_result(nodes)
        elif isinstance(a, lt.session_stats_alert):
            values = {
                name[len("dht.") :]: int(value)
                for name, value in a.values.items()
                if name.startswith("dht.")
            }
            with self._lock:
                counters = self._counters.popleft() if self._counters else None
            if counters is not None and not counters.done():
                counters.set_result(values)
        else:
            return False
        return True

    def _on_item(self, a: Any) -> None:
        key, salt, seq = bytes(a.key), bytes(a.salt), int(a.seq)
        item = a.item
        raw = None
        # libtorrent ends a get that found nothing with an empty item of seq 0 (DESIGN.md):
        # that is "no answer", not an item. Everything else goes up raw, whatever its type.
        if not (seq == 0 and not item):
            try:
                raw = RawItem(key, salt, seq, bencode.encode(item), bytes(a.signature))
            except (TypeError, ValueError):  # a value libtorrent decoded to something odd
                raw = None
        with self._lock:
            waiting = self._gets.get((key, salt))
            if not waiting:
                return
            if raw is not None:
                for get in waiting:
                    get.items.append(raw)
            # Each lookup ends with exactly one authoritative alert: it answers the oldest get.
            done = waiting.popleft() if a.authoritative else None
        if done is not None and not done.future.done():
            done.future.set_result(list(done.items))

    # --- requests -----------------------------------------------------------------------------

    def get(self, key: PublicKey, salt: bytes, timeout: float = 10.0) -> list[RawItem]:
        """Every distinct item a BEP-44 get met for (key, salt), unverified; [] if none.

        Raises `NetTimeoutError` when the lookup did not finish in `timeout` seconds.
        """
        get = _Get(Future())
        with self._lock:
            self._gets.setdefault((key.raw, salt), deque()).append(get)
        self._ses.dht_get_mutable_item(key.raw, salt)
        try:
            items = get.future.result(timeout)
        except FutureTimeout:
            with self._lock, contextlib.suppress(ValueError):
                self._gets[(key.raw, salt)].remove(get)
            raise NetTimeoutError(
                f"DHT lookup of {salt_text(salt)!r} did not finish in {timeout:g}s"
            ) from None
        distinct: dict[tuple[int, bytes, bytes], RawItem] = {}
        for raw in items:
            distinct.setdefault((raw.seq, raw.value, raw.signature), raw)
        return sorted(distinct.values(), key=lambda item: item.seq, reverse=True)

    def put(self, key: SigningKey, salt: bytes, payload: bytes, timeout: float = 10.0) -> int:
        """Sign and store `payload` as the byte-string value of (key, salt).

        libtorrent picks the BEP-44 seq (highest found + 1) and signs. Returns how many nodes
        stored it; raises `OversizedError` over 1000 bytes bencoded, `NetTimeoutError` when
        no node stored it within `timeout` seconds.
        """
        wrap_value(payload)  # enforces the 1000-byte BEP-44 limit before anything is sent
        public = key.public.raw
        fut: Future[int] = Future()
        with self._lock:
            self._puts.setdefault((public, salt), deque()).append(fut)
        self._ses.dht_put_mutable_item(key.expanded_secret, public, payload, salt)
        try:
            stored = fut.result(timeout)
        except FutureTimeout:
            with self._lock, contextlib.suppress(ValueError):
                self._puts[(public, salt)].remove(fut)
            stored = 0
        if stored == 0:
            raise NetTimeoutError(f"no DHT node stored {salt_text(salt)!r} within {timeout:g}s")
        return stored

    def put_signed(
        self, item: RawItem, timeout: float = 10.0, *, min_current: int | None = None
    ) -> PutReport:
        """Put an item exactly as its publisher signed it (BEP-44 re-announce, spec §8.5).

        libtorrent's binding re-signs every put, so this goes through the project's own
        KRPC client (`hubless.net.krpc`): read-only UDP sockets on the session's listen
        address, kept for the session's life, starting from the profile's bootstrap nodes.
        Never puts over a newer item; skipped when `min_current` closest nodes hold its seq.
        Callers in several threads run at once, each on its own socket.
        """
        with self._krpc(timeout) as client:
            return client.reput(item, min_current=min_current)

    def get_direct(self, key: PublicKey, salt: bytes, timeout: float = 10.0) -> list[RawItem]:
        """Every distinct item a BEP-44 get traversal of the KRPC client met, unverified,
        highest seq first; [] when nodes answered without one.

        Unlike `get` (libtorrent's lookup, which does not end while a node among the closest
        is silent, up to its 15 s RPC timeout), a node that does not answer within a second
        is passed over: under churn this ends in about a second. Bounded in time
        (`timeout` s) and queries (`hubless.net.krpc`). Raises `NetTimeoutError` when no
        node answered at all.
        """
        with self._krpc(timeout) as client:
            lookup = client.get(key.raw, salt)
        if not lookup.answers:
            raise NetTimeoutError(
                f"no DHT node answered a lookup of {salt_text(salt)!r} within {timeout:g}s"
            )
        return list(lookup.items)

    @property
    def krpc_traffic(self) -> Traffic:
        """Datagrams and bytes the KRPC clients sent and received since the session began."""
        with self._krpc_lock:
            clients = list(self._krpc_all)
        return sum((c.traffic for c in clients), Traffic())

    @contextlib.contextmanager
    def _krpc(self, timeout: float) -> Iterator[KrpcClient]:
        """An idle KRPC client (a new one when all are busy), with `timeout` as its bound."""
        timeout = max(timeout, 1.0)
        config = KrpcConfig(
            bind_host=self._krpc_host(), timeout=timeout, query_timeout=min(1.0, timeout / 2)
        )
        with self._krpc_lock:
            if self._krpc_closed:
                raise UsageError("the network session is closed")
            client = self._krpc_idle.pop() if self._krpc_idle else None
        if client is None:
            client = KrpcClient(config, self._profile.bootstrap, silent=self.silent)
            with self._krpc_lock:
                self._krpc_all.append(client)
        client.config = config
        try:
            yield client
        finally:
            with self._krpc_lock:
                closed = self._krpc_closed
                if not closed:
                    self._krpc_idle.append(client)
            if closed:
                client.close()

    def _krpc_host(self) -> str:
        host = self._profile.listen_host
        return host if host not in ("", "::") else "0.0.0.0"

    def close(self) -> None:
        """Close the KRPC sockets (one still in use closes when its caller is done)."""
        with self._krpc_lock:
            self._krpc_closed = True
            idle, self._krpc_idle = self._krpc_idle, []
        for client in idle:
            client.close()

    def node_count(self, timeout: float = 5.0) -> int:
        """Nodes in the DHT routing table right now."""
        fut: Future[int] = Future()
        with self._lock:
            self._stats.append(fut)
        self._ses.post_dht_stats()
        try:
            return fut.result(timeout)
        except FutureTimeout:
            raise NetTimeoutError("the DHT did not report its routing table") from None

    def counters(self, timeout: float = 5.0) -> dict[str, int]:
        """libtorrent's DHT session counters since the session began, named without their
        `dht.` prefix (`dht_get_out`: BEP-44 gets sent, `dht_announce_peer_out`, ...).
        Raises `NetTimeoutError` when the session does not report them in `timeout` s."""
        fut: Future[dict[str, int]] = Future()
        with self._lock:
            self._counters.append(fut)
        self._ses.post_session_stats()
        try:
            return fut.result(timeout)
        except FutureTimeout:
            raise NetTimeoutError("the session did not report its counters") from None

    def traffic(self, timeout: float = 5.0) -> Traffic:
        """What libtorrent's own DHT node sent and received since the session began (its
        session counters); the KRPC clients' traffic is `krpc_traffic`."""
        c = self.counters(timeout)
        return Traffic(
            packets_sent=c["dht_messages_out"],
            bytes_sent=c["dht_bytes_out"],
            packets_received=c["dht_messages_in"],
            bytes_received=c["dht_bytes_in"],
            dropped=c["dht_messages_in_dropped"],
        )

    def wait_for_nodes(self, min_nodes: int = 1, timeout: float = 10.0) -> int:
        """Block until the routing table holds `min_nodes`; return the count.

        Raises `NetTimeoutError` naming how many nodes are known after `timeout` seconds.
        """
        deadline = time.monotonic() + timeout
        while True:
            count = self.node_count(max(0.5, deadline - time.monotonic()))
            if count >= min_nodes:
                return count
            if time.monotonic() >= deadline:
                raise NetTimeoutError(
                    f"the DHT knows {count} node(s) after {timeout:g}s; {min_nodes} needed",
                    hint="check that the bootstrap node (--bootstrap / HUBLESS_BOOTSTRAP) is "
                    "running and reachable",
                )
            time.sleep(_POLL)
