"""The seam's verbatim put (`Session.dht_put_signed`, spec §8.5) on a loopback testnet: the
item nodes serve afterwards is the publisher's own, byte for byte; a newer item is never
put over; a put backs off when nodes hold it already; puts from several threads do not wait
for each other, and the keep-alive's own get (`dht_get_direct`) passes over a silent node.
Skipped until the build has the KRPC client (`hubless.net.krpc`);
`tests/services/test_keepalive.py` covers the rules above it."""

from __future__ import annotations

import hashlib
import importlib.util
import socket
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
from hubless.core.bep44 import sign_item
from hubless.core.errors import BadSignatureError, NetTimeoutError
from hubless.core.keys import SigningKey
from hubless.net.profile import NetProfile
from hubless.net.session import Session, open_session

from tests.conftest import RunningTestnet

pytestmark = [
    pytest.mark.net,
    pytest.mark.skipif(
        importlib.util.find_spec("hubless.net.krpc") is None,
        reason="needs the verbatim re-put (hubless.net.krpc, built on its own branch)",
    ),
]

PUBLISHER = SigningKey(hashlib.sha256(b"hubless test: verbatim put").digest())


@pytest.fixture
def session(testnet: RunningTestnet) -> Iterator[Session]:
    with open_session(testnet.profile()) as s:
        yield s


@pytest.fixture
def silent() -> Iterator[tuple[str, int]]:
    """A UDP socket on loopback that never answers: a node that has left the network."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    yield sock.getsockname()[:2]
    sock.close()


@pytest.fixture
def churned(testnet: RunningTestnet, silent: tuple[str, int]) -> Iterator[Session]:
    """A session whose every KRPC traversal meets the silent node first."""
    with open_session(NetProfile.local((silent, *testnet.profile().bootstrap))) as s:
        yield s


def salt_of(request: pytest.FixtureRequest) -> bytes:
    return request.node.name.encode()[:64]


def test_the_item_put_is_the_publishers_own(
    session: Session, testnet: RunningTestnet, request: pytest.FixtureRequest
) -> None:
    item = sign_item(PUBLISHER, salt_of(request), 41, b"signed elsewhere")
    report = session.dht_put_signed(item, 10)
    assert report.stored >= 1 and report.queried >= report.stored and not report.skipped
    with open_session(testnet.profile()) as reader:
        assert reader.dht_get(PUBLISHER.public, item.salt, 10) == [item]


def test_a_newer_item_is_never_put_over(session: Session, request: pytest.FixtureRequest) -> None:
    salt = salt_of(request)
    newer = sign_item(PUBLISHER, salt, 7, b"v2")
    assert session.dht_put_signed(newer, 10).stored >= 1
    report = session.dht_put_signed(sign_item(PUBLISHER, salt, 6, b"v1"), 10)
    assert report.newer >= 1 and report.stored == 0 and report.skipped
    assert session.dht_get(PUBLISHER.public, salt, 10) == [newer]


def test_the_put_backs_off_when_nodes_hold_it(
    session: Session, request: pytest.FixtureRequest
) -> None:
    item = sign_item(PUBLISHER, salt_of(request), 3, b"kept")
    first = session.dht_put_signed(item, 10)
    report = session.dht_put_signed(item, 10, min_current=1)
    assert report.skipped and report.already_current >= min(first.stored, 1)


def test_a_forged_item_is_refused_before_anything_is_sent(
    session: Session, request: pytest.FixtureRequest
) -> None:
    item = sign_item(PUBLISHER, salt_of(request), 3, b"real")
    forged = type(item)(item.public_key, item.salt, item.seq, b"6:forged", item.signature)
    with pytest.raises(BadSignatureError):
        session.dht_put_signed(forged, 10)


def test_puts_from_several_threads_run_at_once(
    churned: Session, request: pytest.FixtureRequest
) -> None:
    items = [sign_item(PUBLISHER, salt_of(request)[:60] + b"-%d" % i, 1, b"x") for i in range(4)]
    started = time.monotonic()
    with ThreadPoolExecutor(len(items)) as pool:
        reports = list(pool.map(lambda item: churned.dht_put_signed(item, 10), items))
    took = time.monotonic() - started
    assert all(r.stored >= 1 for r in reports), reports
    # Each put waits one query timeout (1 s) on the silent node: in turn, 4 s at least.
    assert took < 2.5, f"{len(items)} puts took {took:.1f}s"
    sent = churned.dht.krpc_traffic.packets_sent
    assert sent == sum(r.traffic.packets_sent for r in reports)


def test_the_direct_get_passes_over_a_silent_node(
    churned: Session, session: Session, request: pytest.FixtureRequest
) -> None:
    item = sign_item(PUBLISHER, salt_of(request), 5, b"found")
    assert session.dht_put_signed(item, 10).stored >= 1
    started = time.monotonic()
    assert churned.dht_get_direct(PUBLISHER.public, item.salt, 10) == [item]
    assert time.monotonic() - started < 3


def test_a_direct_get_nobody_answers_is_a_timeout(silent: tuple[str, int]) -> None:
    with Session(NetProfile.local((silent,))) as alone:
        started = time.monotonic()
        with pytest.raises(NetTimeoutError):
            alone.dht_get_direct(PUBLISHER.public, b"nobody", 2)
        assert time.monotonic() - started < 3


def test_dht_traffic_counts_libtorrent_and_the_krpc_client(
    session: Session, request: pytest.FixtureRequest
) -> None:
    before = session.dht_traffic()
    report = session.dht_put_signed(sign_item(PUBLISHER, salt_of(request), 2, b"counted"), 10)
    spent = session.dht_traffic() - before
    assert spent.packets_sent >= report.traffic.packets_sent > 0
    assert spent.bytes_sent >= report.traffic.bytes_sent
    assert session.dht.traffic().packets_sent > 0  # libtorrent's node joined the DHT
    gets = session.dht.counters()["dht_get_out"]
    session.dht_get(PUBLISHER.public, salt_of(request), 10)
    assert session.dht.counters()["dht_get_out"] > gets
