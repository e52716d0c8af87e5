"""KRPC messages for BEP-44 `get` and `put` of mutable items: bytes in, typed values out.

Only what a re-put needs (spec/PROTOCOL.md §8.5): encoding the two queries, always with the
BEP-43 read-only flag, decoding replies to them, and the lookup state that picks whom to ask.
Every datagram is size-checked before bencode sees it and every field is type- and
size-checked after; anything else raises `MalformedError` or `OversizedError`, never
`ValueError` or `KeyError`. No I/O here: the UDP socket, clocks and timeouts live in
`hubless.net.krpc`.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from enum import Enum

from . import bencode
from .bep44 import MAX_SALT_SIZE, MAX_VALUE_SIZE, RawItem
from .errors import MalformedError, OversizedError
from .keys import PUBLIC_KEY_SIZE, SIGNATURE_SIZE

#: Largest datagram accepted, in bytes. A full BEP-44 get reply (1000-byte value, key,
#: signature, 8 IPv4 and 8 IPv6 nodes, token) stays below 1,700 bytes.
MAX_DATAGRAM = 2048
NODE_ID_SIZE = 20
COMPACT_NODE_SIZE = 26  # BEP-5: 20-byte id, 4-byte IPv4 address, 2-byte port
MAX_TOKEN_SIZE = 64  # libtorrent sends 4 bytes; BEP-5 leaves the size open
MAX_TID_SIZE = 16
MAX_ERROR_TEXT = 200
MAX_SEQ = 2**63 - 1  # BEP-44 seq is a signed 64-bit integer


@dataclass(frozen=True)
class Contact:
    """A DHT node named in a reply's compact `nodes` list (BEP-5): id, IPv4 host, port."""

    node_id: bytes
    host: str
    port: int

    @property
    def address(self) -> tuple[str, int]:
        return (self.host, self.port)


@dataclass(frozen=True)
class Reply:
    """A KRPC reply (`y: r`) whose envelope checked out; `body` is the `r` dict, unparsed."""

    tid: bytes
    node_id: bytes
    body: dict[bytes, bencode.Bencodable]


@dataclass(frozen=True)
class ErrorReply:
    """A KRPC error (`y: e`): BEP-5 code and message (BEP-44 adds 205-207, 301, 302)."""

    tid: bytes
    code: int
    message: str


#: BEP-44 error code a node sends when it holds a higher seq than the one put.
OLD_SEQ = 302


@dataclass(frozen=True)
class GetAnswer:
    """What one node said to a BEP-44 `get`: its write token, closer nodes, and the seq it
    holds (`None`: no item). `item` is set when the node sent the value; it is unverified."""

    token: bytes | None
    contacts: tuple[Contact, ...]
    seq: int | None
    item: RawItem | None


def target_id(public_key: bytes, salt: bytes) -> bytes:
    """BEP-44 mutable item target: SHA-1 of the public key followed by the salt (20 bytes)."""
    return hashlib.sha1(public_key + salt).digest()


def distance(a: bytes, b: bytes) -> int:
    """Kademlia XOR distance between two 20-byte ids (BEP-5)."""
    return int.from_bytes(a, "big") ^ int.from_bytes(b, "big")


def encode_get(tid: bytes, node_id: bytes, target: bytes, seq: int | None = None) -> bytes:
    """A BEP-44 `get` query, read-only (BEP-43). With `seq`, nodes holding that seq or a lower
    one answer with their seq only; nodes holding a higher one send the whole item."""
    args: dict[bytes, bencode.Bencodable] = {b"id": node_id, b"target": target}
    if seq is not None:
        args[b"seq"] = seq
    return bencode.encode({b"t": tid, b"y": b"q", b"q": b"get", b"a": args, b"ro": 1})


def encode_put(tid: bytes, node_id: bytes, token: bytes, item: RawItem) -> bytes:
    """A BEP-44 mutable `put` repeating `item`'s key, salt, seq, value and signature unchanged,
    without `cas`, read-only (BEP-43). `item.value` must be canonical bencoding
    (`MalformedError` otherwise), so the value sent is byte-for-byte the one signed."""
    value = bencode.decode(item.value)
    if bencode.encode(value) != item.value:  # decode is canonical; this guards the invariant
        raise MalformedError("item value is not canonical bencoding")
    args: dict[bytes, bencode.Bencodable] = {
        b"id": node_id,
        b"k": item.public_key,
        b"seq": item.seq,
        b"sig": item.signature,
        b"token": token,
        b"v": value,
    }
    if item.salt:
        args[b"salt"] = item.salt
    return bencode.encode({b"t": tid, b"y": b"q", b"q": b"put", b"a": args, b"ro": 1})


def decode_reply(data: bytes) -> Reply | ErrorReply:
    """Check a datagram's size and KRPC envelope (BEP-5).

    Raises `OversizedError` over `MAX_DATAGRAM` bytes and `MalformedError` for anything but a
    reply or error with a transaction id (queries sent to us included: we answer none).
    """
    if len(data) > MAX_DATAGRAM:
        raise OversizedError(f"KRPC datagram is {len(data)} bytes; the limit is {MAX_DATAGRAM}")
    message = bencode.decode(data)
    if not isinstance(message, dict):
        raise MalformedError("KRPC message is not a dict")
    tid = _bytes(message, b"t", "t", max_size=MAX_TID_SIZE)
    kind = message.get(b"y")
    if kind == b"e":
        error = message.get(b"e")
        if not isinstance(error, list) or len(error) < 2:
            raise MalformedError("KRPC error is not a [code, message] list")
        code, text = error[0], error[1]
        if not isinstance(code, int) or not isinstance(text, bytes):
            raise MalformedError("KRPC error code or message has the wrong type")
        return ErrorReply(tid, code, text[:MAX_ERROR_TEXT].decode("utf-8", "replace"))
    if kind != b"r":
        raise MalformedError(f"KRPC message kind {kind!r} is not a reply")
    body = message.get(b"r")
    if not isinstance(body, dict):
        raise MalformedError("KRPC reply has no `r` dict")
    node_id = _bytes(body, b"id", "node id", size=NODE_ID_SIZE)
    return Reply(tid, node_id, body)


def parse_get_answer(
    reply: Reply, public_key: bytes, salt: bytes, *, max_contacts: int
) -> GetAnswer:
    """Read a BEP-44 `get` reply for the item (public_key, salt).

    Keeps the first `max_contacts` IPv4 nodes (`nodes6` is ignored). Raises `MalformedError`
    for a field of the wrong type or size, a seq outside 0..2^63-1, an item under another
    key or with a value that is not a byte string (hubless values are), and
    `OversizedError` for a value over 1000 bytes bencoded (BEP-44).
    """
    body = reply.body
    token = _bytes(body, b"token", "token", max_size=MAX_TOKEN_SIZE) if b"token" in body else None
    contacts = parse_nodes(body.get(b"nodes", b""), max_contacts)
    seq: int | None = None
    if b"seq" in body:
        raw_seq = body[b"seq"]
        if not isinstance(raw_seq, int) or not 0 <= raw_seq <= MAX_SEQ:
            raise MalformedError("get reply seq is not an integer in 0..2^63-1")
        seq = raw_seq
    item = None
    if b"v" in body:
        if seq is None:
            raise MalformedError("get reply has a value but no seq (not a mutable item)")
        key = _bytes(body, b"k", "k", size=PUBLIC_KEY_SIZE)
        if key != public_key:
            raise MalformedError("get reply holds an item under another key")
        signature = _bytes(body, b"sig", "sig", size=SIGNATURE_SIZE)
        if not isinstance(body[b"v"], bytes):
            raise MalformedError("get reply value is not a byte string")
        value = bencode.encode(body[b"v"])
        if len(value) > MAX_VALUE_SIZE:
            raise OversizedError(f"get reply value is {len(value)} bytes bencoded")
        if len(salt) > MAX_SALT_SIZE:
            raise OversizedError(f"salt is {len(salt)} bytes; BEP-44 allows {MAX_SALT_SIZE}")
        item = RawItem(key, salt, seq, value, signature)
    return GetAnswer(token, contacts, seq, item)


def parse_nodes(blob: bencode.Bencodable, limit: int) -> tuple[Contact, ...]:
    """The first `limit` entries of a BEP-5 compact IPv4 node list.

    Raises `MalformedError` unless `blob` is a byte string whose length is a multiple of 26.
    Entries with port 0 are dropped; which addresses are worth a query is the caller's call.
    """
    if not isinstance(blob, bytes):
        raise MalformedError("nodes is not a byte string")
    if len(blob) % COMPACT_NODE_SIZE:
        raise MalformedError(f"nodes is {len(blob)} bytes, not a multiple of {COMPACT_NODE_SIZE}")
    contacts: list[Contact] = []
    for start in range(0, len(blob), COMPACT_NODE_SIZE):
        if len(contacts) >= limit:
            break
        entry = blob[start : start + COMPACT_NODE_SIZE]
        port = int.from_bytes(entry[24:26], "big")
        if port == 0:
            continue
        host = ".".join(str(b) for b in entry[20:24])
        contacts.append(Contact(entry[:20], host, port))
    return tuple(contacts)


def encode_nodes(contacts: list[Contact]) -> bytes:
    """The BEP-5 compact form of IPv4 contacts (used by tests and fake nodes)."""
    out = []
    for contact in contacts:
        parts = [int(p) for p in contact.host.split(".")]
        out.append(contact.node_id + bytes(parts) + contact.port.to_bytes(2, "big"))
    return b"".join(out)


def _bytes(
    d: dict[bytes, bencode.Bencodable],
    key: bytes,
    what: str,
    *,
    size: int | None = None,
    max_size: int | None = None,
) -> bytes:
    value = d.get(key)
    if not isinstance(value, bytes):
        raise MalformedError(f"KRPC field {what} is missing or not a byte string")
    if size is not None and len(value) != size:
        raise MalformedError(f"KRPC field {what} is {len(value)} bytes, not {size}")
    if max_size is not None and len(value) > max_size:
        raise MalformedError(f"KRPC field {what} is {len(value)} bytes; at most {max_size}")
    return value


# --- the traversal: which node to ask next -----------------------------------------------------

Address = tuple[str, int]


class _State(Enum):
    NEW = 0
    PENDING = 1
    ANSWERED = 2
    FAILED = 3


@dataclass
class _Candidate:
    node_id: bytes | None  # None for a bootstrap node not heard from yet
    state: _State = _State.NEW
    answer: GetAnswer | None = None


class Traversal:
    """Kademlia's iterative lookup state for one target (BEP-5), without sockets or clocks.

    The next node to ask is the closest not yet asked among the `k` closest that have not
    failed (bootstrap nodes, id unknown, come first); the lookup is over when those `k` have
    all answered or failed. At most `max_candidates` nodes are remembered, the farthest
    unasked ones forgotten first, so a flood of bogus contacts costs bounded memory and, with
    the caller's query budget, bounded queries.
    """

    def __init__(self, target: bytes, k: int, max_candidates: int) -> None:
        self.target = target
        self.k = k
        self.max_candidates = max_candidates
        self._cands: dict[Address, _Candidate] = {}

    def __len__(self) -> int:
        return len(self._cands)

    def _rank(self, item: tuple[Address, _Candidate]) -> int:
        node_id = item[1].node_id
        return -1 if node_id is None else distance(node_id, self.target)

    def add(self, address: Address, node_id: bytes | None) -> None:
        """Remember a node to ask; the first id heard for an address is kept."""
        if address in self._cands:
            return
        self._cands[address] = _Candidate(node_id)
        excess = len(self._cands) - self.max_candidates
        if excess > 0:
            unasked = [c for c in self._cands.items() if c[1].state is _State.NEW]
            unasked.sort(key=self._rank, reverse=True)
            for gone, _ in unasked[:excess]:
                del self._cands[gone]

    def next(self) -> Address | None:
        """The next node to ask (now marked pending), or None when none is left to ask."""
        live = [c for c in self._cands.items() if c[1].state is not _State.FAILED]
        live.sort(key=self._rank)
        for address, cand in live[: self.k]:
            if cand.state is _State.NEW:
                cand.state = _State.PENDING
                return address
        return None

    def answered(self, address: Address, node_id: bytes, answer: GetAnswer) -> None:
        """Record a node's answer; its own id replaces the one others claimed for it."""
        cand = self._cands.setdefault(address, _Candidate(node_id))
        cand.node_id, cand.state, cand.answer = node_id, _State.ANSWERED, answer

    def failed(self, address: Address) -> None:
        """A node that timed out or answered nonsense: never asked again, never put to."""
        cand = self._cands.get(address)
        if cand is not None:
            cand.state = _State.FAILED

    def answers(self) -> list[tuple[Address, bytes, GetAnswer]]:
        """(address, node id, answer) of every node that answered, closest first."""
        done = [c for c in self._cands.items() if c[1].state is _State.ANSWERED]
        done.sort(key=self._rank)
        return [(a, c.node_id, c.answer) for a, c in done if c.node_id and c.answer]
