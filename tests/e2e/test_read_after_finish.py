"""A finished download is on disk when `wait_finished` returns, with aria2c as the seeder.

With aria2c as the only seeder of a manifest torrent, reading the file right after libtorrent
reported the torrent finished failed in 3 of 10 pulls on another machine: a piece counts as
had once its hash passed, which can be before libtorrent's disk thread wrote it.
`Session.wait_finished` now returns only after libtorrent confirmed the files are written
(flush_cache). On this machine the race did not show in 3 runs of this test without the
flush, so the test guards the contract (read at once, torrent removed at once) rather than
reproducing the race on demand.
"""

from __future__ import annotations

import os
import random
import subprocess
from pathlib import Path

import pytest
from hubless.net.session import Session
from hubless.net.torrents import create_blob_torrent

from tests.conftest import RunningTestnet

from .test_interop import ARIA2C, aria2c

pytestmark = pytest.mark.e2e

BLOBS = 8


@pytest.mark.skipif(ARIA2C is None, reason="aria2c is not installed (apt-get install aria2)")
def test_files_are_written_when_a_download_from_aria2c_finishes(
    testnet: RunningTestnet, tmp_path: Path, processes: list[subprocess.Popen[str]]
) -> None:
    from hubless.services.export import with_dht_nodes

    src, state, home = tmp_path / "src", tmp_path / "state", tmp_path / "home"
    for folder in (src, state, home):
        folder.mkdir()
    rng = random.Random(9)
    blobs = []
    listing = []
    for i in range(BLOBS):
        data = rng.randbytes(20_000 + 997 * i)  # manifest-sized, one or two 16 KiB pieces
        (src / f"m{i}").write_bytes(data)
        torrent, ih = create_blob_torrent(f"m{i}", data)
        path = tmp_path / f"m{i}.torrent"
        host, port = testnet.bootstrap[0].rsplit(":", 1)
        path.write_bytes(with_dht_nodes(torrent, [(host, int(port))]))
        listing.append(str(path))
        blobs.append((f"m{i}", data, torrent, ih))
    (tmp_path / "list.txt").write_text("\n".join(listing) + "\n")
    command = aria2c(tmp_path / "list.txt", src, state)
    command[1] = f"--input-file={tmp_path / 'list.txt'}"  # one download per listed torrent
    seeder = subprocess.Popen(
        [
            *command,
            f"--dht-entry-point={testnet.bootstrap[0]}",
            "--seed-time=60",
            "--seed-ratio=0.0",
            "--check-integrity=true",
            "--bt-stop-timeout=0",
            "--max-concurrent-downloads=100",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, "HOME": str(home)},
    )
    processes.append(seeder)
    with Session(testnet.profile(), tmp_path / "client") as client:
        client.wait_for_dht(2, 10)
        for name, data, torrent, ih in blobs:
            dst = tmp_path / "dst" / name
            client.download(torrent, dst)
            try:
                client.wait_finished(ih, 60)
            finally:
                client.remove(ih)
            assert (dst / name).read_bytes() == data, name  # read at once, as pull does
