"""A small KRPC client that re-puts a publisher's signed BEP-44 item verbatim (spec §8.5).

libtorrent's Python binding signs every put itself, so a third party cannot keep someone
else's record alive with it. This client speaks exactly two messages, BEP-44 `get` and `put`,
over its own UDP socket: a `get` traversal toward SHA-1(key + salt) finds the closest nodes and
their write tokens, then `put` repeats the item's key, salt, seq, value and signature unchanged.

Everything is bounded: one deadline per operation, `max_queries` gets per traversal, `alpha`
in flight, datagrams over 2048 bytes dropped, `max_contacts` nodes taken per reply and
`max_candidates` kept per traversal. A node that lets a query time out is not asked again
for a while (`SilentNodes`): under churn, live nodes keep handing out departed ones. Replies
are parsed by `hubless.core.krpc` (typed errors, logged and ignored here) and must come from
the address their transaction id was sent to. Every query carries BEP-43's read-only flag.
IPv4 only. Not thread-safe: one caller at a time (a session keeps one client per caller).

Past ~400 lines because the traversal, the put and their bounds share one socket's state.
"""

from __future__ import annotations

import ipaddress
import logging
import os
import socket
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, replace
from types import TracebackType

from ..core import krpc
from ..core.bep44 import RawItem, verify_item
from ..core.errors import MalformedError, UntrustedDataError, UsageError
from ..core.keys import PUBLIC_KEY_SIZE, PublicKey
from .contract import PutReport, Traffic

log = logging.getLogger(__name__)

Address = tuple[str, int]
_Encoder = Callable[[bytes], bytes]  # builds a query around a transaction id


@dataclass(frozen=True)
class KrpcConfig:
    """Where the client's socket lives and how much one operation may cost.

    `timeout` (seconds) bounds a whole `get` or `reput`; `query_timeout` (seconds) is how long
    one node has to answer. `alpha` queries are in flight at once, at most `max_queries` gets
    per traversal; the `k` closest nodes that answered are the ones put to (BEP-5's k = 8).
    """

    bind_host: str = "127.0.0.1"
    bind_port: int = 0
    timeout: float = 5.0
    query_timeout: float = 1.0
    alpha: int = 4
    max_queries: int = 64
    k: int = 8
    max_contacts: int = 16
    max_candidates: int = 256

    def __post_init__(self) -> None:
        try:
            host = ipaddress.ip_address(self.bind_host)
        except ValueError:
            raise UsageError(f"KRPC bind host {self.bind_host!r} is not an IP address") from None
        if host.version != 4:
            raise UsageError("the KRPC client speaks IPv4 only")
        if not 0 <= self.bind_port < 65536:
            raise UsageError(f"KRPC bind port {self.bind_port} is out of range")
        if not 0 < self.query_timeout < self.timeout:
            raise UsageError("KRPC query_timeout must be positive and below timeout")
        for name in ("alpha", "max_queries", "k", "max_contacts"):
            if getattr(self, name) < 1:
                raise UsageError(f"KRPC {name} must be at least 1")
        if self.max_candidates < self.k:
            raise UsageError("KRPC max_candidates must be at least k")


@dataclass(frozen=True)
class NodeAnswer:
    """One node's answer to a `get`: who it is, the seq it holds (None: no item), its write
    token, and the item when it sent one (unverified: check it with `verify_item`)."""

    address: Address
    node_id: bytes
    seq: int | None
    token: bytes | None
    item: RawItem | None


@dataclass(frozen=True)
class Lookup:
    """The outcome of a `get` traversal: answers ordered closest to `target` first."""

    target: bytes
    answers: tuple[NodeAnswer, ...]
    queried: int  # get queries sent
    traffic: Traffic
    skipped: int = 0  # contacts not asked: silent in an earlier traversal (`SilentNodes`)

    def closest(self, k: int) -> tuple[NodeAnswer, ...]:
        """The `k` closest nodes that gave a write token: where a put goes."""
        return tuple(a for a in self.answers if a.token is not None)[:k]

    @property
    def items(self) -> tuple[RawItem, ...]:
        """Every distinct item the nodes sent (by signature), highest seq first; unverified."""
        found: dict[bytes, RawItem] = {}
        for answer in self.answers:
            if answer.item is not None:
                found.setdefault(answer.item.signature, answer.item)
        return tuple(sorted(found.values(), key=lambda i: i.seq, reverse=True))


class SilentNodes:
    """Nodes that let a query time out, not asked again for `ttl` seconds (600).

    Live nodes keep departed ones in their routing tables and hand them out as contacts,
    and a traversal cannot end before each of the closest has answered or timed out: without
    this memory every traversal waits a query timeout for each departed node again. Shared
    by the clients of one session (thread-safe); at most `limit` addresses (4096) are kept,
    the oldest forgotten first. An answer clears a node at once; bootstrap nodes are always
    asked.
    """

    def __init__(self, ttl: float = 600.0, limit: int = 4096) -> None:
        if ttl <= 0 or limit < 1:
            raise UsageError("SilentNodes needs a positive ttl and limit")
        self.ttl = ttl
        self.limit = limit
        self._since: dict[Address, float] = {}  # in the order they fell silent
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._since)

    def add(self, address: Address, now: float) -> None:
        """`address` let a query time out at `now` (monotonic seconds)."""
        with self._lock:
            self._since.pop(address, None)
            self._since[address] = now
            while len(self._since) > self.limit:
                del self._since[next(iter(self._since))]

    def discard(self, address: Address) -> None:
        """`address` answered: it is asked again from now on."""
        with self._lock:
            self._since.pop(address, None)

    def addresses(self, now: float) -> list[Address]:
        """The addresses silent at `now`, oldest first."""
        with self._lock:
            return [a for a, since in self._since.items() if now - since < self.ttl]

    def silent(self, address: Address, now: float) -> bool:
        """Whether `address` timed out less than `ttl` seconds before `now`."""
        with self._lock:
            since = self._since.get(address)
            if since is None:
                return False
            if now - since < self.ttl:
                return True
            del self._since[address]
            return False


@dataclass
class _Pending:
    address: Address
    expires: float
    full: bool = False  # given a whole query timeout (else the operation's deadline cut it)


def _host_ok(host: str, port: int, loopback_only: bool) -> bool:
    """Whether a node address is worth a datagram from a socket bound as configured."""
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return False
    if ip.version != 4 or not 0 < port < 65536:
        return False
    if loopback_only:
        return ip.is_loopback
    bad = ip.is_loopback or ip.is_unspecified or ip.is_multicast or ip.is_reserved
    return not bad and ip != ipaddress.IPv4Address("255.255.255.255")


def _check(item: RawItem) -> PublicKey:
    """Verify `item` under its own key and salt before anything of it is sent."""
    if len(item.public_key) != PUBLIC_KEY_SIZE:
        raise MalformedError(f"item key is {len(item.public_key)} bytes, not {PUBLIC_KEY_SIZE}")
    key = PublicKey(item.public_key)
    verify_item(item, key, item.salt)
    return key


Matched = tuple[_Pending, krpc.Reply | krpc.ErrorReply]


class KrpcClient:
    """A KRPC client on its own UDP socket; use as a context manager.

    `bootstrap` names the nodes a traversal starts from (host names are resolved once, IPv4
    only). A socket bound to a loopback address only ever sends to loopback addresses; any
    other socket never sends to loopback, unspecified, multicast or broadcast addresses.
    `silent`: the memory of nodes that timed out, to share with other clients (default: the
    client's own). Raises `UsageError` when the socket cannot be bound.
    """

    def __init__(
        self,
        config: KrpcConfig,
        bootstrap: Iterable[Address],
        *,
        silent: SilentNodes | None = None,
    ) -> None:
        self.config = config
        self.silent = silent if silent is not None else SilentNodes()
        self._loopback_only = ipaddress.ip_address(config.bind_host).is_loopback
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            self._sock.bind((config.bind_host, config.bind_port))
        except OSError as exc:
            self._sock.close()
            raise UsageError(
                f"cannot bind the KRPC socket to {config.bind_host}:{config.bind_port}: {exc}"
            ) from exc
        self.address: Address = self._sock.getsockname()[:2]
        self.node_id = os.urandom(krpc.NODE_ID_SIZE)
        self._bootstrap = self._resolve(bootstrap)
        self._pending: dict[bytes, _Pending] = {}
        self._tally = _Tally()

    def __enter__(self) -> KrpcClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        self._sock.close()

    @property
    def traffic(self) -> Traffic:
        """Totals since the client was made."""
        return self._tally.snapshot()

    def _resolve(self, nodes: Iterable[Address]) -> list[Address]:
        out: list[Address] = []
        for host, port in nodes:
            try:
                infos = socket.getaddrinfo(host, port, socket.AF_INET, socket.SOCK_DGRAM)
            except (OSError, UnicodeError) as exc:
                log.warning("skipping bootstrap node %s:%s: %s", host, port, exc)
                continue
            for info in infos:
                address = (str(info[4][0]), int(info[4][1]))
                if self._acceptable(address) and address not in out:
                    out.append(address)
        return out

    def _acceptable(self, address: Address) -> bool:
        return address != self.address and _host_ok(*address, self._loopback_only)

    # --- datagrams ------------------------------------------------------------------------

    def _query(
        self, address: Address, encode: _Encoder, expires: float, *, full: bool = False
    ) -> bool:
        """Send the query `encode(tid)` to `address` under a fresh random transaction id;
        `full`: it has a whole query timeout, so silence until `expires` counts."""
        if not self._acceptable(address):
            return False
        tid = os.urandom(4)  # random: an off-path sender must guess it
        while tid in self._pending:
            tid = os.urandom(4)
        data = encode(tid)
        try:
            self._sock.sendto(data, address)
        except OSError as exc:
            log.debug("KRPC send to %s:%d failed: %s", *address, exc)
            return False
        self._tally.packets_sent += 1
        self._tally.bytes_sent += len(data)
        self._pending[tid] = _Pending(address, expires, full)
        return True

    def handle_datagram(self, data: bytes, sender: Address) -> Matched | None:
        """Match a received datagram to the pending query it answers, or drop it (None).

        Dropped: anything over 2048 bytes or not a well-formed KRPC reply or error, a
        transaction id not pending, and a reply from another address than the query went to.
        """
        self._tally.packets_received += 1
        self._tally.bytes_received += len(data)
        try:
            reply = krpc.decode_reply(data)
        except UntrustedDataError as exc:
            log.debug("dropping datagram from %s:%d: %s", *sender, exc)
            self._tally.dropped += 1
            return None
        pending = self._pending.get(reply.tid)
        if pending is None or pending.address != sender:
            log.debug("dropping reply from %s:%d: no query of that id to it", *sender)
            self._tally.dropped += 1
            return None
        del self._pending[reply.tid]
        self.silent.discard(sender)
        return pending, reply

    def _receive(self, until: float) -> Matched | None:
        """Wait for a datagram that answers a pending query, at most until `until`."""
        while (left := until - time.monotonic()) > 0:
            self._sock.settimeout(left)
            try:
                data, sender = self._sock.recvfrom(krpc.MAX_DATAGRAM + 1)
            except TimeoutError:
                return None
            except OSError as exc:  # e.g. an ICMP error surfacing: never fatal
                log.debug("KRPC receive failed: %s", exc)
                continue
            matched = self.handle_datagram(data, (str(sender[0]), int(sender[1])))
            if matched is not None:
                return matched
        return None

    def _ready(self) -> list[Matched]:
        """Every answer already queued on the socket, read without waiting (at most 1024
        datagrams). Read before expiring anything: a thread that ran late must not take
        answers waiting in the buffer for silence."""
        found: list[Matched] = []
        self._sock.settimeout(0.0)
        for _ in range(1024):
            try:
                data, sender = self._sock.recvfrom(krpc.MAX_DATAGRAM + 1)
            except (BlockingIOError, TimeoutError):
                break
            except OSError as exc:  # e.g. an ICMP error surfacing: never fatal
                log.debug("KRPC receive failed: %s", exc)
                continue
            matched = self.handle_datagram(data, (str(sender[0]), int(sender[1])))
            if matched is not None:
                found.append(matched)
        return found

    def _expire(self, now: float) -> list[Address]:
        """Drop the queries whose time is up; nodes given a whole query timeout are
        remembered as silent."""
        gone = []
        for tid, pending in list(self._pending.items()):
            if pending.expires <= now:
                del self._pending[tid]
                gone.append(pending.address)
                if pending.full:
                    self.silent.add(pending.address, now)
        return gone

    # --- get ----------------------------------------------------------------------------------

    def get(self, public_key: bytes, salt: bytes, *, seq: int | None = None) -> Lookup:
        """A BEP-44 get traversal for (public_key, salt), within `config.timeout` seconds.

        With `seq`, nodes holding that seq or lower answer with the seq only and nodes holding
        a higher one with the whole item. Items are returned unverified (`Lookup.items`).
        Never raises for what nodes send; an empty `Lookup` means nobody answered.
        """
        return self._get(public_key, salt, seq, time.monotonic() + self.config.timeout)

    def _get(self, public_key: bytes, salt: bytes, seq: int | None, deadline: float) -> Lookup:
        cfg = self.config
        before = self._tally.snapshot()
        target = krpc.target_id(public_key, salt)
        walk = krpc.Traversal(target, cfg.k, cfg.max_candidates)
        for address in self._bootstrap:
            walk.add(address, None)
        self._pending.clear()  # late replies to an earlier operation are dropped
        tried = sent = skipped = 0

        def encode(tid: bytes) -> bytes:
            return krpc.encode_get(tid, self.node_id, target, seq)

        while (now := time.monotonic()) < deadline:
            while len(self._pending) < cfg.alpha and tried < cfg.max_queries:
                ask = walk.next()
                if ask is None:
                    break
                if ask not in self._bootstrap and self.silent.silent(ask, now):
                    walk.failed(ask)  # bounded: each candidate is handed out once
                    skipped += 1
                    continue
                tried += 1
                expires = now + cfg.query_timeout
                if self._query(ask, encode, min(expires, deadline), full=expires <= deadline):
                    sent += 1
                else:
                    walk.failed(ask)
            if not self._pending:
                break
            matched = self._receive(min(p.expires for p in self._pending.values()))
            for reply in ([matched] if matched is not None else []) + self._ready():
                self._on_get_reply(walk, reply, public_key, salt)
            for address in self._expire(time.monotonic()):
                walk.failed(address)
        self._pending.clear()
        answers = tuple(NodeAnswer(a, i, g.seq, g.token, g.item) for a, i, g in walk.answers())
        return Lookup(target, answers, sent, self._tally.snapshot() - before, skipped)

    def _on_get_reply(
        self, walk: krpc.Traversal, matched: Matched, public_key: bytes, salt: bytes
    ) -> None:
        pending, reply = matched
        try:
            if isinstance(reply, krpc.ErrorReply):
                raise MalformedError(f"error {reply.code} {reply.message!r}")
            answer = krpc.parse_get_answer(
                reply, public_key, salt, max_contacts=self.config.max_contacts
            )
        except UntrustedDataError as exc:
            log.debug("get reply from %s:%d ignored: %s", *pending.address, exc)
            self._tally.dropped += 1
            walk.failed(pending.address)
            return
        walk.answered(pending.address, reply.node_id, answer)
        for contact in answer.contacts:
            if self._acceptable(contact.address):
                walk.add(contact.address, contact.node_id)

    # --- put ----------------------------------------------------------------------------------

    def put(self, item: RawItem, lookup: Lookup, *, min_current: int | None = None) -> PutReport:
        """Put `item` verbatim on `lookup`'s k closest nodes that gave a write token.

        Raises what `verify_item` raises (`BadSignatureError`, `MalformedError`,
        `OversizedError`, ...) for an item that fails under its own key, before sending, and
        `UsageError` for a lookup of another target. Nothing is put when an answer held a
        validly signed higher seq (`newer`, `newest`), or, with `min_current`, when at least
        that many of the k closest nodes already hold this seq (BEP-44's republish back-off;
        a claimed higher seq counts only through a verified item). Nodes that said they hold
        a higher seq are never sent the put. Waits at most `config.query_timeout` seconds.
        """
        key = _check(item)
        if lookup.target != krpc.target_id(item.public_key, item.salt):
            raise UsageError("the lookup is for another item's target")
        newer: list[RawItem] = []
        for answer in lookup.answers:
            if answer.item is not None and answer.item.seq > item.seq:
                try:
                    verify_item(answer.item, key, item.salt)
                except UntrustedDataError as exc:
                    log.debug("ignoring higher seq from %s:%d: %s", *answer.address, exc)
                    continue
                newer.append(answer.item)
        closest = lookup.closest(self.config.k)
        current = sum(1 for a in closest if a.seq == item.seq)
        report = PutReport(
            stored=0,
            queried=0,
            already_current=current,
            newer=len(newer),
            skipped=True,
            lookup_queries=lookup.queried,
            newest=max(newer, key=lambda i: i.seq) if newer else None,
            traffic=lookup.traffic,
        )
        if newer or (min_current is not None and current >= min_current):
            return report
        before = self._tally.snapshot()
        stored, refused, sent = self._put(item, closest)
        put_traffic = self._tally.snapshot() - before
        return replace(
            report,
            stored=stored,
            queried=sent,
            refused=refused,
            skipped=False,
            traffic=lookup.traffic + put_traffic,
        )

    def _put(self, item: RawItem, nodes: Sequence[NodeAnswer]) -> tuple[int, int, int]:
        """Send the put to every node with its own token; return stored, refused, sent."""
        self._pending.clear()
        deadline = time.monotonic() + self.config.query_timeout
        sent = 0
        for node in nodes:
            if node.token is None or (node.seq is not None and node.seq > item.seq):
                continue
            token = node.token

            def encode(tid: bytes, token: bytes = token) -> bytes:
                return krpc.encode_put(tid, self.node_id, token, item)

            sent += self._query(node.address, encode, deadline)
        stored = refused = 0
        answers: list[Matched] = []
        while self._pending and (matched := self._receive(deadline)) is not None:
            answers.append(matched)
        for pending, reply in answers + self._ready():
            if isinstance(reply, krpc.ErrorReply):
                log.debug(
                    "put refused by %s:%d: %d %s", *pending.address, reply.code, reply.message
                )
                refused += 1
            else:
                stored += 1
        self._pending.clear()
        return stored, refused, sent

    def reput(self, item: RawItem, *, min_current: int | None = None) -> PutReport:
        """Get, then `put` `item` verbatim on the k closest nodes (BEP-44 re-announce).

        The get asks for `item.seq`, so nodes holding it answer with the seq alone. Skips and
        errors as `put`; the whole takes at most `config.timeout` seconds. Raises for an item
        whose signature fails, never for what nodes send.
        """
        _check(item)
        # The get leaves one query timeout for the put: the whole stays within the deadline.
        deadline = time.monotonic() + self.config.timeout - self.config.query_timeout
        lookup = self._get(item.public_key, item.salt, item.seq, deadline)
        return self.put(item, lookup, min_current=min_current)

    def put_signed(self, item: RawItem) -> PutReport:
        """Put a publisher's signed item verbatim, never over a newer one: `reput` without
        back-off. The shape a network seam's `put_signed(item) -> PutReport` delegates to."""
        return self.reput(item)


@dataclass
class _Tally:
    packets_sent: int = 0
    bytes_sent: int = 0
    packets_received: int = 0
    bytes_received: int = 0
    dropped: int = 0

    def snapshot(self) -> Traffic:
        return Traffic(**asdict(self))


def reput_item(
    item: RawItem,
    bootstrap: Sequence[Address],
    *,
    bind_host: str = "127.0.0.1",
    timeout: float = 5.0,
    min_current: int | None = None,
    config: KrpcConfig | None = None,
) -> PutReport:
    """Re-put a publisher's signed `item` verbatim from a fresh socket (spec §8.5).

    `config`, when given, replaces `bind_host` and `timeout`. What is put, skipped and
    raised: `KrpcClient.reput`.
    """
    if config is None:
        query_timeout = min(1.0, timeout / 2)
        config = KrpcConfig(bind_host=bind_host, timeout=timeout, query_timeout=query_timeout)
    with KrpcClient(config, bootstrap) as client:
        return client.reput(item, min_current=min_current)


def lookup_item(
    public_key: bytes, salt: bytes, bootstrap: Sequence[Address], config: KrpcConfig
) -> Lookup:
    """One BEP-44 get traversal from a fresh socket; items come back unverified."""
    with KrpcClient(config, bootstrap) as client:
        return client.get(public_key, salt)
