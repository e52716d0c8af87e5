"""Torrents between processes on loopback: downloads match byte for byte, resume after a
crash without fetching finished pieces again, and fetch only the files asked for."""

from __future__ import annotations

import json
import os
import random
import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from hubless.net.profile import loopback_violations
from hubless.net.session import Session
from hubless.net.torrents import (
    ContentTorrent,
    create_blob_torrent,
    create_content_torrent,
    file_priorities_for,
)

from tests.conftest import RunningTestnet, read_line, start_testnet, stop_process
from tests.net.children import DOWNLOAD, SEED

pytestmark = pytest.mark.net

KIB = 1024
MIB = 1024 * KIB
TIMEOUT = 60.0

Spawn = Callable[..., Any]


def _model(folder: Path, files: dict[str, int], seed: int = 3) -> ContentTorrent:
    rng = random.Random(seed)
    for rel, size in files.items():
        (folder / rel).parent.mkdir(parents=True, exist_ok=True)
        (folder / rel).write_bytes(rng.randbytes(size))
    return create_content_torrent(folder, files)


def _seed(
    spawn: Spawn,
    testnet: RunningTestnet,
    save_path: Path,
    torrents: list[bytes],
    tmp: Path,
    upload_limit: int = 0,
) -> Any:
    paths = []
    for i, data in enumerate(torrents):
        path = tmp / f"{i}.torrent"
        path.write_bytes(data)
        paths.append(str(path))
    proc = spawn(SEED, testnet.bootstrap_arg, str(save_path), str(upload_limit), *paths)
    assert read_line(proc, TIMEOUT).strip() == "ready"
    return proc


@pytest.fixture
def client(testnet: RunningTestnet, tmp_path: Path) -> Iterator[Session]:
    with Session(testnet.profile(), tmp_path / "client-state") as session:
        session.wait_for_dht(2, 10)
        yield session


def _same_files(a: Path, b: Path, files: dict[str, int] | list[str]) -> bool:
    return all((a / rel).read_bytes() == (b / rel).read_bytes() for rel in files)


def test_seeded_in_one_process_downloads_in_another(
    testnet: RunningTestnet, client: Session, spawn_python: Spawn, tmp_path: Path
) -> None:
    src = tmp_path / "src"
    files = {"config.json": 1234, "weights.bin": 3 * MIB + 17, "sub/tokenizer.txt": 300 * KIB}
    content = _model(src / "model", files)
    manifest = b"signed manifest " * 1000
    (src / "manifest").write_bytes(manifest)
    blob, blob_ih = create_blob_torrent("manifest", manifest)
    _seed(spawn_python, testnet, src, [content.torrent_bytes, blob], tmp_path)

    # The manifest torrent by infohash alone: peers found through the DHT, metadata from them.
    assert client.fetch_metadata(blob_ih, timeout=TIMEOUT) == blob
    dst = tmp_path / "dst"
    ih = client.download(content.infohash_v1, dst)
    assert ih == content.infohash_v1
    done = client.wait_finished(ih, TIMEOUT)
    assert done.done == done.wanted == sum(files.values())
    assert _same_files(src / "model", dst / "model", files)


def test_selective_download_fetches_only_the_chosen_files(
    testnet: RunningTestnet, client: Session, spawn_python: Spawn, tmp_path: Path
) -> None:
    src = tmp_path / "src"
    files = {"a.safetensors": 2 * MIB, "b.safetensors": 2 * MIB, "config.json": 40 * KIB}
    content = _model(src / "model", files)
    _seed(spawn_python, testnet, src, [content.torrent_bytes], tmp_path)

    dst = tmp_path / "dst"
    priorities = file_priorities_for(content.torrent_bytes, ["config.json"])
    ih = client.download(content.torrent_bytes, dst, file_priorities=priorities)
    done = client.wait_finished(ih, TIMEOUT)
    assert done.wanted == files["config.json"]
    assert _same_files(src / "model", dst / "model", ["config.json"])
    # config.json is one piece of its own (canonical files): no byte of a or b came over.
    assert client.payload_downloaded(ih) <= content.piece_length
    for skipped in ("a.safetensors", "b.safetensors"):
        path = dst / "model" / skipped
        assert not path.exists() or not path.read_bytes().strip(b"\0")


@pytest.mark.parametrize("stop", ["sigkill", "close"])
def test_interrupted_download_resumes_without_refetching(
    testnet: RunningTestnet, spawn_python: Spawn, tmp_path: Path, stop: str
) -> None:
    """SIGKILL leaves no resume file (rechecking the files on disk must find the pieces);
    a clean close leaves one. Either way finished pieces are not downloaded again."""
    src = tmp_path / "src"
    files = {"part-1.bin": 3 * MIB, "part-2.bin": 3 * MIB}
    content = _model(src / "model", files)
    total = sum(files.values())
    _seed(spawn_python, testnet, src, [content.torrent_bytes], tmp_path, upload_limit=2 * MIB)
    torrent_file = tmp_path / "content.torrent"
    torrent_file.write_bytes(content.torrent_bytes)
    dst, state = tmp_path / "dst", tmp_path / "state"

    # Periodic resume saves off for "sigkill": the killed process leaves no resume file.
    interval = "3600" if stop == "sigkill" else "1"
    child = spawn_python(
        DOWNLOAD,
        testnet.bootstrap_arg,
        str(torrent_file),
        str(dst),
        str(state),
        interval,
        "0.4",
        "kill" if stop == "sigkill" else "close",
    )
    done_before = 0
    while True:
        report = json.loads(read_line(child, TIMEOUT))
        if report.get("closed"):
            break
        done_before = report["done"]
        if stop == "sigkill" and done_before >= 0.4 * total:
            os.kill(child.pid, signal.SIGKILL)
            break
    child.wait(TIMEOUT)
    assert 0 < done_before < total, "the seeder's throttle should leave a mid-way"
    resume_files = list((state / "resume").glob("*.resume")) if (state / "resume").exists() else []
    assert bool(resume_files) == (stop == "close")

    with Session(testnet.profile(), state) as again:
        assert not loopback_violations(again.get_settings())
        again.wait_for_dht(2, 10)
        ih = again.download(content.torrent_bytes, dst)
        again.wait_finished(ih, TIMEOUT)
        fetched = again.payload_downloaded(ih)
    assert _same_files(src / "model", dst / "model", files)
    # Pieces verified before the interruption stay. Pieces that were only partly in flight
    # are fetched again (resume data keeps whole pieces); with a deep request queue that is a
    # few pieces (8 allowed: on a loaded machine more requests are in flight when it stops),
    # still far below the `total` a fresh start would fetch.
    assert fetched <= total - done_before + 8 * content.piece_length
    assert fetched < total


def test_sessions_stay_on_loopback(testnet: RunningTestnet, client: Session) -> None:
    settings = client.get_settings()
    assert loopback_violations(settings) == []
    assert settings["listen_interfaces"].startswith("127.0.0.1:")
    for endpoint in settings["dht_bootstrap_nodes"].split(","):
        assert endpoint in testnet.bootstrap
    assert not (settings["enable_lsd"] or settings["enable_upnp"] or settings["enable_natpmp"])


def test_trusted_files_seed_at_once_without_seed_mode(client: Session, tmp_path: Path) -> None:
    """Files hubless hashed itself are marked as had: no check now, and no libtorrent
    `seed_mode`, which would hash every piece again on its first request (decision 0011)."""
    import libtorrent as lt
    from hubless.net.malloc import tune_allocator

    content = _model(tmp_path / "src" / "model", {"a.bin": 2 * MIB, "b.json": 300})
    ih = client.seed(content.torrent_bytes, tmp_path / "src", trust_files=True)
    handle = client._handle(ih)
    deadline = time.monotonic() + 10  # libtorrent adds a torrent asynchronously
    while not (status := handle.status()).is_seeding and time.monotonic() < deadline:
        time.sleep(0.05)
    assert status.is_seeding and status.num_pieces == len(status.pieces)
    assert status.state != lt.torrent_status.checking_files
    assert not handle.flags() & lt.torrent_flags.seed_mode
    assert tune_allocator() is False  # done once per process, by the first session


def test_untrusted_files_are_checked_first(client: Session, tmp_path: Path) -> None:
    import libtorrent as lt

    content = _model(tmp_path / "src" / "model", {"a.bin": 2 * MIB})
    (tmp_path / "src" / "model" / "a.bin").write_bytes(b"\0" * (2 * MIB))  # not what was hashed
    ih = client.seed(content.torrent_bytes, tmp_path / "src")
    handle = client._handle(ih)
    deadline = time.monotonic() + 20
    while handle.status().state != lt.torrent_status.downloading:  # the check is over
        assert time.monotonic() < deadline, handle.status().state
        time.sleep(0.05)
    assert not handle.status().is_seeding and handle.status().num_pieces == 0


def test_many_metadata_fetches_at_once_all_get_it(spawn_python: Spawn, tmp_path: Path) -> None:
    """Eight fetches from one rate-limited seed at once. Before the fix some never got the
    metadata: libtorrent dropped the seed as an upload-to-upload link, or the metadata alert
    came before the torrent was registered (decision 0011).

    The nine clients have addresses of their own /24s, so they enter the DHT nodes' routing
    tables and stay there as dead entries once closed (decision 0007): they get a testnet of
    their own, or every later lookup of the shared one would wait on them."""
    from concurrent.futures import ThreadPoolExecutor

    from hubless.net.profile import NetProfile

    testnet = start_testnet()
    src = tmp_path / "src"
    content = _model(src / "model", {"a.bin": 4 * MIB, "b.bin": 4 * MIB})
    try:
        _seed(spawn_python, testnet, src, [content.torrent_bytes], tmp_path, upload_limit=2 * MIB)
        bootstrap = testnet.profile().bootstrap
        busy = Session(NetProfile.local(bootstrap, host="127.101.1.2"))  # keeps the seed busy
        busy.wait_for_dht(2, 10)
        busy.download(content.torrent_bytes, tmp_path / "busy")

        def fetch(i: int) -> bytes:
            with Session(NetProfile.local(bootstrap, host=f"127.101.0.{10 + i}")) as session:
                session.wait_for_dht(2, 10)
                return session.fetch_metadata(content.infohash_v1, timeout=20)

        try:
            with ThreadPoolExecutor(8) as pool:
                got = list(pool.map(fetch, range(8)))
        finally:
            busy.close()
    finally:
        stop_process(testnet.process)
    info = content.torrent_bytes[len(b"d4:info") : -1]
    assert all(torrent == b"d4:info" + info + b"e" for torrent in got)


def test_a_seeded_torrent_never_writes_into_its_folder(client: Session, tmp_path: Path) -> None:
    """Upload mode: a seeded snapshot is never written into, even where a piece is wrong."""
    import libtorrent as lt

    folder = tmp_path / "seeded"
    content = _model(folder, {"a.bin": 300 * KIB})
    ih = client.seed(content.torrent_bytes, tmp_path, trust_files=True)
    assert client._handle(ih).flags() & lt.torrent_flags.upload_mode


def test_files_are_reported_once_written_while_the_rest_downloads(
    testnet: RunningTestnet, client: Session, spawn_python: Spawn, tmp_path: Path
) -> None:
    """`on_written` names each wanted file once, while the download runs, and only when the
    file's bytes are on disk: a caller hashes it there and then (spec §8.4)."""
    from hubless.core.metainfo import parse_metainfo
    from hubless.services.bands import download_priorities

    src = tmp_path / "src"
    files = {f"shard-{i}.bin": 4 * MIB for i in range(4)}
    files["skipped.bin"] = 1 * MIB
    content = _model(src / "model", files)
    _seed(spawn_python, testnet, src, [content.torrent_bytes], tmp_path, upload_limit=6_000_000)
    meta = parse_metainfo(content.torrent_bytes)
    wanted = {p for p in files if p != "skipped.bin"}
    dst = tmp_path / "dst"
    seen: list[tuple[str, bool, int]] = []  # (file, its bytes right on disk, bytes done then)

    def written(indices: list[int]) -> None:
        done = client.progress(ih).done
        for i in indices:
            rel = meta.files[i].path
            on_disk = (dst / "model" / rel).read_bytes() == (src / "model" / rel).read_bytes()
            seen.append((rel, on_disk, done))

    ih = client.download(
        content.torrent_bytes, dst, file_priorities=download_priorities(meta, wanted)
    )
    done = client.wait_finished(ih, TIMEOUT, on_written=written)
    assert done.done == done.wanted == 16 * MIB
    assert all(ok for _, ok, _ in seen), seen
    assert len({rel for rel, _, _ in seen}) == len(seen)  # each once
    assert {rel for rel, _, _ in seen} <= wanted
    # files complete in turn (the bands of download_priorities): most before the end
    assert len(seen) >= 2 and seen[0][2] < done.wanted, seen


def test_no_peer_says_what_the_lookups_found_and_why_connecting_failed(
    testnet: RunningTestnet, client: Session, spawn_python: Spawn, tmp_path: Path
) -> None:
    """`NoPeersError` tells "nobody is listed" from "listed but unreachable" (a seeder that
    exited, a firewall): the lookups' count, the peers found, how connecting to them ended."""
    from hubless.core.errors import NoPeersError

    blob, blob_ih = create_blob_torrent("manifest", b"nobody serves this")
    with pytest.raises(NoPeersError) as nobody:
        client.fetch_metadata(blob_ih, timeout=2)
    assert "DHT lookups found no peer" in nobody.value.message, nobody.value.message

    # A seeder announces, then dies: the DHT still lists it, and connecting is refused.
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "manifest").write_bytes(b"nobody serves this")
    seeder = _seed(spawn_python, testnet, tmp_path / "src", [blob], tmp_path)
    with Session(testnet.profile()) as probe:
        probe.wait_for_dht(2, 10)
        deadline = time.monotonic() + TIMEOUT
        while not (listed := probe.dht_peers(blob_ih, 10)):
            assert time.monotonic() < deadline, "the seeder was never listed"
    stop_process(seeder)
    with pytest.raises(NoPeersError) as dead:
        client.fetch_metadata(blob_ih, timeout=3)
    message = dead.value.message
    host, port = listed[0]
    assert f"found {host}:{port}" in message and "connecting failed" in message, message
    assert "refused" in message.lower(), message
