"""Only seeds announce themselves: a process that downloaded and exited is not left listed
in the DHT as a peer (spec §8.5), yet downloads still find their seeders."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
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
