"""A folder aria2c downloaded becomes a hubless version: verify --ref, import, then serve it.

The publisher seeds and an exported .torrent goes to aria2c (pinned to loopback as in
test_interop). hubless checks aria2c's folder against the network's signed manifest (aria2's
`.pad/` folder is reported, not failed), imports it into a third home, and once the
publisher has stopped, that home's `hubless seed` serves a fresh consumer.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
from hubless.lab.modelgen import make_model

from tests.conftest import RunningTestnet, read_line, stop_process

from . import cli
from .test_interop import ARIA2C, aria2c, files_under

pytestmark = pytest.mark.e2e


@pytest.mark.skipif(ARIA2C is None, reason="aria2c is not installed (apt-get install aria2)")
def test_a_folder_from_aria2c_verifies_imports_and_is_served(
    testnet: RunningTestnet, tmp_path: Path, processes: list[subprocess.Popen[str]]
) -> None:
    model = tmp_path / "model"
    make_model(model, seed=41, size=3 << 20, shards=3)
    publisher, importer, consumer = (tmp_path / n for n in ("publisher", "importer", "consumer"))
    key = cli.run(publisher, testnet, "key", "new", "--no-passphrase")["public_key"]
    seeding = cli.spawn(
        publisher, testnet, "publish", model, "--name", "adopt", "--version", "v1", "--seed"
    )
    processes.append(seeding)
    json.loads(read_line(seeding, 120))
    ref = f"{key}/adopt"
    torrent = tmp_path / "adopt.torrent"
    cli.run(importer, testnet, "export", ref, "--torrent", torrent)

    root = tmp_path / "aria2"
    for sub in ("downloads", "state", "home"):
        (root / sub).mkdir(parents=True)
    done = subprocess.run(
        aria2c(torrent, root / "downloads", root / "state"),
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "HOME": str(root / "home")},
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    folder = root / "downloads" / "adopt"
    pads = [p for p in files_under(folder) if p.startswith(".pad/")]

    report = cli.run(importer, testnet, "verify", folder, "--ref", ref)
    assert report["ok"] is True and report["ok_files"] == 4
    assert report["pads"] == pads and report["extra"] == []
    code, err = cli.run_failing(importer, testnet, "verify", folder)  # no .hubless/manifest
    assert code == 2 and ".hubless/manifest" in err, err

    imported = cli.run(importer, testnet, "import", folder, f"{ref}@v1")
    assert imported["version"] == "v1" and imported["pads"] == pads
    listed = cli.run(importer, testnet, "list")
    assert [v["version"] for v in listed["models"][0]["versions"]] == ["v1"]

    # The publisher goes away; the importer alone serves the version now.
    stop_process(seeding)
    server = cli.spawn(importer, testnet, "seed")
    processes.append(server)
    pulled = cli.run(consumer, testnet, "pull", ref, timeout=120)
    assert pulled["fetched_files"] == 4
    got = files_under(Path(pulled["path"]))
    assert {p: d for p, d in got.items() if not p.startswith(".hubless/")} == files_under(model)


@pytest.mark.slow  # 25 s; test_interop and the aria2c import test cover aria2c both ways
@pytest.mark.skipif(ARIA2C is None, reason="aria2c is not installed (apt-get install aria2)")
def test_aria2c_seeding_an_export_serves_a_hubless_consumer(
    testnet: RunningTestnet, tmp_path: Path, processes: list[subprocess.Popen[str]]
) -> None:
    """export writes the manifest torrent too; aria2c seeding both replaces the publisher."""
    model = tmp_path / "model"
    make_model(model, seed=42, size=2 << 20, shards=2)
    publisher, exporter, consumer = (tmp_path / n for n in ("publisher", "exporter", "consumer"))
    key = cli.run(publisher, testnet, "key", "new", "--no-passphrase")["public_key"]
    seeding = cli.spawn(
        publisher, testnet, "publish", model, "--name", "other-way", "--version", "v1", "--seed"
    )
    processes.append(seeding)
    json.loads(read_line(seeding, 120))
    ref = f"{key}/other-way"
    export = tmp_path / "export"
    export.mkdir()
    info = cli.run(exporter, testnet, "export", ref, "--torrent", export / "m.torrent")
    assert Path(info["manifest_torrent"]) == export / "m.manifest.torrent"
    assert Path(info["manifest_file"]).parent == export and len(info["seed"]) == 2

    # aria2c fetches the content, then two aria2c seed the content and the manifest.
    def run_aria2(name: str, target: Path, folder: Path, *extra: str) -> subprocess.Popen[str]:
        root = tmp_path / f"aria2-{name}"
        for sub in ("state", "home"):
            (root / sub).mkdir(parents=True, exist_ok=True)
        folder.mkdir(parents=True, exist_ok=True)
        proc = subprocess.Popen(
            aria2c(target, folder, root / "state", *extra),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env={**os.environ, "HOME": str(root / "home")},
        )
        processes.append(proc)
        return proc

    fetch = run_aria2("fetch", export / "m.torrent", tmp_path / "content")
    out, _ = fetch.communicate(timeout=60)
    assert fetch.returncode == 0, out
    forever = (
        "--seed-time=60",
        "--seed-ratio=0.0",
        "--check-integrity=true",
        "--bt-stop-timeout=0",
    )
    run_aria2("content", export / "m.torrent", tmp_path / "content", *forever)
    run_aria2("manifest", export / "m.manifest.torrent", export, *forever)
    stop_process(seeding)  # from now on only aria2c serves the model

    pulled = cli.run(consumer, testnet, "pull", ref, timeout=150)
    assert pulled["fetched_files"] == 3 and pulled["stale"] is False
    got = files_under(Path(pulled["path"]))
    assert {p: d for p, d in got.items() if not p.startswith(".hubless/")} == files_under(model)
