"""The seam's verbatim put (`Session.dht_put_signed`, spec §8.5) on a loopback testnet: the
item nodes serve afterwards is the publisher's own, byte for byte; a newer item is never
put over; a put backs off when nodes hold it already. Skipped until the build has the KRPC
client (`hubless.net.krpc`); `tests/services/test_keepalive.py` covers the rules above it."""

from __future__ import annotations

import hashlib
import importlib.util
from collections.abc import Iterator

import pytest
from hubless.core.bep44 import sign_item
from hubless.core.errors import BadSignatureError
from hubless.core.keys import SigningKey
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
