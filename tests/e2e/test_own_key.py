"""A record under your own key that this machine did not sign (spec/PROTOCOL.md §8.5, §10).

That is the one signal that a publisher key has leaked. The publisher's republishing must
not overwrite it: it stops republishing that model, says loudly that the key may have
leaked, and a one-shot `hubless seed --key NAME --once` exits 3. A record with a newer seq
(the key used on another machine) is left alone with a warning, as before.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
from hubless.lab.modelgen import make_model

from tests.conftest import RunningTestnet, read_line

from . import cli

pytestmark = pytest.mark.e2e

# Holds the leaked seed: puts a record under the publisher's key, then answers `check` with
# whether the DHT still serves that exact record.
THIEF = """
import hashlib, json, sys, time
from hubless.core.bep44 import verify_item
from hubless.core.keys import SigningKey
from hubless.core.record import Record, encode_record
from hubless.config import parse_endpoints
from hubless.net.profile import NetProfile
from hubless.net.session import open_session

bootstrap, state, seed, name, seq = sys.argv[1:6]
key = SigningKey(bytes.fromhex(seed))
record = Record(int(seq), "v" + seq, hashlib.sha1(b"evil").digest(),
                hashlib.sha256(b"evil").digest(), int(time.time()))
payload = encode_record(record)
with open_session(NetProfile.local(parse_endpoints(bootstrap, "bootstrap")), state) as session:
    assert session.dht_put(key, name.encode(), payload, 30.0) > 0
    print("ready", flush=True)
    sys.stdin.readline()
    items = session.dht_get(key.public, name.encode(), 10.0)
    payloads = {verify_item(i, key.public, name.encode()).payload for i in items}
    print(json.dumps({"still_served": payload in payloads}), flush=True)
"""


@pytest.fixture()
def published(testnet: RunningTestnet, tmp_path: Path) -> tuple[Path, str]:
    """A publisher home that published v1 and v2 of `own`; returns (home, leaked seed hex)."""
    home = tmp_path / "publisher"
    cli.run(home, testnet, "key", "new", "--no-passphrase")
    model = tmp_path / "model"
    for version, seed in (("v1", 61), ("v2", 62)):
        make_model(model, seed=seed, size=1 << 20, shards=1)
        cli.run(home, testnet, "publish", model, "--name", "own", "--version", version)
    seed_hex = json.loads((home / "data" / "keys" / "default.key").read_text())["seed"]
    return home, seed_hex


def still_served(thief: subprocess.Popen[str]) -> bool:
    assert thief.stdin is not None
    thief.stdin.write("check\n")
    thief.stdin.flush()
    return bool(json.loads(read_line(thief, 60))["still_served"])


@pytest.fixture()
def spawn_thief(testnet: RunningTestnet, tmp_path: Path) -> Iterator[object]:
    """`spawn_thief(seed_hex, seq)`: a process that put a forged record of seq `seq`."""
    started: list[subprocess.Popen[str]] = []

    def spawn(seed_hex: str, seq: int) -> subprocess.Popen[str]:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-c",
                textwrap.dedent(THIEF),
                testnet.bootstrap_arg,
                str(tmp_path / f"thief-{seq}"),
                seed_hex,
                "own",
                str(seq),
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        started.append(proc)
        assert read_line(proc, 60).strip() == "ready"
        return proc

    yield spawn
    for proc in started:
        proc.kill()
        proc.wait()


@pytest.mark.parametrize("seq", [2, 1], ids=["same-seq", "older-seq"])
def test_a_forged_record_is_reported_and_not_overwritten(
    testnet: RunningTestnet, published: tuple[Path, str], spawn_thief: object, seq: int
) -> None:
    home, seed_hex = published
    thief = spawn_thief(seed_hex, seq)  # type: ignore[operator]
    done = subprocess.run(
        cli.command(home, testnet, "seed", "--key", "default", "--once"),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 3, done.stderr
    error = json.loads(done.stderr.strip().splitlines()[-1])
    assert "own" in error["error"] and "did not sign" in error["error"], error
    assert "leaked" in error["hint"]
    assert still_served(thief), "republishing overwrote the forged record"


def test_a_newer_record_from_elsewhere_is_left_alone_with_a_warning(
    testnet: RunningTestnet, published: tuple[Path, str], spawn_thief: object
) -> None:
    home, seed_hex = published
    thief = spawn_thief(seed_hex, 7)  # type: ignore[operator]
    done = subprocess.run(
        cli.command(home, testnet, "seed", "--key", "default", "--once"),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "newer" in done.stderr and "leaked" in done.stderr
    assert still_served(thief)


def test_the_seeding_publisher_does_not_overwrite_a_forged_record(
    testnet: RunningTestnet, published: tuple[Path, str], spawn_thief: object
) -> None:
    home, seed_hex = published
    thief = spawn_thief(seed_hex, 2)  # type: ignore[operator]
    # A short interval: the daemon's first signing round comes within a tenth of it.
    lines = cli.seed_until(
        home, testnet, "republished", "--key", "default", "--republish-interval", "20"
    )
    assert any("leaked" in line and "own" in line for line in lines), lines
    assert still_served(thief), "republishing overwrote the forged record"


def test_publishing_over_a_forged_record_stops_with_the_leak(
    testnet: RunningTestnet, tmp_path: Path, published: tuple[Path, str], spawn_thief: object
) -> None:
    home, seed_hex = published
    thief = spawn_thief(seed_hex, 2)  # type: ignore[operator]
    model = tmp_path / "model"
    make_model(model, seed=63, size=1 << 20, shards=1)
    code, err = cli.run_failing(home, testnet, "publish", model, "--name", "own", "--version", "v3")
    assert code == 3, err
    assert "did not sign" in json.loads(err.strip().splitlines()[-1])["error"]
    assert still_served(thief)
