"""A pull checks the snapshot it returns and repairs it (spec/PROTOCOL.md §8.4).

Each file of `snapshots/<seq>/` must be present, a regular file of the signed size, and the
same file as a blob that entered the cache verified (a hard link to it); otherwise the pull
rebuilds the snapshot from blobs, downloading what the cache lost. A damaged snapshot is
never returned as verified.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from hubless.lab.modelgen import make_model

from tests.conftest import RunningTestnet, read_line

from . import cli

pytestmark = pytest.mark.e2e

SHARD = "model-00001-of-00002.safetensors"


def blob_of(home: Path, data: bytes) -> Path:
    return home / "cache" / "blobs" / hashlib.sha256(data).hexdigest()


def delete(snapshot: Path, home: Path, good: bytes) -> None:
    (snapshot / SHARD).unlink()


def replace_with_same_size(snapshot: Path, home: Path, good: bytes) -> None:
    (snapshot / SHARD).unlink()
    (snapshot / SHARD).write_bytes(bytes(len(good)))


def delete_with_its_blob(snapshot: Path, home: Path, good: bytes) -> None:
    (snapshot / SHARD).unlink()
    blob_of(home, good).unlink()


def truncate_in_place(snapshot: Path, home: Path, good: bytes) -> None:
    os.chmod(snapshot / SHARD, 0o644)  # a hard link to the blob: this truncates the blob too
    with open(snapshot / SHARD, "r+b") as f:
        f.truncate(len(good) // 2)


def replace_with_a_link(snapshot: Path, home: Path, good: bytes) -> None:
    outside = home.parent / "outside.bin"
    outside.write_bytes(good)
    (snapshot / SHARD).unlink()
    os.symlink(outside, snapshot / SHARD)


@pytest.mark.parametrize(
    ("damage", "fetched"),
    [
        (delete, 0),
        (replace_with_same_size, 0),
        (replace_with_a_link, 0),
        (delete_with_its_blob, 1),
        (truncate_in_place, 1),
    ],
    ids=["deleted", "replaced", "replaced-by-a-link", "deleted-with-its-blob", "truncated"],
)
def test_a_damaged_snapshot_is_repaired_by_the_next_pull(
    testnet: RunningTestnet,
    tmp_path: Path,
    processes: list[subprocess.Popen[str]],
    damage: Callable[[Path, Path, bytes], None],
    fetched: int,
) -> None:
    model = tmp_path / "model"
    make_model(model, seed=21, size=2 << 20, shards=2)
    good = (model / SHARD).read_bytes()
    publisher, consumer = tmp_path / "publisher", tmp_path / "consumer"
    key = cli.run(publisher, testnet, "key", "new", "--no-passphrase")["public_key"]
    seeder = cli.spawn(
        publisher, testnet, "publish", model, "--name", "snap", "--version", "v1", "--seed"
    )
    processes.append(seeder)
    read_line(seeder, 120)
    ref = f"{key}/snap"
    first = cli.run(consumer, testnet, "pull", ref)
    snapshot = Path(first["path"])
    damage(snapshot, consumer, good)

    again = cli.run(consumer, testnet, "pull", ref)
    assert again["path"] == str(snapshot)
    assert not (snapshot / SHARD).is_symlink()
    assert (snapshot / SHARD).exists() and (snapshot / SHARD).read_bytes() == good
    assert cli.run(consumer, testnet, "verify", snapshot)["ok"]
    assert again["fetched_files"] == fetched
    assert again["repaired_files"] == [SHARD]
    blob = blob_of(consumer, good)
    assert os.stat(snapshot / SHARD).st_ino == os.stat(blob).st_ino
    assert not [p for p in snapshot.parent.iterdir() if p.name.startswith(".")]
