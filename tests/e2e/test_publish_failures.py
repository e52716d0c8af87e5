"""A publish that fails or is killed part way (spec/PROTOCOL.md §8.3 "Order and failures").

Every local step (copying into the cache, signing, remembering, the snapshot) comes before
the record is put, so a full disk, a file changed while hashing or a kill -9 leaves no record
out that nothing serves, no signed manifest that was never recorded, and no label burned:
the next publish completes or redoes it. Leftover temporary files of a killed process are
removed by the next command that opens the home.
"""

from __future__ import annotations

import json
import sqlite3
import subprocess
from pathlib import Path

import pytest
from hubless.lab.modelgen import make_model

from tests.conftest import RunningTestnet

from . import cli

pytestmark = pytest.mark.e2e

KILL_AT_REMEMBER = """
import os, signal
import hubless.store.state as state
state.State.remember = lambda self, model: os.kill(os.getpid(), signal.SIGKILL)
"""
KILL_AFTER_A_COPY = """
import os, signal
import hubless.store.cache as cache
real = cache.copy_file
def copy_then_die(source, target):
    real(source, target)
    os.kill(os.getpid(), signal.SIGKILL)
cache.copy_file = copy_then_die
"""
DISK_FULL_ON_SECOND_COPY = """
import errno
import hubless.store.cache as cache
real = cache.copy_file
calls = []
def copy(source, target):
    calls.append(source)
    if len(calls) == 2:
        raise OSError(errno.ENOSPC, "No space left on device")
    real(source, target)
cache.copy_file = copy
"""
EDIT_AFTER_HASHING = """
from pathlib import Path
import hubless.net.torrents as torrents
real = torrents.create_content_torrent
def hash_then_edit(folder, relpaths, **kw):
    made = real(folder, relpaths, **kw)
    Path(folder, "config.json").write_text('{"edited": true}')
    return made
torrents.create_content_torrent = hash_then_edit
"""


def no_record(testnet: RunningTestnet, home: Path, ref: str) -> bool:
    """Whether a fresh client finds no record for `ref` in the DHT."""
    code, err = cli.run_failing(home, testnet, "resolve", ref)
    return code == 1 and "no DHT record" in err


def signed_manifests(home: Path) -> list[str]:
    folder = home / "cache" / "manifests"
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def seeded_manifests(home: Path) -> list[int]:
    db = sqlite3.connect(home / "data" / "state.db")
    try:
        return [r[0] for r in db.execute("SELECT seq FROM seeds WHERE kind='manifest'")]
    finally:
        db.close()


@pytest.fixture()
def publisher(testnet: RunningTestnet, tmp_path: Path) -> tuple[Path, str, Path]:
    """(home, reference, model folder) of a publisher with a key and nothing published."""
    home = tmp_path / "publisher"
    key = cli.run(home, testnet, "key", "new", "--no-passphrase")["public_key"]
    model = tmp_path / "model"
    make_model(model, seed=12, size=3 << 20, shards=2)
    return home, f"{key}/failing", model


def publish_args(model: Path, version: str = "v1") -> tuple[str | Path, ...]:
    return ("publish", model, "--name", "failing", "--version", version)


def pull_from_a_seeding_publisher(
    testnet: RunningTestnet,
    tmp_path: Path,
    home: Path,
    ref: str,
    processes: list[subprocess.Popen[str]],
) -> dict[str, object]:
    seeder = cli.spawn(home, testnet, "seed")
    processes.append(seeder)
    assert seeder.stdout is not None
    consumer = tmp_path / "consumer"
    pulled: dict[str, object] = cli.run(consumer, testnet, "pull", ref)
    assert cli.run(consumer, testnet, "verify", str(pulled["path"]))["ok"]
    return pulled


def test_a_full_disk_fails_before_the_record_is_out(
    testnet: RunningTestnet,
    tmp_path: Path,
    small_fs: object,
    processes: list[subprocess.Popen[str]],
) -> None:
    mount = small_fs(2 << 20)  # type: ignore[operator]
    home = mount / "home"
    key = cli.run(home, testnet, "key", "new", "--no-passphrase")["public_key"]
    ref = f"{key}/failing"
    model = tmp_path / "model"
    make_model(model, seed=13, size=3 << 20, shards=2)
    code, err = cli.run_failing(home, testnet, *publish_args(model))
    error = json.loads(err.strip().splitlines()[-1])
    assert code == 1 and "needs" in error["error"] and "free" in error["error"], err
    assert no_record(testnet, tmp_path / "fresh", ref)
    assert signed_manifests(home) == []
    # Room again: the same label publishes, and what it names is served.
    subprocess.run(["mount", "-o", "remount,size=64m", str(mount)], check=True)
    done = cli.run(home, testnet, *publish_args(model))
    assert (done["seq"], done["version"]) == (1, "v1")
    pulled = pull_from_a_seeding_publisher(testnet, tmp_path, home, ref, processes)
    assert pulled["version"] == "v1"


@pytest.mark.parametrize(
    ("patch", "expected"),
    [
        (DISK_FULL_ON_SECOND_COPY, "No space left on device"),
        (EDIT_AFTER_HASHING, "does not match the manifest"),
    ],
    ids=["disk-full-during-the-copy", "file-edited-after-hashing"],
)
def test_a_local_failure_leaves_nothing_out_and_no_label_burned(
    testnet: RunningTestnet,
    tmp_path: Path,
    publisher: tuple[Path, str, Path],
    processes: list[subprocess.Popen[str]],
    patch: str,
    expected: str,
) -> None:
    home, ref, model = publisher
    done = cli.run_patched(home, testnet, patch, *publish_args(model))
    assert done.returncode == 1 and "Traceback" not in done.stderr, done.stderr
    assert expected in json.loads(done.stderr.strip().splitlines()[-1])["error"]
    assert no_record(testnet, tmp_path / "fresh", ref)
    assert signed_manifests(home) == []
    again = cli.run(home, testnet, *publish_args(model))
    assert (again["seq"], again["version"]) == (1, "v1")
    pull_from_a_seeding_publisher(testnet, tmp_path, home, ref, processes)


def test_a_publish_killed_at_recording_leaves_nothing_signed_to_serve(
    testnet: RunningTestnet,
    tmp_path: Path,
    publisher: tuple[Path, str, Path],
    processes: list[subprocess.Popen[str]],
) -> None:
    home, ref, model = publisher
    done = cli.run_patched(home, testnet, KILL_AT_REMEMBER, *publish_args(model))
    assert done.returncode == -9
    assert signed_manifests(home) == [], "a signed, unrecorded manifest was kept"
    assert seeded_manifests(home) == [], "seed would serve a manifest never recorded"
    assert no_record(testnet, tmp_path / "fresh", ref)
    # The author changes the folder and publishes the same label: seq 1, no equivocation.
    (model / "config.json").write_text('{"changed": true}\n')
    again = cli.run(home, testnet, *publish_args(model))
    assert (again["seq"], again["version"]) == (1, "v1")
    pulled = pull_from_a_seeding_publisher(testnet, tmp_path, home, ref, processes)
    assert Path(str(pulled["path"]), "config.json").read_text() == '{"changed": true}\n'


def test_a_publish_killed_while_copying_leaves_no_temp_blob(
    testnet: RunningTestnet, tmp_path: Path, publisher: tuple[Path, str, Path]
) -> None:
    home, _, model = publisher
    done = cli.run_patched(home, testnet, KILL_AFTER_A_COPY, *publish_args(model))
    assert done.returncode == -9
    cli.run(home, testnet, "key", "list")  # any command that opens the home cleans up
    leftovers = [p for p in (home / "cache").rglob("*") if p.name.startswith(".")]
    assert leftovers == []


def test_a_pull_killed_while_copying_to_a_folder_is_cleaned_by_the_next(
    testnet: RunningTestnet, tmp_path: Path, publisher: tuple[Path, str, Path]
) -> None:
    home, ref, model = publisher
    cli.run(home, testnet, *publish_args(model))
    out = tmp_path / "out"
    done = cli.run_patched(home, testnet, KILL_AFTER_A_COPY, "pull", ref, "--to", out)
    assert done.returncode == -9
    assert not out.exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".out.")], "no leftover?"
    cli.run(home, testnet, "pull", ref, "--to", out)
    assert cli.run(home, testnet, "verify", out)["ok"]
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".out.")] == []


def test_a_leftover_signed_manifest_is_never_served(
    testnet: RunningTestnet, tmp_path: Path, publisher: tuple[Path, str, Path]
) -> None:
    """A home written by an older release: a manifest seed row above the recorded seq."""
    home, _, model = publisher
    cli.run(home, testnet, *publish_args(model))
    db = sqlite3.connect(home / "data" / "state.db")
    with db:
        (row,) = db.execute("SELECT * FROM seeds WHERE kind='manifest'").fetchall()
        forged = (b"\0" + row[0][1:], row[1], row[2], row[3], row[4] + 1, *row[5:])
        db.execute("INSERT INTO seeds VALUES (?, ?, ?, ?, ?, ?, ?, ?)", forged)
    db.close()
    assert sorted(seeded_manifests(home)) == [1, 2]
    lines = cli.seed_until(home, testnet, "never recorded", timeout=60)
    assert any("not serving" in line and "never recorded" in line for line in lines), lines
    assert seeded_manifests(home) == [1]
