"""Verbatim BEP-44 re-put over our own KRPC client (spec §8.5).

Against real libtorrent nodes on loopback: an item a publisher signed is put again, byte for
byte, after the DHT forgot it; a second re-put backs off; an older item never replaces a newer
one. Against fake peers (plain UDP sockets on 127.0.0.1 answering with crafted bencode) and
the pure codec: truncated, oversized, mistyped, misaddressed and flooding replies are typed
errors or ignored, never a crash, and every operation ends within its deadline.
"""

from __future__ import annotations

import hashlib
import random
import socket
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import pytest
from hubless.core import bencode
from hubless.core import krpc as codec
from hubless.core.bep44 import (
    RawItem,
    VerifiedItem,
    newest_valid,
    sign_item,
    verify_item,
    wrap_value,
)
from hubless.core.errors import (
    BadSignatureError,
    HublessError,
    MalformedError,
    NotFoundError,
    OversizedError,
    UntrustedDataError,
    UsageError,
)
from hubless.core.keys import SigningKey
from hubless.net.krpc import (
    KrpcClient,
    KrpcConfig,
    Lookup,
    SilentNodes,
    Traffic,
    reput_item,
)
from hubless.net.session import Session
from hubless.net.testnet import Testnet as LoopbackTestnet

PUBLISHER = SigningKey(hashlib.sha256(b"hubless krpc test publisher").digest())
SALT = b"krpc-model"
K = 8
Address = tuple[str, int]


def _raw(item: VerifiedItem) -> RawItem:
    """The item as nodes store it, rebuilt from what libtorrent's get returned."""
    return RawItem(
        item.public_key.raw, item.salt, item.seq, wrap_value(item.payload), item.signature
    )


def _get(session: Session) -> VerifiedItem:
    """A plain libtorrent get, verified by the core (the seam returns items raw)."""
    return newest_valid(session.dht_get(PUBLISHER.public, SALT, timeout=10), PUBLISHER.public, SALT)


def _config(**overrides: Any) -> KrpcConfig:
    base: dict[str, Any] = {"timeout": 5.0, "query_timeout": 1.0}
    return KrpcConfig(**{**base, **overrides})


# --- against real libtorrent nodes -----------------------------------------------------------


def _publish(net: LoopbackTestnet, *payloads: bytes) -> list[RawItem]:
    """Put each payload as the publisher with libtorrent (which picks the BEP-44 seq), and
    capture each item with a plain libtorrent get from another session."""
    captured = []
    with Session(net.profile()) as publisher, Session(net.profile()) as reader:
        publisher.wait_for_dht(2, 10)
        reader.wait_for_dht(2, 10)
        for payload in payloads:
            assert publisher.dht_put(PUBLISHER, SALT, payload) >= 1
            item = _get(reader)
            assert item.payload == payload
            captured.append(_raw(item))
    return captured


def _libtorrent_get(net: LoopbackTestnet) -> VerifiedItem:
    with Session(net.profile()) as reader:
        reader.wait_for_dht(2, 10)
        return _get(reader)


@pytest.fixture
def net() -> Iterator[LoopbackTestnet]:
    with LoopbackTestnet(16) as testnet:
        yield testnet


@pytest.mark.net
def test_item_is_reput_verbatim_after_the_dht_forgot_it() -> None:
    with LoopbackTestnet(16) as first:
        (item,) = _publish(first, b"manifest v1")
    # libtorrent keeps items in memory: new nodes are a DHT that never saw the item.
    with LoopbackTestnet(16) as second:
        with Session(second.profile()) as probe:
            probe.wait_for_dht(2, 10)
            with pytest.raises(NotFoundError):
                _get(probe)
        report = reput_item(item, second.endpoints[:1], timeout=5.0)
        assert report.stored > 0 and not report.skipped
        assert report.queried >= report.stored and report.refused == 0
        assert report.already_current == 0
        found = _libtorrent_get(second)
    assert (found.seq, found.signature, found.payload) == (item.seq, item.signature, b"manifest v1")


@pytest.mark.net
def test_second_reput_backs_off_when_the_closest_nodes_hold_the_seq(net: LoopbackTestnet) -> None:
    (item,) = _publish(net, b"manifest v1")
    with KrpcClient(_config(), net.endpoints[:1]) as client:
        first = client.reput(item)  # libtorrent already stored it: this refreshes it
        assert first.stored > 0
        second = client.reput(item, min_current=K)
    assert second.skipped and second.stored == second.queried == 0
    assert second.already_current >= K
    # Back-off costs one traversal and no put.
    assert second.traffic.packets_sent == second.lookup_queries


@pytest.mark.net
def test_an_older_item_is_never_put_over_a_newer_one(net: LoopbackTestnet) -> None:
    old, new = _publish(net, b"manifest v1", b"manifest v2")
    assert new.seq > old.seq
    with KrpcClient(_config(), net.endpoints[:1]) as client:
        report = client.reput(old)
    assert report.skipped and report.stored == report.queried == 0
    assert report.newer > 0 and report.newest == new
    found = _libtorrent_get(net)
    assert (found.seq, found.signature) == (new.seq, new.signature)


@pytest.mark.net
def test_nodes_refuse_an_older_put_and_the_report_says_so(net: LoopbackTestnet) -> None:
    (old,) = _publish(net, b"manifest v1")
    with KrpcClient(_config(), net.endpoints[:1]) as client:
        stale = client.get(old.public_key, old.salt)  # tokens taken while nodes held seq 1
        (new,) = _publish(net, b"manifest v2")
        report = client.put(old, stale)  # a put decided on stale knowledge
    assert report.queried > 0 and report.stored == 0
    assert report.refused == report.queried  # BEP-44 error 302 from every node
    assert _libtorrent_get(net).signature == new.signature


@pytest.mark.net
def test_get_returns_raw_items_the_caller_verifies(net: LoopbackTestnet) -> None:
    (item,) = _publish(net, b"manifest v1")
    with KrpcClient(_config(), net.endpoints[:1]) as client:
        lookup = client.get(PUBLISHER.public.raw, SALT)
    assert lookup.items == (item,)
    assert verify_item(lookup.items[0], PUBLISHER.public, SALT).payload == b"manifest v1"
    assert [a.seq for a in lookup.closest(K)] == [item.seq] * K
    assert all(a.token for a in lookup.closest(K))
    distances = [codec.distance(a.node_id, lookup.target) for a in lookup.answers]
    assert distances == sorted(distances)


@pytest.mark.net
def test_an_item_whose_signature_fails_is_never_sent(net: LoopbackTestnet) -> None:
    good = sign_item(PUBLISHER, SALT, 7, b"manifest")
    forged = RawItem(good.public_key, good.salt, 8, good.value, good.signature)
    with KrpcClient(_config(), net.endpoints[:1]) as client:
        with pytest.raises(BadSignatureError):
            client.reput(forged)
        assert client.traffic.packets_sent == 0


# --- fake peers: plain sockets answering with crafted bencode ---------------------------------

Answer = Callable[[dict[bytes, Any], Address], Iterable[bytes]]


class FakeNode:
    """A UDP socket on 127.0.0.1 that answers each query with what `answer` returns."""

    def __init__(self, answer: Answer) -> None:
        self.answer = answer
        self.queries: list[dict[bytes, Any]] = []
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.05)
        self.address: Address = self.sock.getsockname()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                data, sender = self.sock.recvfrom(65536)
            except TimeoutError:
                continue
            query = bencode.decode(data)
            assert isinstance(query, dict)
            self.queries.append(query)
            for datagram in self.answer(query, sender):
                self.sock.sendto(datagram, sender)

    def __enter__(self) -> FakeNode:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.sock.close()


def _reply(tid: bytes, **fields: Any) -> bytes:
    body = {b"id": b"N" * 20, **{k.encode(): v for k, v in fields.items()}}
    return bencode.encode({b"t": tid, b"y": b"r", b"r": body})


def _target() -> bytes:
    return codec.target_id(PUBLISHER.public.raw, SALT)


def _closer(n: int) -> bytes:
    """A node id at XOR distance `n` from the target (so smaller n is closer)."""
    target = int.from_bytes(_target(), "big")
    return (target ^ n).to_bytes(20, "big")


def _dead(i: int, distance: int | None = None) -> codec.Contact:
    """Contact `i` at a loopback address nobody listens on (127.254.0.0/16 is left unbound)."""
    node_id = _closer(1 + i if distance is None else distance)
    return codec.Contact(node_id, f"127.254.{(i >> 8) & 255}.{i & 255}", 40000 + i % 20000)


def _get_from(
    node: FakeNode, *, silent: SilentNodes | None = None, **overrides: Any
) -> tuple[Lookup, float]:
    """One get from a client whose only bootstrap node is `node` (2 s, 0.3 s per query
    unless `overrides` say otherwise); `silent`: the client's memory of silent nodes."""
    config = _config(**{"timeout": 2.0, "query_timeout": 0.3, **overrides})
    with KrpcClient(config, [node.address], silent=silent) as client:
        start = time.monotonic()
        lookup = client.get(PUBLISHER.public.raw, SALT)
        return lookup, time.monotonic() - start


def test_queries_carry_the_read_only_flag_and_put_repeats_the_signed_fields() -> None:
    item = sign_item(PUBLISHER, SALT, 5, b"payload")
    token = b"tok1"

    def answer(query: dict[bytes, Any], sender: Address) -> list[bytes]:
        return [_reply(query[b"t"], token=token, nodes=b"", seq=4)]

    with FakeNode(answer) as node, KrpcClient(_config(), [node.address]) as client:
        report = client.reput(item)
    get, put = node.queries
    assert get[b"ro"] == put[b"ro"] == 1
    assert (get[b"q"], get[b"a"][b"target"], get[b"a"][b"seq"]) == (b"get", _target(), 5)
    args = put[b"a"]
    assert put[b"q"] == b"put" and b"cas" not in args
    assert (args[b"k"], args[b"salt"], args[b"seq"], args[b"sig"], args[b"token"]) == (
        item.public_key,
        item.salt,
        item.seq,
        item.signature,
        token,
    )
    assert bencode.encode(args[b"v"]) == item.value
    assert (report.stored, report.queried, report.already_current) == (1, 1, 0)


GOOD_ITEM = sign_item(PUBLISHER, SALT, 3, b"value")

# (name, reply fields or raw bytes): every one is refused or ignored, none crashes.
BAD_REPLIES: list[tuple[str, bytes | dict[str, Any]]] = [
    ("truncated", b"d1:rd2:id20:NNNN"),
    ("not bencode", b"\xff" * 40),
    ("not a dict", b"li1ei2ee"),
    ("trailing bytes", _reply(b"xx") + b"junk"),
    ("oversized", b"d1:t2:xx1:y1:r1:rd2:id20:" + b"N" * 20 + b"1:x3000:" + b"x" * 3000 + b"ee"),
    ("nodes not a multiple of 26", {"nodes": b"x" * 27, "token": b"t"}),
    ("nodes not bytes", {"nodes": [b"x" * 26], "token": b"t"}),
    ("id not 20 bytes", {"id": b"short", "token": b"t"}),
    ("token not bytes", {"token": 5}),
    ("token too long", {"token": b"t" * 65}),
    ("seq negative", {"token": b"t", "seq": -1}),
    ("seq huge", {"token": b"t", "seq": 2**63}),
    ("seq not an int", {"token": b"t", "seq": b"1"}),
    ("v without seq", {"token": b"t", "v": b"x", "k": GOOD_ITEM.public_key, "sig": b"s" * 64}),
    (
        "v not bytes",
        {"token": b"t", "seq": 3, "v": [1], "k": GOOD_ITEM.public_key, "sig": b"s" * 64},
    ),
    (
        "v over 1000 bytes",
        {"token": b"t", "seq": 3, "v": b"x" * 1000, "k": GOOD_ITEM.public_key, "sig": b"s" * 64},
    ),
    ("k of another key", {"token": b"t", "seq": 3, "v": b"x", "k": b"K" * 32, "sig": b"s" * 64}),
    (
        "sig not 64 bytes",
        {"token": b"t", "seq": 3, "v": b"x", "k": GOOD_ITEM.public_key, "sig": b"s"},
    ),
]


def _bad_datagram(tid: bytes, bad: bytes | dict[str, Any]) -> bytes:
    return bad if isinstance(bad, bytes) else _reply(tid, **bad)


@pytest.mark.parametrize(("name", "bad"), BAD_REPLIES, ids=[n for n, _ in BAD_REPLIES])
def test_codec_refuses_bad_replies_with_typed_errors(
    name: str, bad: bytes | dict[str, Any]
) -> None:
    with pytest.raises((MalformedError, OversizedError)):
        reply = codec.decode_reply(_bad_datagram(b"xx", bad))
        assert isinstance(reply, codec.Reply)
        codec.parse_get_answer(reply, PUBLISHER.public.raw, SALT, max_contacts=16)


def _decodes(datagram: bytes) -> bool:
    try:
        codec.decode_reply(datagram[: codec.MAX_DATAGRAM + 1])  # what the client reads of it
    except UntrustedDataError:
        return False
    return True


@pytest.mark.parametrize(("name", "bad"), BAD_REPLIES, ids=[n for n, _ in BAD_REPLIES])
def test_client_ignores_bad_replies(name: str, bad: bytes | dict[str, Any]) -> None:
    """A datagram that is no KRPC reply does not answer the query, which lapses (the node is
    remembered as silent); a reply with a nonsense answer ends the query at once, refused
    (the node answered: not silent). Either way the node is asked once and yields nothing."""

    def answer(query: dict[bytes, Any], sender: Address) -> list[bytes]:
        return [_bad_datagram(query[b"t"], bad)]

    silent = SilentNodes()
    with FakeNode(answer) as node:
        lookup, _ = _get_from(node, silent=silent)
    assert lookup.answers == () and lookup.queried == 1
    assert lookup.traffic.dropped == 1
    lapsed = not _decodes(_bad_datagram(b"xx", bad))
    assert silent.silent(node.address, time.monotonic()) == lapsed


def test_replies_with_unknown_transaction_ids_are_dropped() -> None:
    def answer(query: dict[bytes, Any], sender: Address) -> list[bytes]:
        wrong = bytes(b ^ 0xFF for b in query[b"t"])
        return [_reply(wrong, token=b"t"), _reply(b"", token=b"t"), _reply(b"x" * 17, token=b"t")]

    silent = SilentNodes()
    with FakeNode(answer) as node:
        lookup, _ = _get_from(node, silent=silent)
    assert lookup.answers == () and lookup.traffic.dropped == 3
    # None of the three answered the query: it lapsed, and the node is remembered as silent.
    assert lookup.queried == 1 and silent.silent(node.address, time.monotonic())


def test_a_reply_counts_only_from_the_address_the_query_went_to() -> None:
    with FakeNode(lambda q, s: []) as node, KrpcClient(_config(), []) as client:
        sent = client._query(
            node.address,
            lambda tid: codec.encode_get(tid, client.node_id, _target()),
            time.monotonic() + 5,
        )
        assert sent
        deadline = time.monotonic() + 5
        while not node.queries and time.monotonic() < deadline:
            time.sleep(0.01)
        reply = _reply(node.queries[0][b"t"], token=b"t")
        host, port = node.address
        # Simulated senders only: nothing is sent to these addresses.
        assert client.handle_datagram(reply, ("203.0.113.7", port)) is None
        assert client.handle_datagram(reply, ("127.0.0.2", port)) is None
        assert client.handle_datagram(reply, (host, port + 1)) is None
        matched = client.handle_datagram(reply, node.address)
        assert matched is not None and matched[0].address == node.address
        assert client.handle_datagram(reply, node.address) is None  # answered once only
        assert client.traffic.dropped == 4


class _Recorder:
    """Wraps the client's socket and records where every datagram went."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.sent_to: list[Address] = []

    def sendto(self, data: bytes, address: Address) -> int:
        self.sent_to.append(address)
        return self.sock.sendto(data, address)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.sock, name)


def test_nodes_off_loopback_are_never_contacted() -> None:
    outside = [
        codec.Contact(_closer(1), "203.0.113.9", 6881),
        codec.Contact(_closer(2), "8.8.8.8", 53),
        codec.Contact(_closer(3), "0.0.0.0", 6881),
        codec.Contact(_closer(4), "255.255.255.255", 6881),
        codec.Contact(_closer(5), "224.0.0.1", 6881),
    ]

    def answer(query: dict[bytes, Any], sender: Address) -> list[bytes]:
        return [_reply(query[b"t"], token=b"t", nodes=codec.encode_nodes(outside))]

    with (
        FakeNode(answer) as node,
        KrpcClient(_config(timeout=2.0, query_timeout=0.3), [node.address]) as client,
    ):
        recorder = _Recorder(client._sock)
        client._sock = recorder  # type: ignore[assignment]
        lookup = client.get(PUBLISHER.public.raw, SALT)
    assert recorder.sent_to == [node.address]
    assert [a.address for a in lookup.answers] == [node.address]


def test_bootstrap_nodes_off_loopback_are_dropped() -> None:
    with KrpcClient(_config(), [("203.0.113.9", 6881), ("127.0.0.1", 0)]) as client:
        lookup = client.get(PUBLISHER.public.raw, SALT)
    assert lookup.queried == 0 and client.traffic.packets_sent == 0


def test_a_flood_of_bogus_nodes_is_bounded() -> None:
    """Each query draws a full-size reply of dead loopback nodes, ever closer to the target,
    plus 150 more such replies under the same transaction id: over 10,000 nodes in all."""
    per_reply = (codec.MAX_DATAGRAM - 100) // codec.COMPACT_NODE_SIZE
    blobs = [
        codec.encode_nodes([_dead(r * per_reply + i) for i in range(per_reply)]) for r in range(151)
    ]
    offered = 0

    def answer(query: dict[bytes, Any], sender: Address) -> Iterator[bytes]:
        nonlocal offered
        for nodes in blobs:
            offered += per_reply
            yield _reply(query[b"t"], token=b"t", nodes=nodes)

    config: dict[str, Any] = {"max_queries": 40, "alpha": 8, "max_candidates": 64}
    with FakeNode(answer) as node:
        lookup, took = _get_from(node, **config)
    # The kernel may drop part of the flood when the socket buffer fills; what arrives after
    # the first reply is dropped by us: its transaction was answered.
    traffic = lookup.traffic
    assert offered >= 10_000 and traffic.packets_received > 1
    assert traffic.dropped == traffic.packets_received - 1
    assert took < 20  # a hang guard, 10x the deadline: the flood cannot keep it going
    assert lookup.queried <= 40
    assert [a.address for a in lookup.answers] == [node.address]


def test_traversal_remembers_a_bounded_number_of_nodes() -> None:
    """10,000 contacts, each batch closer than the last (a lookup that would never settle by
    itself): memory stays bounded and no address is asked twice; the client's query budget
    and deadline end it."""
    walk = codec.Traversal(_target(), k=8, max_candidates=100)
    walk.add(("127.0.0.1", 1), None)
    asked: set[Address] = set()
    offered = 0
    for round_ in range(100):
        address = walk.next()
        assert address is not None and address not in asked
        asked.add(address)
        contacts = tuple(_dead(offered + i, distance=10**6 - offered - i) for i in range(100))
        offered += len(contacts)
        walk.answered(
            address, _closer(2**100 + round_), codec.GetAnswer(b"t", contacts, None, None)
        )
        for contact in contacts:
            walk.add(contact.address, contact.node_id)
        assert len(walk) <= 100 + len(asked)
    assert offered == 10_000


def test_a_forged_newer_item_neither_blocks_nor_counts_and_refusals_are_reported() -> None:
    item = sign_item(PUBLISHER, SALT, 3, b"value")
    other = SigningKey(hashlib.sha256(b"not the publisher").digest())
    forged = sign_item(other, SALT, 9, b"evil")  # signed, but not by the publisher

    def liar(query: dict[bytes, Any], sender: Address) -> list[bytes]:
        value = bencode.decode(forged.value)
        fields = {
            "token": b"t",
            "seq": 9,
            "v": value,
            "k": item.public_key,
            "sig": forged.signature,
        }
        return [_reply(query[b"t"], **fields)]

    def refuser(query: dict[bytes, Any], sender: Address) -> list[bytes]:
        if query[b"q"] == b"put":
            return [bencode.encode({b"t": query[b"t"], b"y": b"e", b"e": [302, b"old seq"]})]
        return [_reply(query[b"t"], token=b"t")]

    with FakeNode(liar) as a, FakeNode(refuser) as b:
        client = KrpcClient(_config(), [a.address, b.address])
        with client:
            lookup = client.get(item.public_key, item.salt, seq=item.seq)
            with pytest.raises(BadSignatureError):
                verify_item(lookup.items[0], PUBLISHER.public, SALT)
            report = client.put(item, lookup)
    # The claimed seq 9 did not verify: it does not count as newer nor stop the put; the
    # liar, which says it holds a higher seq, is not sent the put; the refusal is reported.
    assert report.newer == 0 and report.newest is None and not report.skipped
    assert (report.queried, report.refused, report.stored) == (1, 1, 0)
    assert [q[b"q"] for q in b.queries] == [b"get", b"put"]
    assert [q[b"q"] for q in a.queries] == [b"get"]


def test_silent_nodes_cost_one_query_timeout_each_within_the_deadline() -> None:
    """The lookup waits the silent node's query timeout (0.3 s), not its own deadline (30 s):
    the node is remembered as silent, which only a query given its whole time and left
    unanswered does. The time bound is a hang guard far above the 0.3 s this takes, and far
    below the 30 s a lookup that waited for its deadline would take."""
    silent = SilentNodes()
    with FakeNode(lambda q, s: []) as node:
        lookup, took = _get_from(node, silent=silent, timeout=30.0)
    assert lookup.answers == () and lookup.queried == 1
    assert silent.silent(node.address, time.monotonic())
    assert took < 10, f"a lookup with one silent node took {took:.1f}s: it waited past its query"


def test_a_node_that_timed_out_is_not_waited_on_again() -> None:
    """Churn: a live node keeps handing out a departed one, closest to the target. The
    first traversal waits a query timeout for it; later ones, from any client sharing the
    memory, skip it and end at once."""
    departed = _dead(1, distance=1)

    def answer(query: dict[bytes, Any], sender: Address) -> list[bytes]:
        return [_reply(query[b"t"], token=b"t", nodes=codec.encode_nodes([departed]))]

    shared = SilentNodes()
    sent, lookups, remembered = [], [], []
    with FakeNode(answer) as node:
        for _ in range(2):  # two clients of one session
            config = _config(timeout=2.0, query_timeout=0.3)
            with KrpcClient(config, [node.address], silent=shared) as client:
                lookups.append(client.get(PUBLISHER.public.raw, SALT))
                sent.append(client.traffic.packets_sent)
                remembered.append(shared.addresses(time.monotonic()))
    # The first lookup asked the departed node and waited its query out (so it is remembered);
    # the second did not send it a single datagram, so it had nothing to wait for.
    assert remembered == [[departed.address]] * 2
    assert sent == [2, 1] and [lk.skipped for lk in lookups] == [0, 1]
    assert [a.address for a in lookups[1].answers] == [node.address]


def test_an_answer_waiting_in_the_buffer_is_not_taken_for_silence() -> None:
    """A client thread that runs late (a loaded machine) finds the answer queued after the
    query's time is up: it counts, and the node is not remembered as silent."""

    def answer(query: dict[bytes, Any], sender: Address) -> list[bytes]:
        return [_reply(query[b"t"], token=b"t", nodes=b"")]

    shared = SilentNodes()
    with (
        FakeNode(answer) as node,
        KrpcClient(_config(timeout=2.0, query_timeout=0.2), [node.address], silent=shared) as c,
    ):
        on_time = c._receive

        def late(until: float) -> Any:
            time.sleep(max(0.0, until - time.monotonic()) + 0.1)  # not scheduled in time
            return on_time(until)

        c._receive = late  # type: ignore[method-assign]
        lookup = c.get(PUBLISHER.public.raw, SALT)
    assert [a.address for a in lookup.answers] == [node.address]
    assert len(shared) == 0


def test_a_silent_bootstrap_node_is_still_asked() -> None:
    shared = SilentNodes()
    config = _config(timeout=1.0, query_timeout=0.2)
    with FakeNode(lambda q, s: []) as node:
        for _ in range(2):
            with KrpcClient(config, [node.address], silent=shared) as client:
                lookup = client.get(PUBLISHER.public.raw, SALT)
            assert lookup.queried == 1 and lookup.skipped == 0
    assert len(node.queries) == 2 and len(shared) == 1


def test_silent_nodes_are_forgotten_after_their_time_and_bounded() -> None:
    silent = SilentNodes(ttl=600, limit=2)
    a, b, c = ("127.0.0.1", 1), ("127.0.0.1", 2), ("127.0.0.1", 3)
    silent.add(a, 0.0)
    assert silent.silent(a, 599.0) and not silent.silent(a, 600.0)
    assert len(silent) == 0  # an expired entry is dropped when looked at
    for address in (a, b, c):
        silent.add(address, 1000.0)
    assert len(silent) == 2 and not silent.silent(a, 1000.0)  # the oldest went first
    silent.discard(b)
    assert not silent.silent(b, 1000.0) and silent.silent(c, 1000.0)
    with pytest.raises(UsageError):
        SilentNodes(ttl=0)


def test_nothing_here_raises_anything_but_hubless_errors() -> None:
    """Mangled replies through the codec: only untrusted-data errors ever come out."""
    rng = random.Random(44)
    seeds = [_reply(b"ab", token=b"t", seq=1, nodes=codec.encode_nodes([_dead(1)])), b"de"]
    for _ in range(3000):
        data = bytearray(rng.choice(seeds))
        for _ in range(rng.randint(1, 4)):
            if data and rng.random() < 0.5:
                del data[rng.randrange(len(data))]
            else:
                data.insert(rng.randrange(len(data) + 1), rng.randrange(256))
        try:
            reply = codec.decode_reply(bytes(data))
            if isinstance(reply, codec.Reply):
                codec.parse_get_answer(reply, PUBLISHER.public.raw, SALT, max_contacts=16)
        except UntrustedDataError:
            pass
        except HublessError as exc:
            pytest.fail(f"{type(exc).__name__} is not an untrusted-data error")


def test_a_lookup_of_another_target_is_refused_before_sending() -> None:
    item = sign_item(PUBLISHER, SALT, 1, b"value")
    with KrpcClient(_config(), []) as client:
        with pytest.raises(UsageError):
            client.put(item, Lookup(b"\0" * 20, (), 0, Traffic()))
        assert client.traffic.packets_sent == 0


@pytest.mark.parametrize(
    "bad",
    [
        {"bind_host": "localhost"},
        {"bind_host": "::1"},
        {"bind_port": 70000},
        {"timeout": 1.0, "query_timeout": 1.0},
        {"alpha": 0},
        {"max_queries": 0},
        {"k": 8, "max_candidates": 4},
    ],
)
def test_config_refuses_what_cannot_work(bad: dict[str, Any]) -> None:
    with pytest.raises(UsageError):
        _config(**bad)
