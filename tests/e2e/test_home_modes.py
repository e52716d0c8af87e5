"""The home on a shared machine (spec/PROTOCOL.md §8.4, §10 local attackers).

Like ssh with its keys, hubless refuses to start on a home whose data or keys folder another
user could write (group- or world-writable, or owned by someone else), or whose path another
user could rename; it warns when only the cache is writable by others. And whatever leaves
the cache for a `--to` folder is hashed again: a blob altered by someone who could write
the cache is fetched again instead of handed over.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
from hubless.lab.modelgen import make_model

from tests.conftest import RunningTestnet, read_line

from . import cli

pytestmark = pytest.mark.e2e


@pytest.fixture()
def home(testnet: RunningTestnet, tmp_path: Path) -> Path:
    home = tmp_path / "shared" / "home"
    home.parent.mkdir()
    cli.run(home, testnet, "key", "new", "--no-passphrase")
    return home


@pytest.mark.parametrize(
    ("folder", "change", "reason"),
    [
        ("", lambda p: os.chmod(p, 0o777), "writable by other users"),
        ("..", lambda p: os.chmod(p, 0o777), "writable by other users"),
        ("data", lambda p: os.chmod(p, 0o770), "writable by other users"),
        ("data/keys", lambda p: os.chmod(p, 0o757), "writable by other users"),
        ("data", lambda p: os.chown(p, 4242, -1), "owned by another user"),
    ],
    ids=["home-777", "parent-777", "data-770", "keys-757", "data-owned-by-other"],
)
def test_a_home_others_can_write_is_refused(
    testnet: RunningTestnet, home: Path, folder: str, change: object, reason: str
) -> None:
    target = (home / folder).resolve()
    change(target)  # type: ignore[operator]
    code, err = cli.run_failing(home, testnet, "key", "list")
    assert code == 1, err
    error = json.loads(err.strip().splitlines()[-1])
    assert reason in error["error"] and str(target) in error["error"], error
    assert "chmod" in error["hint"] or "chown" in error["hint"]


def test_a_sticky_world_writable_parent_is_accepted(testnet: RunningTestnet, home: Path) -> None:
    os.chmod(home.parent, 0o1777)  # like /tmp: others cannot rename what they do not own
    assert cli.run(home, testnet, "key", "list")


def test_a_cache_others_can_write_is_used_with_a_warning(
    testnet: RunningTestnet, home: Path
) -> None:
    os.chmod(home / "cache", 0o777)
    done = subprocess.run(
        cli.command(home, testnet, "key", "list"), capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    assert "warning" in done.stderr and str(home / "cache") in done.stderr


def test_an_altered_blob_is_fetched_again_not_copied_to_the_target(
    testnet: RunningTestnet, tmp_path: Path, processes: list[subprocess.Popen[str]]
) -> None:
    model = tmp_path / "model"
    make_model(model, seed=31, size=1 << 20, shards=1)
    publisher, consumer = tmp_path / "publisher", tmp_path / "consumer"
    key = cli.run(publisher, testnet, "key", "new", "--no-passphrase")["public_key"]
    seeder = cli.spawn(
        publisher, testnet, "publish", model, "--name", "poison", "--version", "v1", "--seed"
    )
    processes.append(seeder)
    read_line(seeder, 120)
    ref = f"{key}/poison"
    cli.run(consumer, testnet, "pull", ref)
    # Someone who can write the cache swaps a blob for other bytes of the same size.
    shard = next(p for p in model.iterdir() if p.suffix == ".safetensors")
    (blob,) = [
        p
        for p in (consumer / "cache" / "blobs").iterdir()
        if p.stat().st_size == shard.stat().st_size
    ]
    os.chmod(blob, 0o644)
    blob.write_bytes(bytes(shard.stat().st_size))
    out = tmp_path / "out"
    done = subprocess.run(
        cli.command(consumer, testnet, "pull", ref, "--to", out),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert (out / shard.name).read_bytes() == shard.read_bytes()
    assert "altered" in done.stderr
    assert cli.run(consumer, testnet, "verify", out)["ok"]
