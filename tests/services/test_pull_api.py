"""What `snapshot_download` users expect of pull: patterns, a version argument, an offline
switch, progress; and a partial pull that verifies as exactly what was asked for."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from hubless.core.errors import OfflineError, UsageError
from hubless.progressbar import TerminalBar, default_progress
from hubless.services.client import Client
from hubless.services.events import Event
from hubless.services.verify import verify_folder

from .conftest import NAME, PUBLISHER, REF, V1_FILES, write_model


@pytest.fixture
def published(publisher: Client, tmp_path: Path) -> Client:
    publisher.publish(write_model(tmp_path / "v1", V1_FILES), NAME, "v1", key=PUBLISHER)
    return publisher


def pulled_files(path: Path) -> list[str]:
    return sorted(
        p.relative_to(path).as_posix()
        for p in path.rglob("*")
        if p.is_file() and ".hubless" not in p.parts
    )


@pytest.mark.usefixtures("published")
@pytest.mark.parametrize(
    ("include", "exclude", "expected"),
    [
        ("*.json", None, ["config.json"]),  # a plain string is one pattern, never "all"
        (["*.json", "tokenizer/*"], None, ["config.json", "tokenizer/vocab.txt"]),
        (None, "*.safetensors", ["config.json", "tokenizer/vocab.txt"]),
        ("*", ["tokenizer/*", "*.json"], ["model.safetensors"]),
    ],
)
def test_include_and_exclude_take_a_string_or_a_list(
    consumer: Client, include: object, exclude: object, expected: list[str]
) -> None:
    result = consumer.pull(REF, include=include, exclude=exclude)  # type: ignore[arg-type]
    assert pulled_files(result.path) == expected
    assert result.files == len(expected)


@pytest.mark.usefixtures("published")
def test_a_selection_that_leaves_nothing_or_is_no_pattern_is_refused(consumer: Client) -> None:
    with pytest.raises(UsageError, match="no file of tiny-model matches"):
        consumer.pull(REF, include="*.json", exclude="config.*")
    with pytest.raises(UsageError, match="glob pattern or a list"):
        consumer.pull(REF, include=[b"*.json"])  # type: ignore[list-item]


@pytest.mark.usefixtures("published")
def test_a_partial_pull_verifies_as_its_selection(consumer: Client, tmp_path: Path) -> None:
    result = consumer.pull(REF, to=tmp_path / "out", include="*.json")
    report = verify_folder(result.path)
    assert report.ok and report.selected == 1 and report.ok_files == 1
    assert report.missing == () and report.summary()["selected"] == 1
    (result.path / "config.json").chmod(0o644)
    (result.path / "config.json").write_bytes(b"{}")
    assert verify_folder(result.path).modified == ("config.json",)
    whole = consumer.pull(REF, to=tmp_path / "all")
    assert verify_folder(whole.path).selected is None


@pytest.mark.usefixtures("published")
def test_version_argument_and_its_conflict_with_the_reference(consumer: Client) -> None:
    assert consumer.pull(REF, version="v1").resolution.target.manifest.version == "v1"
    assert consumer.pull(f"{REF.at('v1')}", version="v1").files == 3
    with pytest.raises(UsageError, match="names version v1"):
        consumer.pull(REF.at("v1"), version="v2")


@pytest.mark.usefixtures("published")
def test_offline_answers_from_the_cache_only(consumer: Client) -> None:
    with pytest.raises(OfflineError):
        consumer.pull(REF, offline=True)
    first = consumer.pull(REF, include="*.json")
    with pytest.raises(OfflineError, match="2 of the 3 files"):
        consumer.pull(REF, offline=True)
    again = consumer.pull(REF, include="*.json", offline=True)
    assert again.path == first.path and again.resolution.stale


@pytest.mark.usefixtures("published")
def test_a_progress_callback_gets_this_calls_events(consumer: Client) -> None:
    events: list[Event] = []
    consumer.pull(REF, progress=events.append)
    stages = {e.stage for e in events}
    assert {"resolve", "verify", "done"} <= stages
    verified = [e for e in events if e.stage == "verify" and e.total]
    assert verified[-1].done == verified[-1].total == sum(len(d) for d in V1_FILES.values())
    heard = len(events)
    consumer.pull(REF)  # another call without the callback: it hears nothing more
    assert len(events) == heard


class FakeTerminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_the_library_draws_a_bar_only_on_a_terminal() -> None:
    assert default_progress(io.StringIO()) is None
    terminal = FakeTerminal()
    bar = default_progress(terminal)
    assert isinstance(bar, TerminalBar)
    bar(Event("download", "downloading", 512, 1024))
    bar(Event("download", "downloading", 1024, 1024))
    bar(Event("done", "finished"))
    bar.close()
    assert "download" in terminal.getvalue() and "1.00k" in terminal.getvalue()


@pytest.mark.usefixtures("published")
def test_a_magnet_names_the_seeders_a_lookup_found(consumer: Client, swarm: object) -> None:
    link = consumer.magnet(REF)
    assert link.startswith("magnet:?xt=urn:btih:") and "&x.pe=127.0.0.1:7000" in link
    swarm.dht_offline = True  # type: ignore[attr-defined]
    assert "x.pe" not in consumer.magnet(REF.at("v1"))  # resolved from here, no peers found


def test_wanted_files_download_in_seven_bands_in_torrent_order() -> None:
    """Files complete in turn, so each is hashed while the rest downloads (spec §8.4)."""
    from hubless.core.metainfo import Metainfo, TorrentFile
    from hubless.services.bands import download_priorities

    sizes = [("config.json", 10, False), ("", 1014, True)]
    sizes += [(f"shard-{i:02d}", 1024, False) for i in range(14)]
    sizes += [("skipped.bin", 1024, False)]
    meta = Metainfo("m", 1024, tuple(TorrentFile(*s) for s in sizes), b"\0" * 20, False)
    wanted = {p for p, _, pad in sizes if not pad and p != "skipped.bin"}
    priorities = download_priorities(meta, wanted)
    assert priorities[:2] == [7, 0] and priorities[-1] == 0  # pads and unwanted files: 0
    bands = priorities[2:-1]
    assert bands == sorted(bands, reverse=True) and bands[0] == 7 and bands[-1] == 1
    assert all(bands.count(b) == 2 for b in range(1, 8))  # seven bands of equal bytes


def test_a_download_gives_up_the_bands_in_a_swarm() -> None:
    """Bands while every peer is a seed; one priority once another downloader stays."""
    from hubless.net.contract import Progress
    from hubless.services.bands import Bands

    def seen(peers: int, seeds: int) -> Progress:
        return Progress(b"\0" * 20, 0, 100, 0.0, peers, False, seeds=seeds)

    bands = Bands([7, 0, 4, 1])
    assert bands.flatten(seen(1, 1)) is None  # one seed: keep the bands
    assert bands.flatten(seen(2, 1)) is None  # a peer whose bitfield has not come yet
    assert bands.flatten(seen(1, 1)) is None
    assert bands.flatten(seen(3, 1)) is None
    assert bands.flatten(seen(3, 2)) == [1, 0, 1, 1]  # another downloader, twice in a row
    assert bands.flatten(seen(3, 2)) is None  # once


def test_pulling_again_into_the_same_folder_is_a_verified_no_op(
    published: Client, consumer: Client, tmp_path: Path
) -> None:
    """`pull --to DIR` run twice ends well, as huggingface_hub's `local_dir` does; DIR holding
    another version, another selection or changed files is refused, naming what it holds."""
    out = tmp_path / "out"
    first = consumer.pull(REF, to=out)
    again = consumer.pull(REF, to=out)
    assert again.path == first.path == out.absolute() and verify_folder(out).ok

    with pytest.raises(UsageError, match="another selection") as caught:
        consumer.pull(REF, to=out, include="*.json")
    assert "new or empty folder" in caught.value.hint

    (out / "config.json").chmod(0o644)
    (out / "config.json").write_bytes(b"{}")
    with pytest.raises(UsageError, match="1 of its files differ from it: config.json"):
        consumer.pull(REF, to=out)
    assert (out / "config.json").read_bytes() == b"{}"  # the user's change is left alone

    published.publish(
        write_model(tmp_path / "v2", {**V1_FILES, "config.json": b"{}\n"}),
        NAME,
        "v2",
        key=PUBLISHER,
    )
    with pytest.raises(UsageError, match="holds another pull than tiny-model v2"):
        consumer.pull(REF, to=out)
