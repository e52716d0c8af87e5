"""The main job across processes: publish, pull, update, history, older versions, resume.

Testnet, publisher and consumer are separate processes with separate homes, talking only
over loopback; the publisher keeps seeding in the background like a real author would.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
from pathlib import Path

import pytest
from hubless.lab.modelgen import make_model, write_safetensors

from tests.conftest import RunningTestnet, read_line

from . import cli

pytestmark = pytest.mark.e2e


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def publish_and_seed(
    home: Path,
    testnet: RunningTestnet,
    model: Path,
    version: str,
    processes: list[subprocess.Popen[str]],
    *extra: str,
) -> dict[str, object]:
    proc = cli.spawn(
        home, testnet, *extra, "publish", model, "--name", "tiny", "--version", version, "--seed"
    )
    processes.append(proc)
    return json.loads(read_line(proc, 120))  # type: ignore[no-any-return]


def test_publish_pull_update_history_and_older_versions(
    testnet: RunningTestnet, tmp_path: Path, processes: list[subprocess.Popen[str]]
) -> None:
    model = tmp_path / "model"
    make_model(model, seed=1, size=6 << 20, shards=3)
    original = {p.name: digest(p) for p in model.iterdir()}
    publisher, consumer = tmp_path / "publisher", tmp_path / "consumer"
    key = cli.run(publisher, testnet, "key", "new", "--no-passphrase")["public_key"]

    first = publish_and_seed(publisher, testnet, model, "v1", processes)
    assert first["seq"] == 1 and first["files"] == 4
    ref = f"{key}/tiny"
    v1 = cli.run(consumer, testnet, "pull", ref)
    assert (v1["version"], v1["fetched_files"], v1["reused_files"]) == ("v1", 4, 0)
    assert {p.name: digest(p) for p in Path(v1["path"]).iterdir() if p.is_file()} == original

    # The author changes one shard of three and publishes v2 from a new process.
    changed = model / "model-00002-of-00003.safetensors"
    data = os.urandom(changed.stat().st_size // 2 // 256 * 256)
    write_safetensors(changed, {"layers.1.weight": ("F32", (len(data) // 256, 64), data)})
    second = publish_and_seed(publisher, testnet, model, "v2", processes)
    assert second["seq"] == 2

    v2 = cli.run(consumer, testnet, "pull", ref)
    assert (v2["version"], v2["seq"], v2["fetched_files"], v2["reused_files"]) == ("v2", 2, 1, 3)
    size = changed.stat().st_size
    assert size <= v2["downloaded_bytes"] <= 1.05 * size, (v2["downloaded_bytes"], size)
    pulled = Path(v2["path"]) / changed.name
    assert digest(pulled) == digest(changed)

    from safetensors.numpy import load_file

    tensors = load_file(str(pulled))
    assert tensors["layers.1.weight"].shape == (len(data) // 256, 64)

    history = cli.run(consumer, testnet, "history", ref)
    assert [(v["seq"], v["version"]) for v in history["versions"]] == [(1, "v1"), (2, "v2")]
    old = cli.run(consumer, testnet, "resolve", f"{ref}@v1")
    assert (old["version"], old["seq"], old["latest_version"]) == ("v1", 1, "v2")
    copy = cli.run(consumer, testnet, "pull", f"{ref}@v1", "--to", tmp_path / "v1-copy")
    assert copy["downloaded_bytes"] == 0  # every v1 file is still in the cache
    assert {p.name: digest(p) for p in (tmp_path / "v1-copy").iterdir() if p.is_file()} == original
    assert cli.run(consumer, testnet, "verify", tmp_path / "v1-copy")["ok"]

    # Publishing the same folder again makes no new version.
    again = cli.run(publisher, testnet, "publish", model, "--name", "tiny", "--version", "v2")
    assert again["unchanged"] and again["seq"] == 2


def test_a_killed_pull_resumes_without_fetching_again(
    testnet: RunningTestnet, tmp_path: Path, processes: list[subprocess.Popen[str]]
) -> None:
    model = tmp_path / "model"
    make_model(model, seed=3, size=24 << 20, shards=1)
    total = sum(p.stat().st_size for p in model.iterdir())
    publisher, consumer = tmp_path / "publisher", tmp_path / "consumer"
    key = cli.run(publisher, testnet, "key", "new", "--no-passphrase")["public_key"]
    publish_and_seed(publisher, testnet, model, "v1", processes, "--upload-limit", "3000000")

    pull = cli.spawn(consumer, testnet, "pull", f"{key}/tiny", stderr=subprocess.PIPE)
    processes.append(pull)
    assert pull.stderr is not None
    done_at_kill = 0
    for line in pull.stderr:
        try:
            event = json.loads(line)
        except ValueError:
            raise AssertionError(f"not JSON on stderr: {line!r}") from None
        if event.get("event") == "download" and event.get("total"):
            done_at_kill = int(event["done"])
            if done_at_kill >= total // 2:
                break
    pull.send_signal(signal.SIGKILL)
    pull.wait(10)
    assert done_at_kill >= total // 2, "the pull finished before it could be interrupted"
    snapshots = list((consumer / "cache" / "models").rglob("snapshots/*"))
    assert not [s for s in snapshots if not s.name.startswith(".")], "a half pull looks finished"
    # What was complete is what is on disk: libtorrent reports a piece done once hashed,
    # which can be before its write leaves the disk queue, and SIGKILL loses that queue.
    on_disk, piece = verified_bytes_on_disk(consumer)
    assert on_disk > 0, "nothing reached the disk before the kill"

    again = cli.run(consumer, testnet, "pull", f"{key}/tiny")
    # No piece that was complete is fetched again; a few in flight at the kill may be.
    assert again["downloaded_bytes"] <= total - on_disk + 4 * piece, (again, on_disk)
    assert cli.run(consumer, testnet, "verify", again["path"])["ok"]


def verified_bytes_on_disk(home: Path, infohash: str | None = None) -> tuple[int, int]:
    """Bytes of the partial download whose pieces hash right, and the piece length.

    `infohash` (hex) names the content torrent; without it the home must hold only one."""
    from hubless.core import bencode

    (torrent_file,) = (home / "cache" / "torrents").glob(f"{infohash or '*'}.torrent")
    info = bencode.decode(torrent_file.read_bytes())[b"info"]  # type: ignore[index]
    piece = info[b"piece length"]
    hashes = info[b"pieces"]
    root = home / "cache" / "partial" / torrent_file.stem / info[b"name"].decode()
    stream = bytearray()
    for entry in info[b"files"]:
        size = entry[b"length"]
        if b"p" in entry.get(b"attr", b""):
            stream += bytes(size)
            continue
        path = root.joinpath(*(part.decode() for part in entry[b"path"]))
        data = path.read_bytes()[:size] if path.exists() else b""
        stream += data + bytes(size - len(data))
    good = sum(
        1
        for i in range(0, len(stream), piece)
        if hashlib.sha1(stream[i : i + piece]).digest()
        == hashes[i // piece * 20 : i // piece * 20 + 20]
    )
    return good * piece, piece


def test_a_model_with_empty_files_pulls_into_a_fresh_home(
    testnet: RunningTestnet, tmp_path: Path, processes: list[subprocess.Popen[str]]
) -> None:
    """An empty file has no piece, and libtorrent may never create it: the pull makes it."""
    model = tmp_path / "model"
    make_model(model, seed=5, size=1 << 20, shards=1)
    (model / "empty.bin").write_bytes(b"")
    (model / "sub").mkdir()
    (model / "sub" / "also-empty.txt").write_bytes(b"")
    publisher = tmp_path / "publisher"
    key = cli.run(publisher, testnet, "key", "new", "--no-passphrase")["public_key"]
    publish_and_seed(publisher, testnet, model, "v1", processes)
    pulled = cli.run(tmp_path / "consumer", testnet, "pull", f"{key}/tiny")
    folder = Path(pulled["path"])
    assert (folder / "empty.bin").read_bytes() == b""
    assert (folder / "sub" / "also-empty.txt").read_bytes() == b""
    assert cli.run(tmp_path / "consumer", testnet, "verify", folder)["ok"]
