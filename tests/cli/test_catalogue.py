"""follow, unfollow, following, models and search as a user meets them, in-process on the
in-memory network: a publisher (the Python API) publishes two models into a `Swarm`."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from hubless.cli.app import App
from hubless.config import Config
from hubless.core.keys import SigningKey
from hubless.services.client import Client

from tests.services.fakenet import Swarm

from .conftest import Hubless

PUBLISHER = SigningKey(hashlib.sha256(b"hubless cli test: catalogue").digest())
KEY = PUBLISHER.public.text


@pytest.fixture
def swarm() -> Swarm:
    return Swarm()


@pytest.fixture
def published(tmp_path: Path, swarm: Swarm) -> Iterator[None]:
    """`chat` (v1, v2) and `speech` (v1), with notes and tags, served meanwhile."""
    with Client(Config.resolve({}, home=tmp_path / "publisher"), network=swarm.node()) as pub:
        for name, version, notes, tags in (
            ("chat", "v1", "A small chat model", ("chat",)),
            ("chat", "v2", "A small chat model, retrained", ("chat", "en")),
            ("speech", "v1", "Speech to text\nfor meetings", ("audio",)),
        ):
            folder = tmp_path / "work" / name
            folder.mkdir(parents=True, exist_ok=True)
            (folder / "weights.bin").write_bytes(hashlib.sha256(version.encode()).digest() * 64)
            pub.publish(folder, name, version, key=PUBLISHER, description=notes, tags=tags)
        yield


def run(hubless: Hubless, swarm: Swarm, *args: str) -> tuple[int, str, str]:
    done = hubless(*args, app=App(network=swarm.node()))
    return done.code, done.stdout, done.stderr


@pytest.mark.usefixtures("published")
def test_follow_a_key_then_list_what_is_followed(hubless: Hubless, swarm: Swarm) -> None:
    code, out, err = run(hubless, swarm, "follow", KEY)
    assert code == 0, err
    assert out.startswith(f"following {KEY}\n") and "2 models: chat, speech" in out
    code, out, _ = run(hubless, swarm, "follow", KEY, "--json")
    assert json.loads(out) == {
        "publisher": KEY,
        "name": None,
        "new": False,
        "models": ["chat", "speech"],
        "latest_version": None,
        "error": None,
    }
    code, out, _ = run(hubless, swarm, "following", "--json")
    listed = json.loads(out)
    assert [p["publisher"] for p in listed["publishers"]] == [KEY]
    assert [(m["name"], m["via_index"]) for m in listed["models"]] == [
        ("chat", True),
        ("speech", True),
    ]
    code, out, _ = run(hubless, swarm, "-q", "following")
    assert out.split() == [f"{KEY}/chat", f"{KEY}/speech"]


@pytest.mark.usefixtures("published")
def test_follow_one_model_says_its_latest_version(hubless: Hubless, swarm: Swarm) -> None:
    code, out, _ = run(hubless, swarm, "follow", f"hubless://{KEY}/chat")
    assert code == 0 and "latest version: v2" in out


def test_follow_a_version_is_a_usage_error(hubless: Hubless, swarm: Swarm) -> None:
    code, _, err = run(hubless, swarm, "follow", f"{KEY}/chat@v1")
    assert code == 2 and "names a version" in err


def test_unfollow_what_is_not_followed_exits_1(hubless: Hubless, swarm: Swarm) -> None:
    code, out, _ = run(hubless, swarm, "unfollow", KEY)
    assert code == 1 and "was not followed" in out
    run(hubless, swarm, "follow", f"{KEY}/chat")
    code, out, _ = run(hubless, swarm, "unfollow", f"{KEY}/chat")
    assert code == 0 and "no longer following" in out


@pytest.mark.usefixtures("published")
def test_models_lists_the_catalogue(hubless: Hubless, swarm: Swarm) -> None:
    code, out, err = run(hubless, swarm, "models", KEY)
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0] == f"{KEY}  index seq 3"
    assert any(line.split()[:2] == ["chat", "v2"] and "2 versions" in line for line in lines)
    assert "tags     audio" in out and "Speech to text" in out and "for meetings" not in out
    code, out, _ = run(hubless, swarm, "models", KEY, "--json")
    cat = json.loads(out)
    assert [(m["name"], m["version"], m["tags"]) for m in cat["models"]] == [
        ("chat", "v2", ["chat", "en"]),
        ("speech", "v1", ["audio"]),
    ]
    code, out, _ = run(hubless, swarm, "-q", "models", KEY)
    assert out.split() == [f"{KEY}/chat@v2", f"{KEY}/speech@v1"]


def test_models_of_a_publisher_with_no_index_is_not_found(hubless: Hubless, swarm: Swarm) -> None:
    code, _, err = run(hubless, swarm, "models", KEY)
    assert code == 1 and "no publisher index" in err and "hint:" in err


@pytest.mark.usefixtures("published")
def test_search_by_tag_and_description(hubless: Hubless, swarm: Swarm) -> None:
    code, out, _ = run(hubless, swarm, "search", "audio")
    assert code == 0 and out.strip() == "no model known here matches"
    run(hubless, swarm, "follow", KEY)
    run(hubless, swarm, "models", KEY)
    code, out, _ = run(hubless, swarm, "search", "meetings", "--json")
    found = json.loads(out)
    assert found["query"] == "meetings"
    assert [(r["name"], r["matched"], r["followed"]) for r in found["results"]] == [
        ("speech", ["description"], True)
    ]
    code, out, _ = run(hubless, swarm, "-q", "search", "chat", "en")
    assert out.split() == [f"{KEY}/chat@v2"]


@pytest.mark.usefixtures("published")
def test_following_tells_a_failed_lookup_from_a_failed_download(
    hubless: Hubless, swarm: Swarm, home: Path
) -> None:
    from hubless.store.follows import Follows

    run(hubless, swarm, "follow", f"{KEY}/chat")
    run(hubless, swarm, "follow", f"{KEY}/speech")
    with Client(Config.resolve({}, home=home), network=swarm.node()) as client:
        follows = Follows(client.state)
        follows.schedule(PUBLISHER.public, "chat", next_poll=1.0, polled_at=0.0, error="timeout")
        follows.schedule(PUBLISHER.public, "speech", next_poll=1.0, polled_at=0.0)
        follows.fetch_failed(PUBLISHER.public, "speech", "could not fetch v1: disk full")
    code, out, err = run(hubless, swarm, "following")
    assert code == 0, err
    chat, speech = (line for line in out.splitlines() if "holds" in line)
    assert chat.endswith("last poll failed: timeout"), chat
    assert speech.endswith("holds nothing yet  could not fetch v1: disk full"), speech
