"""What the commands print and ask, run in-process on the in-memory network of the services tests.

A publisher (the Python API) publishes into a `Swarm`; the command under test runs as a
second identity on the same swarm, so resolve, history and pull work without libtorrent.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from hubless.cli.app import App
from hubless.config import Config
from hubless.core.keys import SigningKey
from hubless.services.client import Client

from tests.services.fakenet import Swarm

from .conftest import Hubless

PUBLISHER = SigningKey(hashlib.sha256(b"hubless cli test: publisher").digest())
FILES = {"config.json": b'{"layers": 2}\n', "model.safetensors": bytes(range(256)) * 40}
NOTES = "first release\ntrained on nothing at all"


@pytest.fixture
def swarm() -> Swarm:
    return Swarm()


@pytest.fixture
def model(tmp_path: Path) -> Path:
    folder = tmp_path / "model"
    folder.mkdir()
    for name, data in FILES.items():
        (folder / name).write_bytes(data)
    return folder


@pytest.fixture
def published(tmp_path: Path, swarm: Swarm, model: Path) -> Iterator[str]:
    """`KEY/tiny` published twice (v2 with notes, license and tags) and seeded meanwhile."""
    with Client(Config.resolve({}, home=tmp_path / "publisher"), network=swarm.node()) as pub:
        pub.publish(model, "tiny", "v1", key=PUBLISHER)
        (model / "config.json").write_bytes(b'{"layers": 3}\n')
        pub.publish(
            model,
            "tiny",
            "v2",
            key=PUBLISHER,
            description=NOTES,
            license="apache-2.0",
            tags=("demo", "tiny"),
        )
        yield f"{PUBLISHER.public.text}/tiny"


def stopped() -> threading.Event:
    stop = threading.Event()
    stop.set()
    return stop


# --- -q: stdout carries only the main value ----------------------------------------------------


def test_quiet_pull_prints_only_the_path_on_stdout(
    hubless: Hubless, swarm: Swarm, published: str
) -> None:
    done = hubless("-q", "pull", published, app=App(network=swarm.node()))
    assert done.code == 0, done.stderr
    path = Path(done.stdout.rstrip("\n"))
    assert done.stdout == f"{path}\n" and (path / "config.json").read_bytes() == b'{"layers": 3}\n'
    assert "2 files verified" in done.stderr  # the summary moved to stderr


def test_without_quiet_pull_prints_the_summary_and_the_path(
    hubless: Hubless, swarm: Swarm, published: str
) -> None:
    done = hubless("pull", published, app=App(network=swarm.node()))
    summary, path = done.stdout.splitlines()
    assert "2 files verified" in summary and Path(path).is_dir()


def test_quiet_gives_each_commands_main_value(
    hubless: Hubless, swarm: Swarm, published: str
) -> None:
    resolved = hubless("resolve", published, "-q", app=App(network=swarm.node()))
    assert resolved.stdout == f"{published}@v2\n"
    listed = hubless("history", published, "-q", app=App(network=swarm.node()))
    assert listed.stdout == "v1\nv2\n"
    made = hubless("key", "new", "--no-passphrase", "-q")
    assert len(made.stdout.strip()) == 52 and made.stdout.count("\n") == 1
    assert hubless("key", "list", "-q").stdout == "default\n"


def test_quiet_publish_prints_the_reference(hubless: Hubless, swarm: Swarm, model: Path) -> None:
    hubless("key", "new", "--no-passphrase")
    done = hubless(
        "-q", "publish", model, "--name", "m", "--version", "v1", app=App(network=swarm.node())
    )
    assert done.code == 0, done.stderr
    assert done.stdout.endswith("/m@v1\n") and done.stdout.count("\n") == 1
    assert "published" in done.stderr


def test_quiet_verify_prints_only_the_problems(
    hubless: Hubless, swarm: Swarm, published: str, tmp_path: Path
) -> None:
    folder = tmp_path / "pulled"
    assert hubless("pull", published, "--to", folder, app=App(network=swarm.node())).code == 0
    assert hubless("-q", "verify", folder).stdout == ""
    (folder / "config.json").write_bytes(b"{}")
    done = hubless("-q", "verify", folder)
    assert done.code == 1 and done.stdout == "modified  config.json\n"
    assert "FAILED" in done.stderr


# --- notes, license and tags ----------------------------------------------------------------


def test_resolve_shows_notes_license_and_tags(
    hubless: Hubless, swarm: Swarm, published: str
) -> None:
    text = hubless("resolve", published, app=App(network=swarm.node())).stdout
    assert "license     apache-2.0" in text and "tags        demo, tiny" in text
    assert "notes       first release\n            trained on nothing at all" in text
    data = json.loads(hubless("resolve", published, "--json", app=App(network=swarm.node())).stdout)
    assert (data["description"], data["license"], data["tags"]) == (
        NOTES,
        "apache-2.0",
        ["demo", "tiny"],
    )
    older = json.loads(
        hubless("resolve", f"{published}@v1", "--json", app=App(network=swarm.node())).stdout
    )
    assert (older["description"], older["license"], older["tags"]) == (None, None, [])


def test_publish_signs_web_seeds_and_resolve_shows_them(
    hubless: Hubless, swarm: Swarm, model: Path
) -> None:
    hubless("key", "new", "--no-passphrase")
    hf = "https://huggingface.co/org/tiny/resolve/main"
    done = hubless(
        "publish",
        model,
        "--name",
        "tiny",
        "--version",
        "v1",
        "--json",
        "--web-seed",
        "https://mirror.example/models/",
        "--web-seed",
        hf,
        app=App(network=swarm.node()),
    )
    assert done.code == 0, done.stderr
    ref = json.loads(done.stdout)["reference"]
    data = json.loads(hubless("resolve", ref, "--json", app=App(network=swarm.node())).stdout)
    assert data["web_seeds"] == [
        {"kind": "bep19", "url": "https://mirror.example/models/"},
        {"kind": "path", "url": hf + "/"},  # a Hugging Face resolve URL is a folder of files
    ]
    text = hubless("resolve", ref, app=App(network=swarm.node())).stdout
    assert "web seed    https://mirror.example/models/" in text and hf + "/ (files)" in text


@pytest.mark.parametrize(
    "url", ["ftp://mirror.example/m/", "https://user@mirror.example/m/", "mirror.example/m/"]
)
def test_a_web_seed_that_is_not_an_http_folder_is_a_usage_error(
    hubless: Hubless, model: Path, url: str
) -> None:
    done = hubless("publish", model, "--name", "tiny", "--version", "v1", "--web-seed", url)
    assert done.code == 2 and "--web-seed" in done.stderr, done.stderr


def test_history_shows_the_latest_versions_notes_license_and_tags(
    hubless: Hubless, swarm: Swarm, published: str
) -> None:
    text = hubless("history", published, app=App(network=swarm.node())).stdout
    assert "apache-2.0" in text and "demo, tiny" in text and "first release" in text
    data = json.loads(hubless("history", published, "--json", app=App(network=swarm.node())).stdout)
    latest = data["versions"][-1]
    assert (latest["version"], latest["description"], latest["tags"]) == (
        "v2",
        NOTES,
        ["demo", "tiny"],
    )


# --- hints ------------------------------------------------------------------------------------


def test_a_model_nobody_published_gets_the_not_found_hint(hubless: Hubless, swarm: Swarm) -> None:
    done = hubless("resolve", f"{PUBLISHER.public.text}/nothing", app=App(network=swarm.node()))
    assert done.code == 1
    assert "hint: check the key and the model name" in done.stderr, done.stderr
    assert "--bootstrap" not in done.stderr


def test_no_peer_asks_whether_the_publisher_or_a_mirror_is_seeding(
    hubless: Hubless, swarm: Swarm, published: str
) -> None:
    swarm.peers.clear()  # every seeder left; the record is still in the DHT
    done = hubless("pull", published, app=App(network=swarm.node()))
    assert done.code == 1 and "no peer connected within" in done.stderr, done.stderr
    assert "publisher or any mirror seeding it" in done.stderr
    torrent = done.stderr.split("torrent ")[1].split(")")[0]  # named once, not twice
    assert done.stderr.count(torrent) == 1, done.stderr


def test_a_wrong_passphrase_says_so(hubless: Hubless, model: Path) -> None:
    assert hubless("key", "new", env={"HUBLESS_PASSPHRASE": "right horse"}).code == 0
    done = hubless(
        "publish",
        model,
        "--name",
        "m",
        "--version",
        "v1",
        env={"HUBLESS_PASSPHRASE": "wrong horse", "HUBLESS_BOOTSTRAP": "127.0.0.1:9"},
    )
    assert done.code == 1 and "wrong passphrase" in done.stderr
    assert "hint: the passphrase is wrong" in done.stderr and "key list" not in done.stderr


def test_an_unknown_key_lists_the_keys_that_exist(hubless: Hubless, model: Path) -> None:
    hubless("key", "new", "--no-passphrase")
    hubless("key", "new", "--no-passphrase", "--name", "work")
    done = hubless("publish", model, "--name", "m", "--version", "v1", "--key", "nosuchkey")
    assert done.code == 1 and "no key named 'nosuchkey'" in done.stderr
    assert "hint: the keys here are: default, work" in done.stderr


# --- publish --seed asks for the passphrase once ---------------------------------------------


def test_publish_and_seed_ask_for_the_passphrase_once(
    hubless: Hubless, swarm: Swarm, model: Path
) -> None:
    assert hubless("key", "new", env={"HUBLESS_PASSPHRASE": "s3cret horse"}).code == 0
    asked: list[str] = []

    def prompt(message: str) -> str:
        asked.append(message)
        return "s3cret horse"

    app = App(network=swarm.node(), prompt=prompt, stop=stopped)
    done = hubless("publish", model, "--name", "m", "--version", "v1", "--seed", app=app)
    assert done.code == 0, done.stderr
    assert asked == ["Passphrase for key 'default'"]


# --- the error table's precedence -----------------------------------------------------------


def test_the_hint_given_where_an_error_is_raised_wins() -> None:
    from hubless.cli.errors import classify
    from hubless.core import errors

    assert classify(errors.NotFoundError("x", hint="given here")) == (1, "given here")
    assert classify(errors.InvalidReferenceError("x", hint="e.g. this")) == (2, "e.g. this")


def test_then_the_most_specific_class_or_table_hint() -> None:
    from hubless.cli.errors import TABLE, classify
    from hubless.core import errors

    # The table's command-line wording beats the class's own hint at the same class...
    assert classify(errors.NotFoundError("x"))[1] == TABLE[errors.NotFoundError][1]
    assert "publisher or any mirror seeding" in classify(errors.NoPeersError("no peer for ab"))[1]
    # ...and a class's own hint beats every hint of its bases.
    assert "clock" in classify(errors.FutureTimestampError("x"))[1]
    # With nothing more specific, the base's hint applies.
    assert "--bootstrap" in classify(errors.NetTimeoutError("x"))[1]
    assert classify(errors.InvalidReferenceError("x")) == (2, "")
    assert classify(errors.KeyStoreError("x")) == (1, "list the keys here with: hubless key list")


# --- the cache commands and partial pulls -------------------------------------------------------


def test_exclude_then_verify_says_it_checked_the_selection(
    hubless: Hubless, swarm: Swarm, published: str, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    done = hubless(
        "pull", published, "--exclude", "*.json", "--to", out, app=App(network=swarm.node())
    )
    assert done.code == 0, done.stderr
    assert not (out / "config.json").exists()
    checked = hubless("verify", out)
    assert checked.code == 0, checked.stderr
    assert "OK, 1 of 1 files intact (a partial pull: the 1 selected of 2 files" in checked.stdout


def test_list_rm_and_prune_on_the_command_line(
    hubless: Hubless, swarm: Swarm, published: str
) -> None:
    assert hubless("pull", f"{published}@v1", app=App(network=swarm.node())).code == 0
    assert hubless("pull", published, app=App(network=swarm.node())).code == 0
    listed = hubless("list", "-q")
    assert listed.stdout.split() == [f"{published}@v1", f"{published}@v2"]
    as_json = json.loads(hubless("list", "--json").stdout)
    assert [v["version"] for v in as_json["models"][0]["versions"]] == ["v1", "v2"]
    removed = hubless("rm", f"{published}@v1", "--json")
    assert removed.code == 0, removed.stderr
    assert json.loads(removed.stdout)["freed"] == len(b'{"layers": 2}\n')
    assert hubless("list", "-q").stdout.split() == [f"{published}@v2"]
    assert hubless("rm", f"{published}@v1").code == 2  # not in the cache: a usage error
    dry = hubless("prune", "--dry-run")
    assert dry.code == 0 and "would free 0 B" in dry.stdout


def test_history_shows_each_held_versions_own_notes(
    hubless: Hubless, swarm: Swarm, model: Path, tmp_path: Path
) -> None:
    """Earlier rows carry notes from their own manifest once this home holds it."""
    with Client(Config.resolve({}, home=tmp_path / "pub2"), network=swarm.node()) as pub:
        pub.publish(model, "older", "v1", key=PUBLISHER, description="the first one")
        (model / "config.json").write_bytes(b'{"layers": 5}\n')
        pub.publish(model, "older", "v2", key=PUBLISHER, description="the second one")
        ref = f"{PUBLISHER.public.text}/older"
        app = App(network=swarm.node())
        assert hubless("resolve", f"{ref}@v1", app=app).code == 0  # this home holds v1's now
        data = json.loads(hubless("history", ref, "--json", app=App(network=swarm.node())).stdout)
        notes = [(v["version"], v.get("description")) for v in data["versions"]]
        assert notes == [("v1", "the first one"), ("v2", "the second one")]
        text = hubless("history", ref, app=App(network=swarm.node())).stdout
        assert "the first one" in text and "the second one" in text


# --- huggingface_hub's option names ---------------------------------------------------------


def test_pull_takes_revision_and_local_dir_as_huggingface_hub_names_them(
    hubless: Hubless, swarm: Swarm, published: str, tmp_path: Path
) -> None:
    done = hubless(
        "--json",
        "pull",
        published,
        "--revision",
        "v1",
        "--local-dir",
        str(tmp_path / "here"),
        app=App(network=swarm.node()),
    )
    assert done.code == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["version"] == "v1"
    assert (tmp_path / "here" / "config.json").read_bytes() == FILES["config.json"]
    same = hubless(
        "-q", "pull", f"{published}@v1", "--revision", "v1", app=App(network=swarm.node())
    )
    assert same.code == 0, same.stderr


def test_pull_refuses_a_revision_that_contradicts_the_reference(
    hubless: Hubless, swarm: Swarm, published: str
) -> None:
    done = hubless("pull", f"{published}@v2", "--revision", "v1", app=App(network=swarm.node()))
    assert done.code == 2
    assert "names version v2, but --revision says v1" in done.stderr, done.stderr
    bad = hubless("pull", published, "--revision", "", app=App(network=swarm.node()))
    assert bad.code != 0 and "Traceback" not in bad.stderr, bad.stderr
