"""Bounded pulls (spec/PROTOCOL.md §8.4): free space is checked before downloading, and a
pull whose every peer sends bad data stops with a clear error instead of waiting an hour."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from hubless.lab.modelgen import make_model

from tests.conftest import RunningTestnet, read_line

from . import cli
from .fs import changes, listing

pytestmark = pytest.mark.e2e


@pytest.fixture()
def seeded(testnet: RunningTestnet, tmp_path: Path, processes: list[subprocess.Popen[str]]) -> str:
    """A 3 MiB model published and seeded by its publisher; returns its reference."""
    model = tmp_path / "model"
    make_model(model, seed=41, size=3 << 20, shards=2)
    publisher = tmp_path / "publisher"
    key = cli.run(publisher, testnet, "key", "new", "--no-passphrase")["public_key"]
    seeder = cli.spawn(
        publisher, testnet, "publish", model, "--name", "roomy", "--version", "v1", "--seed"
    )
    processes.append(seeder)
    read_line(seeder, 120)
    return f"{key}/roomy"


def failing_pull(testnet: RunningTestnet, home: Path, *args: str | Path, within: float) -> str:
    """The error of a pull that must fail; `within` (s) is a hang guard."""
    code, err = cli.run_failing(home, testnet, "pull", *args, timeout=within)
    assert code == 1, err
    assert "Traceback" not in err
    return str(json.loads(err.strip().splitlines()[-1])["error"])


def test_a_pull_into_a_home_without_room_fails_before_downloading(
    testnet: RunningTestnet, tmp_path: Path, seeded: str, small_fs: object
) -> None:
    home = small_fs(2 << 20) / "home"  # type: ignore[operator]
    others = [home.parent, tmp_path / "publisher"]  # the seeder writes its own home
    before = listing(tmp_path, skip=others)
    error = failing_pull(testnet, home, seeded, within=60)
    assert "needs" in error and "free" in error, error
    assert not list((home / "cache" / "partial").iterdir())
    assert not list((home / "cache" / "blobs").iterdir())
    assert changes(before, listing(tmp_path, skip=others)) == []


def test_a_pull_to_a_folder_without_room_fails_before_downloading(
    testnet: RunningTestnet, tmp_path: Path, seeded: str, small_fs: object
) -> None:
    home = tmp_path / "consumer"
    out = small_fs(1 << 20) / "out"  # type: ignore[operator]
    error = failing_pull(testnet, home, seeded, "--to", out, within=60)
    assert "needs" in error and "free" in error and str(out) in error, error
    assert not out.exists()
    assert not list((home / "cache" / "blobs").iterdir())


def test_a_pull_whose_every_peer_sends_bad_data_stops(
    testnet: RunningTestnet, tmp_path: Path, attacker: object
) -> None:
    ref = attacker("bad-pieces")  # type: ignore[operator]
    home = tmp_path / "consumer"
    error = failing_pull(testnet, home, ref, within=120)
    assert "failed their hash check" in error and "victim-model" in error, error
    # Stopped by the bad-data rule once libtorrent had dropped every peer, not by a timeout.
    assert "every peer sent bad data" in error, error
    assert not list((home / "cache" / "blobs").iterdir())
