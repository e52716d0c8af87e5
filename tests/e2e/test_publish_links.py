"""Symbolic links and special files in a folder to publish (spec/PROTOCOL.md §8.3 step 1).

A link that leaves the folder, points at a folder, dangles, or a FIFO: `publish` refuses the
folder with a usage error naming each entry, before any passphrase, signature or put, and
never says "published" for a folder that would lose files. A link to a file inside the
folder is that file. `--follow-links` publishes what links point to wherever it is (a
Hugging Face cache snapshot is made of links into `../../blobs`).
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pytest

from tests.conftest import RunningTestnet

from . import cli
from .fs import changes, listing

pytestmark = pytest.mark.e2e


def model_with(folder: Path) -> Path:
    folder.mkdir(parents=True)
    (folder / "config.json").write_text('{"layers": 2}\n')
    (folder / "model.safetensors").write_bytes(os.urandom(100_000))
    return folder


def publish_refused(
    home: Path, testnet: RunningTestnet, folder: Path, *extra: str
) -> tuple[int, str]:
    """Run a publish that must fail; check it put nothing and left no signed manifest."""
    outside = listing(home.parent, skip=[home])
    code, err = cli.run_failing(
        home, testnet, "publish", folder, "--name", "linked", "--version", "v1", *extra
    )
    assert changes(outside, listing(home.parent, skip=[home])) == []
    manifests = home / "cache" / "manifests"
    assert not manifests.exists() or not any(manifests.iterdir()), "a manifest was signed"
    error = json.loads(err.strip().splitlines()[-1])
    return code, f"{error['error']}\nhint: {error.get('hint', '')}"


@pytest.fixture()
def home(tmp_path: Path, testnet: RunningTestnet) -> Path:
    home = tmp_path / "home"
    cli.run(home, testnet, "key", "new", "--no-passphrase")
    return home


@pytest.mark.parametrize(
    ("make", "named", "reason"),
    [
        (lambda m, s: os.symlink(s / "id_ed25519", m / "notes.txt"), "notes.txt", "outside"),
        (lambda m, s: os.symlink(s, m / "tokenizer"), "tokenizer", "folder"),
        (lambda m, s: os.symlink(m / "gone.bin", m / "weights.bin"), "weights.bin", "dangling"),
        (lambda m, s: os.mkfifo(m / "pipe"), "pipe", "not a regular file"),
        (lambda m, s: os.symlink("loop", m / "loop"), "loop", "loop"),
    ],
    ids=["file-outside", "folder-outside", "dangling", "fifo", "self-loop"],
)
def test_links_and_special_files_are_refused_by_name(
    testnet: RunningTestnet, tmp_path: Path, home: Path, make: object, named: str, reason: str
) -> None:
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    (secrets / "id_ed25519").write_text("PRIVATE KEY\n")
    model = model_with(tmp_path / "model")
    make(model, secrets)  # type: ignore[operator]
    code, error = publish_refused(home, testnet, model)
    assert code == 2, error
    assert named in error and reason in error, error


def test_links_to_files_inside_the_folder_are_published_as_those_files(
    testnet: RunningTestnet, tmp_path: Path, home: Path
) -> None:
    model = model_with(tmp_path / "model")
    (model / "sub").mkdir()
    os.symlink("../model.safetensors", model / "sub" / "alias.safetensors")
    key = cli.run(home, testnet, "key", "show")["public_key"]
    done = cli.run(home, testnet, "publish", model, "--name", "linked", "--version", "v1")
    assert done["files"] == 3
    out = cli.run(home, testnet, "pull", f"{key}/linked", "--to", tmp_path / "out")
    alias = Path(out["path"]) / "sub" / "alias.safetensors"
    assert not alias.is_symlink()
    assert alias.read_bytes() == (model / "model.safetensors").read_bytes()


def test_a_link_inside_to_a_skipped_folder_is_refused(
    testnet: RunningTestnet, tmp_path: Path, home: Path
) -> None:
    model = model_with(tmp_path / "model")
    (model / ".git").mkdir()
    (model / ".git" / "config").write_text("[remote] url = secret\n")
    os.symlink(".git/config", model / "git-config")
    code, error = publish_refused(home, testnet, model)
    assert code == 2 and "git-config" in error


def hf_snapshot(root: Path) -> Path:
    """A Hugging Face cache entry: blobs by hash, a snapshot made of relative links."""
    blobs = root / "blobs"
    snapshot = root / "snapshots" / "0123abcd"
    blobs.mkdir(parents=True)
    (snapshot / "tokenizer").mkdir(parents=True)
    files = {
        "config.json": b'{"hidden": 8}\n',
        "model.safetensors": os.urandom(64_000),
        "tokenizer/vocab.txt": b"a\nb\n",
    }
    for rel, data in files.items():
        blob = blobs / hashlib.sha256(data).hexdigest()
        blob.write_bytes(data)
        link = snapshot / rel
        os.symlink(os.path.relpath(blob, link.parent), link)
    return snapshot


def test_a_hugging_face_snapshot_needs_follow_links(
    testnet: RunningTestnet, tmp_path: Path, home: Path
) -> None:
    snapshot = hf_snapshot(tmp_path / "hf" / "models--org--tiny")
    code, error = publish_refused(home, testnet, snapshot)
    assert code == 2 and "config.json" in error and "--follow-links" in error
    key = cli.run(home, testnet, "key", "show")["public_key"]
    done = cli.run(
        home, testnet, "publish", snapshot, "--name", "linked", "--version", "v1", "--follow-links"
    )
    assert done["files"] == 3
    out = Path(cli.run(home, testnet, "pull", f"{key}/linked", "--to", tmp_path / "out")["path"])
    for rel in ("config.json", "model.safetensors", "tokenizer/vocab.txt"):
        assert not (out / rel).is_symlink()
        assert (out / rel).read_bytes() == (snapshot / rel).read_bytes()


def test_follow_links_still_refuses_dangling_links_and_loops(
    testnet: RunningTestnet, tmp_path: Path, home: Path
) -> None:
    model = model_with(tmp_path / "model")
    os.symlink(".", model / "up")  # a folder link back into itself: a cycle
    code, error = publish_refused(home, testnet, model, "--follow-links")
    assert code == 2 and "up" in error and "loop" in error
    os.unlink(model / "up")
    os.symlink(tmp_path / "nowhere", model / "lost")
    code, error = publish_refused(home, testnet, model, "--follow-links")
    assert code == 2 and "lost" in error and "dangling" in error
