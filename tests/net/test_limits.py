"""The spec's limits hold through libtorrent (spec/PROTOCOL.md §4.4, §5.7, §10).

The spec allows 200,000 files per model and 64 MiB of torrent metadata. libtorrent parses
the same bytes with its own limits (3,000,000 bencode tokens for a .torrent, 2,500,000 and
30 MiB for metadata from peers), which a content torrent of ~143,000 files already exceeds:
publishing failed with an unwrapped RuntimeError. A torrent at the spec's limit must parse
where hubless makes it, seed, and travel between two sessions as metadata.

Making a torrent of 200,000 files (400,000 entries with their pad files, 22 MB) takes
libtorrent 9 s; sending its metadata between two sessions takes about 12 s alone, and over
a minute under the loopback audit (strace) on a loaded machine, so that test is `slow`.
"""

from __future__ import annotations

import hashlib
import threading
import time
from pathlib import Path

import libtorrent as lt
import pytest
from hubless.core.errors import UsageError
from hubless.core.manifest import MAX_FILES
from hubless.net.session import Session
from hubless.net.torrents import infohash_of, torrent_files

from tests.conftest import RunningTestnet

pytestmark = pytest.mark.net

NAME = "many-files"


@pytest.fixture(scope="module")
def torrent_at_the_limit() -> bytes:
    """A content torrent as hubless makes them (v1, canonical files) of MAX_FILES files."""
    entries = [
        lt.create_file_entry(f"{NAME}/d{i // 1000:03d}/f{i:06d}.bin", 1) for i in range(MAX_FILES)
    ]
    ct = lt.create_torrent(
        entries, 256 * 1024, lt.create_torrent.v1_only | lt.create_torrent.canonical_files
    )
    digest = hashlib.sha1(b"one byte and its pad").digest()
    for piece in range(ct.num_pieces()):
        ct.set_hash(piece, digest)
    ct.set_creation_date(0)
    return bytes(lt.bencode(ct.generate()))


def test_a_torrent_of_the_spec_s_file_limit_parses_where_hubless_reads_it(
    torrent_at_the_limit: bytes,
) -> None:
    assert len(infohash_of(torrent_at_the_limit)) == 20
    assert len(torrent_files(torrent_at_the_limit)) == MAX_FILES


@pytest.mark.slow
def test_its_metadata_travels_between_two_sessions(
    testnet: RunningTestnet, tmp_path: Path, torrent_at_the_limit: bytes
) -> None:
    with (
        Session(testnet.profile()) as seeder,
        Session(testnet.profile(), scratch_dir=tmp_path / "scratch") as fetcher,
    ):
        seeder.wait_for_dht(2, 10)
        fetcher.wait_for_dht(2, 10)
        ih = seeder.seed(torrent_at_the_limit, tmp_path / "files", trust_files=True)
        got: list[bytes | Exception] = []

        def fetch() -> None:
            try:
                got.append(fetcher.fetch_metadata(ih, 240))
            except Exception as exc:  # reported below, in the test's thread
                got.append(exc)

        thread = threading.Thread(target=fetch)
        thread.start()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:  # point the fetch at the seeder (DHT is slower)
            try:
                fetcher.connect_peer(ih, "127.0.0.1", seeder.listen_port)
                break
            except UsageError:  # the fetch has not added the torrent yet
                time.sleep(0.05)
        thread.join(300)
        assert got and isinstance(got[0], bytes), got
        assert infohash_of(got[0]) == ih  # the hubless parser (pure Python) takes ~20 s here
        assert len(torrent_files(got[0])) == MAX_FILES
