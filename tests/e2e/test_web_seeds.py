"""Web seeds bound to the signed manifest (spec §5.8): pulls from a loopback HTTP server with
no peer, from a bad web seed and an honest peer together, a bad web seed alone (an error that
names the file and the seed), and aria2c from an exported .torrent with the web seed alone.

Publisher and consumer are two clients of this process, each with its own home and its own
libtorrent session on the loopback testnet. "No peer" means the publisher serves the signed
manifest and the content torrent's metadata (a few kB), then stops serving the content.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from hubless.config import Config
from hubless.core.errors import IntegrityError
from hubless.core.metainfo import parse_metainfo
from hubless.lab.modelgen import make_model
from hubless.lab.webserver import StaticServer
from hubless.services.client import Client

from tests.conftest import RunningTestnet

from .test_interop import ARIA2C, aria2c, files_under

pytestmark = pytest.mark.e2e

NAME = "tiny"
BAD = "model-00001-of-00002.safetensors"


@pytest.fixture
def model(tmp_path: Path) -> Path:
    folder = tmp_path / "model"
    make_model(folder, seed=21, size=6 << 20, shards=2)  # two ~3 MiB shards: large files
    return folder


@pytest.fixture
def clients(testnet: RunningTestnet, tmp_path: Path) -> Iterator[Callable[..., Client]]:
    made: list[Client] = []

    def make(label: str, upload_limit: int = 0) -> Client:
        config = Config.resolve(
            {"HUBLESS_BOOTSTRAP": testnet.bootstrap_arg},
            home=tmp_path / label,
            upload_limit=upload_limit,
        )
        client = Client(config)
        made.append(client)
        return client

    yield make
    for client in made:
        client.close()


def mirror(model: Path, root: Path, *, corrupt: str | None = None) -> Path:
    """A copy of `model` under `root`, with one byte of `corrupt` flipped in its middle."""
    shutil.copytree(model, root)
    if corrupt is not None:
        data = bytearray((root / corrupt).read_bytes())
        data[len(data) // 2] ^= 0xFF
        (root / corrupt).write_bytes(bytes(data))
    return root


def publish(client: Client, model: Path, *web_seeds: str) -> str:
    key = client.keys.create("default", None)
    result = client.publish(
        model, NAME, "v1", key=client.keys.load(key.name, None), web_seeds=web_seeds
    )
    return f"{result.reference.publisher.text}/{NAME}"


def without_content_peers(publisher: Client, consumer: Client, ref: str, tmp: Path) -> Path:
    """The consumer gets the metadata (export caches it), then the publisher stops serving
    the content: from here on only the web seeds have the files."""
    torrent = tmp / f"{NAME}.torrent"
    consumer.export_torrent(ref, torrent)
    publisher.ctx.stop_seeding(parse_metainfo(torrent.read_bytes()).infohash_v1)
    return torrent


def same_files(a: Path, b: Path) -> bool:
    names = sorted(p.relative_to(a).as_posix() for p in a.rglob("*") if p.is_file())
    return names == sorted(
        p.relative_to(b).as_posix()
        for p in b.rglob("*")
        if p.is_file() and ".hubless" not in p.parts
    ) and all((a / n).read_bytes() == (b / n).read_bytes() for n in names)


@pytest.mark.parametrize("kind", ["bep19", "path"])
def test_a_pull_with_no_peer_completes_from_the_web_seed(
    model: Path, clients: Callable[..., Client], tmp_path: Path, kind: str
) -> None:
    www = tmp_path / "www"
    # bep19: base + NAME/ + path (a static mirror of the folder); path: base + path (a
    # Hugging Face style resolve/REV/ folder holding the files themselves).
    files = www / NAME if kind == "bep19" else www / "org/repo/resolve/main"
    mirror(model, files)
    with StaticServer(www) as server:
        base = (
            server.base_url if kind == "bep19" else f"path:{server.base_url}org/repo/resolve/main/"
        )
        publisher, consumer = clients("publisher"), clients("consumer")
        ref = publish(publisher, model, base)
        without_content_peers(publisher, consumer, ref, tmp_path)
        pulled = consumer.pull(ref)
        sent = server.sent
    total = sum(p.stat().st_size for p in model.iterdir())
    assert same_files(model, pulled.path)
    assert pulled.downloaded_bytes == total
    assert sent >= total  # every byte came from the web seed


def test_a_bad_web_seed_with_an_honest_peer_costs_time_not_correctness(
    model: Path, clients: Callable[..., Client], tmp_path: Path
) -> None:
    www = tmp_path / "www"
    mirror(model, www / NAME, corrupt=BAD)
    with StaticServer(www) as server:
        # The peer is slow (1 MB/s) so the web seed serves most pieces, the bad ones too.
        publisher, consumer = clients("publisher", upload_limit=1_000_000), clients("consumer")
        ref = publish(publisher, model, server.base_url)
        pulled = consumer.pull(ref)
        asked = [path for path, _ in server.requests]
    assert same_files(model, pulled.path)
    assert f"/{NAME}/{BAD}" in asked  # the bad copy was fetched, refused, fetched elsewhere
    total = sum(p.stat().st_size for p in model.iterdir())
    assert pulled.downloaded_bytes > total  # the refused piece cost bytes


def test_a_bad_web_seed_alone_fails_naming_the_file_and_the_seed(
    model: Path, clients: Callable[..., Client], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("hubless.net.session.BAD_DATA_STALL", 2.0)
    www = tmp_path / "www"
    mirror(model, www / NAME, corrupt=BAD)
    with StaticServer(www) as server:
        publisher, consumer = clients("publisher"), clients("consumer")
        ref = publish(publisher, model, server.base_url)
        without_content_peers(publisher, consumer, ref, tmp_path)
        # The bad-data rule ends it (IntegrityError), not the transfer timeout of an hour
        # (NetTimeoutError).
        with pytest.raises(IntegrityError) as failed:
            consumer.pull(ref)
    message = failed.value.message
    print(message)
    assert BAD in message and server.base_url in message, message
    assert "model-00002" not in message  # the good shard is not blamed
    bad = hashlib.sha256((model / BAD).read_bytes()).digest()
    assert not consumer.cache.blob(bad).exists()


@pytest.mark.skipif(ARIA2C is None, reason="aria2c is not installed (apt-get install aria2)")
def test_aria2c_fetches_an_exported_torrent_from_the_web_seed_alone(
    model: Path, clients: Callable[..., Client], tmp_path: Path
) -> None:
    www = tmp_path / "www"
    mirror(model, www / NAME)
    with StaticServer(www) as server:
        publisher, consumer = clients("publisher"), clients("consumer")
        ref = publish(publisher, model, server.base_url)
        info = consumer.export_torrent(ref, tmp_path / f"{NAME}.torrent")
        assert info["web_seeds"] == [server.base_url]
        without_content_peers(publisher, consumer, ref, tmp_path)
        # aria2 1.36 does not know BEP-47: it asks web seeds for pad files too, so a static
        # mirror meant for it holds them as files of zeros (spec §5.8).
        for pad in info["pad_files"]:
            (www / NAME / pad).parent.mkdir(parents=True, exist_ok=True)
            (www / NAME / pad).write_bytes(bytes(int(pad.rsplit("/", 1)[1])))
        root = tmp_path / "aria2"
        for folder in ("downloads", "state", "home"):
            (root / folder).mkdir(parents=True)
        done = subprocess.run(
            aria2c(tmp_path / f"{NAME}.torrent", root / "downloads", root / "state"),
            capture_output=True,
            text=True,
            timeout=60,
            env={**os.environ, "HOME": str(root / "home")},
            check=False,
        )
        sent = server.sent
    assert done.returncode == 0, done.stdout[-2000:]
    got = files_under(root / "downloads" / NAME)
    assert {p: d for p, d in got.items() if not p.startswith(".pad/")} == files_under(model)
    assert sent >= sum(p.stat().st_size for p in model.iterdir())
