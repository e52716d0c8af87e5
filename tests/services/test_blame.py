"""Errors name the most likely cause, and local mistakes are found before any network work."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from hubless.core.errors import NetTimeoutError, RollbackError, StoreError, UsageError
from hubless.core.keys import SigningKey
from hubless.services.client import Client

from .conftest import NAME, PUBLISHER, REF, V1_FILES, write_model
from .fakenet import Swarm


@pytest.fixture
def v1(publisher: Client, tmp_path: Path) -> Path:
    folder = write_model(tmp_path / "work" / NAME, V1_FILES)
    publisher.publish(folder, NAME, "v1", key=PUBLISHER)
    return folder


@pytest.mark.parametrize("kind", ["non-empty folder", "a file", "below a file"])
def test_a_bad_to_folder_is_refused_before_any_network_work(
    swarm: Swarm, consumer: Client, v1: Path, tmp_path: Path, kind: str
) -> None:
    target = tmp_path / "out"
    if kind == "non-empty folder":
        target.mkdir()
        (target / "keep.txt").write_text("mine")
    elif kind == "a file":
        target.write_text("mine")
    else:
        target.write_text("mine")
        target = target / "sub"
    calls = len(swarm.calls)
    swarm.dht_offline = True  # any lookup would now fail with a network error instead
    with pytest.raises(UsageError) as caught:
        consumer.pull(REF, to=target)
    assert "new or empty folder" in caught.value.hint
    assert len(swarm.calls) == calls
    assert consumer.state.known(REF.publisher, REF.name) is None  # never resolved


def test_a_publish_that_lost_a_race_says_so(
    swarm: Swarm,
    make_client: Callable[[str], Client],
    v1: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Two homes with one key publish seq 2 at once: the loser is told, not sent to --bootstrap."""
    other = make_client("other-machine")
    other.publish(write_model(tmp_path / "other", {"a.txt": b"other"}), NAME, "v2", key=PUBLISHER)
    slot = swarm.items[(PUBLISHER.public.raw, NAME.encode())]
    theirs = slot.pop()  # not visible yet when the racer looks: it lands during the racer's put
    racer = make_client("racer")
    network = racer.network

    def put_loses_the_race(*args: object, **kwargs: object) -> int:
        slot.append(theirs)
        raise NetTimeoutError("no DHT node stored it")

    monkeypatch.setattr(network, "dht_put", put_loses_the_race)
    folder = write_model(tmp_path / "racer", {"b.txt": b"racer"})
    with pytest.raises(UsageError, match="another publish") as caught:
        racer.publish(folder, NAME, "v2b", key=PUBLISHER)
    assert "at once" in caught.value.hint


def test_a_rollback_under_our_own_key_blames_the_failed_put(
    swarm: Swarm, publisher: Client, v1: Path
) -> None:
    publisher.keys.create("default", None, seed=PUBLISHER.seed)
    (v1 / "config.json").write_bytes(b'{"hidden_size": 9}\n')
    swarm.failing_puts = 1
    with pytest.raises(NetTimeoutError):
        publisher.publish(v1, NAME, "v2", key=PUBLISHER)
    with pytest.raises(RollbackError) as caught:
        publisher.resolve(REF)
    assert "this machine published a newer version" in caught.value.hint


def test_a_rollback_under_someone_elses_key_keeps_the_attacker_hint(
    swarm: Swarm, publisher: Client, consumer: Client, v1: Path
) -> None:
    consumer.keys.create("mine", None, seed=SigningKey(b"\x07" * 32).seed)
    (v1 / "config.json").write_bytes(b'{"hidden_size": 9}\n')
    publisher.publish(v1, NAME, "v2", key=PUBLISHER)
    consumer.resolve(REF)
    newest = max(swarm.stored(PUBLISHER.public, NAME.encode()), key=lambda i: i.seq)
    swarm.items[(PUBLISHER.public.raw, NAME.encode())].remove(newest)
    with pytest.raises(RollbackError) as caught:
        consumer.resolve(REF)
    assert "this machine published" not in caught.value.hint


def test_a_finished_download_whose_file_is_gone_is_a_local_error(
    swarm: Swarm, consumer: Client, v1: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    network = consumer.network
    real_wait = network.wait_finished

    def wait_then_lose_the_file(ih: bytes, timeout: float, **kwargs):  # type: ignore[no-untyped-def]
        progress = real_wait(ih, timeout, **kwargs)
        shutil.rmtree(consumer.cache.partial_dir(ih), ignore_errors=True)  # another process
        return progress

    monkeypatch.setattr(network, "wait_finished", wait_then_lose_the_file)
    with pytest.raises(StoreError) as caught:
        consumer.resolve(REF)
    assert "another process" in caught.value.hint
