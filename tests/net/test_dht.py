"""BEP-44 items across processes on a loopback testnet: what one process puts, another reads
verified; what another key signs is never taken for the publisher's; absence is an answer."""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Iterator
from pathlib import Path

import pytest
from hubless.core.bep44 import VerifiedItem, newest_valid
from hubless.core.errors import NotFoundError, OversizedError, UntrustedDataError
from hubless.core.keys import PublicKey, SigningKey
from hubless.net.session import Session

from tests.conftest import RunningTestnet, run_python
from tests.net.children import PUBLISH

pytestmark = pytest.mark.net

PUBLISHER = SigningKey(hashlib.sha256(b"hubless test publisher").digest())
INTRUDER = SigningKey(hashlib.sha256(b"hubless test intruder").digest())


def _salt(request: pytest.FixtureRequest) -> bytes:
    """A salt no other test uses: the testnet lives for the whole session."""
    return request.node.name.encode()[:64]


def _publish(testnet: RunningTestnet, key: SigningKey, salt: bytes, *payloads: bytes) -> list[int]:
    out = run_python(
        PUBLISH,
        testnet.bootstrap_arg,
        key.seed.hex(),
        salt.decode(),
        *(p.decode() for p in payloads),
    )
    return [int(line) for line in out.split()]


def newest(session: Session, key: PublicKey, salt: bytes) -> VerifiedItem:
    """The valid item with the highest BEP-44 seq a lookup met."""
    return newest_valid(session.dht_get(key, salt, timeout=10), key, salt)


@pytest.fixture
def client(testnet: RunningTestnet) -> Iterator[Session]:
    with Session(testnet.profile()) as session:
        session.wait_for_dht(2, 10)
        yield session


def test_put_in_one_process_is_read_verified_in_another(
    testnet: RunningTestnet, client: Session, request: pytest.FixtureRequest
) -> None:
    salt = _salt(request)
    stored = _publish(testnet, PUBLISHER, salt, b"manifest v1")
    assert stored[0] >= 1
    item = newest(client, PUBLISHER.public, salt)
    assert item.payload == b"manifest v1"
    assert item.public_key == PUBLISHER.public and item.salt == salt


def test_newer_put_replaces_the_older(
    testnet: RunningTestnet, client: Session, request: pytest.FixtureRequest
) -> None:
    salt = _salt(request)
    _publish(testnet, PUBLISHER, salt, b"v1", b"v2")
    item = newest(client, PUBLISHER.public, salt)
    assert item.payload == b"v2"
    assert item.seq == 2


def test_another_keys_record_is_not_the_publishers(
    testnet: RunningTestnet, client: Session, request: pytest.FixtureRequest
) -> None:
    salt = _salt(request)
    _publish(testnet, INTRUDER, salt, b"evil")
    with pytest.raises(NotFoundError):
        newest(client, PUBLISHER.public, salt)
    _publish(testnet, PUBLISHER, salt, b"good")
    assert (
        newest_valid(
            client.dht_get(PUBLISHER.public, salt, timeout=10), PUBLISHER.public, salt
        ).payload
        == b"good"
    )
    assert (
        newest_valid(
            client.dht_get(INTRUDER.public, salt, timeout=10), INTRUDER.public, salt
        ).payload
        == b"evil"
    )


def test_missing_record_is_not_found_within_the_timeout(client: Session) -> None:
    # NotFoundError, not NetTimeoutError: the lookup finishes and says "nothing".
    with pytest.raises(NotFoundError):
        newest_valid(
            client.dht_get(PUBLISHER.public, b"no such model", timeout=10),
            PUBLISHER.public,
            b"no such model",
        )


def test_put_and_get_in_one_session(client: Session, request: pytest.FixtureRequest) -> None:
    salt = _salt(request)
    assert client.dht_put(PUBLISHER, salt, b"x" * 990, timeout=10) >= 1
    assert (
        newest_valid(
            client.dht_get(PUBLISHER.public, salt, timeout=10), PUBLISHER.public, salt
        ).payload
        == b"x" * 990
    )


def test_oversized_value_is_refused_before_sending(client: Session) -> None:
    with pytest.raises(OversizedError):
        client.dht_put(PUBLISHER, b"big", b"x" * 1000, timeout=10)


def test_dht_state_is_saved_and_loaded(testnet: RunningTestnet, tmp_path: Path) -> None:
    with Session(testnet.profile(), tmp_path) as first:
        first.wait_for_dht(2, 10)
    saved = list((tmp_path / "dht").glob("private-*.state"))
    assert len(saved) == 1 and saved[0].stat().st_size > 0
    with Session(testnet.profile(), tmp_path) as again:
        assert again.wait_for_dht(1, 10) >= 1


def test_a_private_network_never_contacts_nodes_saved_from_another(
    testnet: RunningTestnet, tmp_path: Path
) -> None:
    """Saved routing tables are per network: naming network B sends nothing to A's nodes."""
    import gc
    import socket

    from hubless.net.testnet import Testnet

    other = Testnet(nodes=4).start()
    endpoints = other.endpoints
    with Session(other.profile(), tmp_path) as first:
        first.wait_for_dht(2, 10)
    other.stop()
    del other
    gc.collect()
    listeners = []
    for host, port in endpoints:  # stand where network A's nodes stood, and count packets
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.bind((host, port))
        sock.setblocking(False)
        listeners.append(sock)
    try:
        with Session(testnet.profile(), tmp_path) as session:
            for host, port in testnet.profile().bootstrap:
                session.add_dht_node(host, port)
            session.wait_for_dht(2, 10)
            session.dht_get(PUBLISHER.public, b"anything", timeout=10)
        received = 0
        for sock in listeners:
            try:
                while sock.recv(2048):
                    received += 1
            except BlockingIOError:
                pass
        assert received == 0, f"{received} packets went to nodes of another network"
    finally:
        for sock in listeners:
            sock.close()


def test_a_session_puts_another_keys_item_verbatim(
    client: Session, request: pytest.FixtureRequest
) -> None:
    """The seam's verbatim put (spec §8.5): same BEP-44 seq and signature, not re-signed."""
    salt = _salt(request)
    assert client.dht_put(INTRUDER, salt, b"signed elsewhere", timeout=10) >= 1
    original = newest(client, INTRUDER.public, salt).raw()
    report = client.dht_put_signed(original, timeout=5)
    assert report.stored + report.already_current >= 1, report
    again = newest(client, INTRUDER.public, salt)
    assert (again.seq, again.signature) == (original.seq, original.signature)
    forged = dataclasses.replace(original, signature=bytes(64))
    with pytest.raises(UntrustedDataError):
        client.dht_put_signed(forged, timeout=5)
