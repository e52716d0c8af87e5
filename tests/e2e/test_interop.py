"""Another BitTorrent client fetches a hubless model: Debian's aria2c against a hubless seeder.

The publisher seeds from its own process; a consumer exports a .torrent and a magnet; two
aria2c processes download them at once. aria2c finds the seeder the only way there is, the
private DHT: from the .torrent's BEP-5 `nodes` list, or (magnet) from `--dht-entry-point`.
Every aria2c socket is pinned to loopback (`--interface`), with LPD, peer exchange, IPv6
and trackers off; run under `loopback-audit` to prove it.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest
from hubless.lab.modelgen import make_model

from tests.conftest import RunningTestnet, read_line

from . import cli

pytestmark = pytest.mark.e2e

ARIA2C = shutil.which("aria2c")
_DOWNLOAD_TIMEOUT = 50.0  # aria2 retries a DHT lookup every 5 s: ~12 s for a .torrent,
# ~25 s for a magnet (one lookup for the metadata, one for the files).


def free_port(kind: socket.SocketKind) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def aria2c(target: str | Path, download_dir: Path, state_dir: Path, *extra: str) -> list[str]:
    """An aria2c command that stays on loopback and contacts only the DHT it is told of."""
    assert ARIA2C is not None
    return [
        ARIA2C,
        str(target),
        "--no-conf=true",  # ignore the user's aria2.conf
        f"--dir={download_dir}",
        "--interface=127.0.0.1",  # binds the BT listener, the DHT socket and every connect
        "--disable-ipv6=true",
        "--enable-dht6=false",
        "--enable-dht=true",
        f"--dht-listen-port={free_port(socket.SOCK_DGRAM)}",
        f"--listen-port={free_port(socket.SOCK_STREAM)}",
        f"--dht-file-path={state_dir / 'dht.dat'}",  # never ~/.aria2/dht.dat's saved nodes
        "--bt-enable-lpd=false",
        "--enable-peer-exchange=false",
        "--bt-exclude-tracker=*",
        "--seed-time=0",
        "--file-allocation=none",
        "--bt-stop-timeout=45",
        "--console-log-level=warn",
        "--summary-interval=0",
        *extra,
    ]


def listening(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=5):
            return True
    except OSError:
        return False


def files_under(folder: Path) -> dict[str, bytes]:
    return {
        p.relative_to(folder).as_posix(): p.read_bytes()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


@pytest.mark.skipif(ARIA2C is None, reason="aria2c is not installed (apt-get install aria2)")
def test_aria2c_downloads_an_exported_model_by_torrent_and_by_magnet(
    testnet: RunningTestnet, tmp_path: Path, processes: list[subprocess.Popen[str]]
) -> None:
    model = tmp_path / "model"
    make_model(model, seed=11, size=3 << 20, shards=3)
    published = files_under(model)
    assert len(published) == 4
    publisher, consumer = tmp_path / "publisher", tmp_path / "consumer"
    key = cli.run(publisher, testnet, "key", "new", "--no-passphrase")["public_key"]
    seeding = cli.spawn(
        publisher, testnet, "publish", model, "--name", "tiny", "--version", "v1", "--seed"
    )
    processes.append(seeding)
    infohash = json.loads(read_line(seeding, 120))["content_infohash"]
    ref = f"{key}/tiny"

    torrent = tmp_path / "tiny.torrent"
    exported = cli.run(consumer, testnet, "export", ref, "--torrent", torrent)
    assert exported["infohash"] == infohash
    assert exported["dht_nodes"] == testnet.bootstrap  # aria2 bootstraps from these
    magnet = cli.run(consumer, testnet, "export", ref, "--magnet")
    assert magnet["magnet"].startswith(f"magnet:?xt=urn:btih:{infohash}&")
    assert magnet["dht_nodes"] == testnet.bootstrap
    # The seeder a DHT lookup found is named for clients that cannot reach this DHT (x.pe).
    peers = [p.split("=", 1)[1] for p in magnet["magnet"].split("&") if p.startswith("x.pe=")]
    assert peers and all(p.startswith("127.0.0.1:") for p in peers), magnet
    # One of them listens: the publisher's seed. (Others may be processes that fetched the
    # metadata here and exited: until downloads stop announcing, the DHT lists them too.)
    assert any(listening(int(peer.rsplit(":", 1)[1])) for peer in peers), peers

    # Both downloads at once; each aria2c has its own folders, ports and DHT state, and a
    # HOME of its own so that anything it wrote elsewhere would show.
    runs = {
        "torrent": (torrent, ()),
        "magnet": (magnet["magnet"], (f"--dht-entry-point={testnet.bootstrap[0]}",)),
    }
    started = time.monotonic()
    procs: dict[str, tuple[subprocess.Popen[str], Path]] = {}
    for name, (target, extra) in runs.items():
        root = tmp_path / f"aria2-{name}"
        download_dir, state_dir, home = root / "downloads", root / "state", root / "home"
        for folder in (download_dir, state_dir, home):
            folder.mkdir(parents=True)
        proc = subprocess.Popen(
            aria2c(target, download_dir, state_dir, *extra),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env={**os.environ, "HOME": str(home)},
        )
        processes.append(proc)
        procs[name] = (proc, root)

    for name, (proc, root) in procs.items():
        try:
            output, _ = proc.communicate(
                timeout=max(1.0, _DOWNLOAD_TIMEOUT - (time.monotonic() - started))
            )
        except subprocess.TimeoutExpired:
            proc.kill()
            output, _ = proc.communicate()
            pytest.fail(f"aria2c ({name}) did not finish in {_DOWNLOAD_TIMEOUT:g}s:\n{output}")
        assert proc.returncode == 0, f"aria2c ({name}) exited {proc.returncode}:\n{output}"

        # Everything aria2c wrote is the model's folder, its DHT state and nothing else.
        downloads = root / "downloads"
        assert [p.name for p in downloads.iterdir()] == ["tiny"], name
        got = files_under(downloads / "tiny")
        pads = [path for path in got if path.startswith(".pad/")]  # BEP-47 padding, if written
        assert all(not any(got[path]) for path in pads), name
        assert {p: data for p, data in got.items() if p not in pads} == published, name
        assert [p.name for p in (root / "state").iterdir()] in (["dht.dat"], []), name
        assert not list((root / "home").iterdir()), name

    digests = {p: hashlib.sha256(d).hexdigest()[:12] for p, d in published.items()}
    print(f"aria2c fetched {digests} by torrent and magnet in {time.monotonic() - started:.1f}s")
