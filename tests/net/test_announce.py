"""Only seeds announce themselves: a process that downloaded and exited is not left listed
in the DHT as a peer (spec §8.5), yet downloads still find their seeders."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hubless.core.errors import NetTimeoutError
from hubless.net.session import Session
from hubless.net.torrents import create_blob_torrent

from tests.conftest import RunningTestnet

pytestmark = pytest.mark.net


def joined(testnet: RunningTestnet) -> Session:
    session = Session(testnet.profile())
    for host, port in testnet.profile().bootstrap:
        session.add_dht_node(host, port)
    session.wait_for_dht(2, 10)
    return session


def listed(session: Session, ih: bytes) -> list[tuple[str, int]]:
    """The peers a lookup finds; none when it ends without an answer (libtorrent posts no
    reply when no node knows a peer)."""
    try:
        return session.dht_peers(ih, 1)
    except NetTimeoutError:
        return []


def test_finished_downloads_are_not_listed_as_peers(
    testnet: RunningTestnet, tmp_path: Path
) -> None:
    data = os.urandom(300_000)
    (tmp_path / "blob").write_bytes(data)
    torrent, ih = create_blob_torrent("blob", data)
    with joined(testnet) as seeder:
        seeder.seed(torrent, tmp_path, trust_files=True)
        seeder_port = seeder.listen_port
        pullers = []
        for i in range(3):
            with joined(testnet) as puller:
                got = puller.download(torrent, tmp_path / f"pull{i}")
                assert puller.wait_finished(got, 30).finished
                pullers.append(puller.listen_port)
            assert (tmp_path / f"pull{i}" / "blob").read_bytes() == data
        with joined(testnet) as probe:
            listed = {port for _, port in probe.dht_peers(ih, 10)}
    assert seeder_port in listed
    assert not listed & set(pullers), (listed, pullers)


def test_a_download_connects_to_the_peers_it_found_at_once(
    testnet: RunningTestnet, tmp_path: Path
) -> None:
    """libtorrent connects to peers it is told about only on its once-a-second round; a pull
    goes through four torrents and waited 0.6-1 s on each. So a download starts with the
    peers already found for its infohash, and is kicked to connect at once when it learns of
    them later (`Session._kick`). Here the puller's round connects nobody at all
    (`connection_speed` 0; libtorrent still connects at once when a torrent starts or resumes
    with peers): the metadata fetch and each download finish only through those two ways."""
    import time

    data = os.urandom(30_000)
    (tmp_path / "blob").write_bytes(data)
    torrent, ih = create_blob_torrent("blob", data)
    with joined(testnet) as seeder, joined(testnet) as puller:
        puller._ses.apply_settings({"connection_speed": 0})
        seeder.seed(torrent, tmp_path, trust_files=True)
        deadline = time.monotonic() + 20
        while not listed(puller, ih):
            assert time.monotonic() < deadline, "the seeder was never listed"
        for i in range(3):  # the same infohash again: its peers are remembered
            assert puller.fetch_metadata(ih, 30)
            got = puller.download(torrent, tmp_path / f"pull{i}")
            assert puller.wait_finished(got, 30).finished
            puller.remove(got)
            assert (tmp_path / f"pull{i}" / "blob").read_bytes() == data
