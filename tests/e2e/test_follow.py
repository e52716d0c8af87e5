"""Following a publisher across processes on a loopback testnet.

1. The publisher publishes model A and model B and keeps seeding; a consumer follows the
   key (no name), lists the catalogue from the DHT and searches it by tag and description.
2. A mirror (the Python API in its own process, one poll round per line on its stdin, as
   the daemon will drive it) polls, fetches and verifies A v1, then catches up on v2 and v3,
   published while it was not polling, in order.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
from hubless.lab.modelgen import make_model

from tests.conftest import RunningTestnet, read_line

from . import cli

pytestmark = pytest.mark.e2e

MIRROR = """
import json, sys, time
import hubless
from hubless.services.poll import PollPolicy, deliver, fetch_version
client = hubless._client()
print(json.dumps(client.follow(sys.argv[1]).summary()), flush=True)
policy = PollPolicy(interval=1.0, jitter=0.0)
clock = time.time()
for line in sys.stdin:
    clock += 10  # every follow is due again
    found = []
    for new in client.poll_follows(clock, policy=policy):
        fetched = fetch_version(client.ctx, new)
        deliver(client.ctx, new)
        found.append({**new.summary(), "path": str(fetched.path),
                      "downloaded": fetched.downloaded_bytes})
    print(json.dumps(found), flush=True)
"""


def publish(folder: Path, name: str, version: str, *extra: str) -> list[str]:
    return ["publish", str(folder), "--name", name, "--version", version, *extra]


def test_follow_a_key_then_list_its_models_and_search_them(
    testnet: RunningTestnet, tmp_path: Path, processes: list[subprocess.Popen[str]]
) -> None:
    publisher, consumer = tmp_path / "publisher", tmp_path / "consumer"
    key = cli.run(publisher, testnet, "key", "new", "--no-passphrase")["public_key"]
    chat, speech = tmp_path / "chat", tmp_path / "speech"
    make_model(chat, seed=11, size=1 << 20, shards=1)
    make_model(speech, seed=12, size=1 << 20, shards=1)
    notes = ("--notes", "A small chat model", "--tag", "chat", "--license", "mit")
    cli.run(publisher, testnet, *publish(chat, "chat", "v1", *notes))
    speech_notes = ("--notes", "Speech to text for meetings", "--tag", "audio", "--seed")
    seeding = cli.spawn(publisher, testnet, *publish(speech, "speech", "v1", *speech_notes))
    processes.append(seeding)  # serves both models from now on
    assert json.loads(read_line(seeding, 120))["seq"] == 1

    followed = cli.run(consumer, testnet, "follow", key)
    assert followed["models"] == ["chat", "speech"] and followed["error"] is None
    listed = cli.run(consumer, testnet, "following")
    assert [p["publisher"] for p in listed["publishers"]] == [key]
    assert [(m["name"], m["via_index"]) for m in listed["models"]] == [
        ("chat", True),
        ("speech", True),
    ]

    catalogue = cli.run(consumer, testnet, "models", key)
    assert catalogue["publisher"] == key and catalogue["index_seq"] >= 2  # seed puts it again
    rows = {m["name"]: m for m in catalogue["models"]}
    assert [(m["version"], m["seq"], m["error"], m["stale"]) for m in rows.values()] == [
        ("v1", 1, None, False),
        ("v1", 1, None, False),
    ]
    assert (rows["chat"]["license"], rows["chat"]["tags"]) == ("mit", ["chat"])
    assert rows["speech"]["description"] == "Speech to text for meetings"
    assert rows["speech"]["size"] == sum(p.stat().st_size for p in speech.iterdir())

    by_tag = cli.run(consumer, testnet, "search", "audio")["results"]
    assert [(r["name"], r["version"], r["followed"]) for r in by_tag] == [("speech", "v1", True)]
    by_words = cli.run(consumer, testnet, "search", "small", "chat")["results"]
    assert [r["reference"] for r in by_words] == [f"{key}/chat@v1"]


def test_a_mirror_polls_fetches_and_catches_up_in_order(
    testnet: RunningTestnet, tmp_path: Path, processes: list[subprocess.Popen[str]]
) -> None:
    publisher = tmp_path / "publisher"
    key = cli.run(publisher, testnet, "key", "new", "--no-passphrase")["public_key"]
    chat = tmp_path / "chat"
    seeding: list[subprocess.Popen[str]] = []

    def release(version: str, seed: int) -> None:
        """Publish a new version with --seed; that process serves every version so far."""
        make_model(chat, seed=seed, size=1 << 20, shards=2)
        for old in seeding:
            old.terminate()
            old.wait(30)
        proc = cli.spawn(publisher, testnet, *publish(chat, "chat", version, "--seed"))
        processes.append(proc)
        seeding.append(proc)
        assert json.loads(read_line(proc, 120))["version"] == version

    release("v1", 21)
    env = {
        **os.environ,
        "HUBLESS_HOME": str(tmp_path / "mirror"),
        "HUBLESS_BOOTSTRAP": testnet.bootstrap_arg,
    }
    mirror = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(MIRROR), key],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    processes.append(mirror)
    assert json.loads(read_line(mirror, 60))["models"] == ["chat"]

    def poll_round() -> list[dict[str, Any]]:
        assert mirror.stdin is not None
        mirror.stdin.write("poll\n")
        mirror.stdin.flush()
        return json.loads(read_line(mirror, 120))  # type: ignore[no-any-return]

    first = poll_round()
    assert [(n["version"], n["seq"], n["latest"]) for n in first] == [("v1", 1, True)]
    assert first[0]["downloaded"] >= sum(p.stat().st_size for p in chat.iterdir())
    _check_snapshot(Path(first[0]["path"]), chat)

    release("v2", 22)
    release("v3", 23)  # the mirror did not poll meanwhile: it missed v2
    caught_up = poll_round()
    assert [(n["version"], n["seq"], n["latest"]) for n in caught_up] == [
        ("v2", 2, False),
        ("v3", 3, True),
    ]
    assert [Path(n["path"]).name for n in caught_up] == ["2", "3"]
    _check_snapshot(Path(caught_up[1]["path"]), chat)
    assert poll_round() == []
    assert mirror.stdin is not None
    mirror.stdin.close()
    assert mirror.wait(30) == 0


def _check_snapshot(snapshot: Path, model: Path) -> None:
    for source in model.iterdir():
        mine = hashlib.sha256(source.read_bytes()).digest()
        assert hashlib.sha256((snapshot / source.name).read_bytes()).digest() == mine, source
