"""The daemon in-process, over the in-memory swarm: it serves what the store holds, picks up
what another process of the same home writes, keeps records alive, and is alone per home."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest
from hubless.config import Config
from hubless.core.errors import UsageError
from hubless.services.client import Client
from hubless.services.daemon import Daemon, DaemonStatus, home_status
from hubless.store.lock import DaemonRunningError

from .conftest import NAME, PUBLISHER, REF, V1_FILES, write_model
from .fakenet import Swarm


def until(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.05)


@pytest.fixture
def one_shot(tmp_path: Path, swarm: Swarm) -> Callable[[str], Client]:
    """A second process on a home: its own state connection, serving nothing itself."""
    made: list[Client] = []

    def make(label: str) -> Client:
        client = Client(
            Config.resolve({}, home=tmp_path / label), network=swarm.node(), serve=False
        )
        made.append(client)
        return client

    yield make  # type: ignore[misc]
    for client in made:
        client.close()


def test_picks_up_what_another_process_publishes_and_removes(
    swarm: Swarm, publisher: Client, one_shot: Callable[[str], Client], tmp_path: Path
) -> None:
    folder = write_model(tmp_path / "m", V1_FILES)
    with Daemon(publisher, republish_interval=600, poll_interval=0.05) as daemon:
        assert daemon.status().running
        other = one_shot("publisher")  # same home, another process
        result = other.publish(folder, NAME, "v1", key=PUBLISHER)
        content = result.content_infohash
        # the one-shot process serves nothing itself (the daemon may have started already)
        assert all(p.owner is not other.network for p in swarm.seeders(content))
        until(lambda: bool(swarm.seeders(content)))

        def served() -> set[bytes]:
            return {t.infohash for t in daemon.status().torrents if t.serving}

        # the daemon records what it serves just after it started serving it
        until(lambda: {content, result.manifest_infohash} <= served())
        other.state.remove_seed(content)
        until(lambda: not swarm.seeders(content))
    stopped = home_status(publisher.config)
    assert not stopped.running and not any(t.serving for t in stopped.torrents)


def test_writes_that_change_nothing_served_do_not_make_it_reread_the_seeds(
    publisher: Client, one_shot: Callable[[str], Client], tmp_path: Path, swarm: Swarm
) -> None:
    # A mirror writes its poll schedule several times a second from its worker threads:
    # each write is another connection's commit, which alone must not re-read every seed.
    from hubless.store.follows import INDEX_TARGET, Follows

    folder = write_model(tmp_path / "m", V1_FILES)
    other = one_shot("publisher")
    syncs = []
    with Daemon(publisher, republish_interval=600, poll_interval=0.05) as daemon:
        sync = daemon._sync
        daemon._sync = lambda: (syncs.append(1), sync())[1]  # type: ignore[method-assign]
        for i in range(20):
            Follows(other.state).schedule(
                PUBLISHER.public, INDEX_TARGET, next_poll=60 + i, polled_at=i
            )
            time.sleep(0.05)
        assert syncs == []
        content = other.publish(folder, NAME, "v1", key=PUBLISHER).content_infohash
        until(lambda: bool(swarm.seeders(content)))  # a new seed still is picked up at once
        assert syncs


def test_a_second_daemon_on_the_same_home_is_refused(
    publisher: Client, make_client: Callable[[str], Client]
) -> None:
    with Daemon(publisher, poll_interval=0.05):
        again = make_client("publisher")
        with pytest.raises(DaemonRunningError, match="already runs"):
            Daemon(again).start()
    with Daemon(make_client("publisher")):  # the first one stopped: the lock is free
        pass


def test_keeps_a_forgotten_record_alive_on_its_interval(
    swarm: Swarm, publisher: Client, consumer: Client, tmp_path: Path
) -> None:
    publisher.publish(write_model(tmp_path / "m", V1_FILES), NAME, "v1", key=PUBLISHER)
    consumer.pull(REF)
    (item,) = swarm.forget(PUBLISHER.public, NAME.encode())
    with Daemon(consumer, republish_interval=0.5, poll_interval=0.05) as daemon:
        until(lambda: swarm.stored(PUBLISHER.public, NAME.encode()) == [item])
        until(lambda: any(r.put_at for r in daemon.status().records))
        status: DaemonStatus = daemon.status()
    (record,) = [r for r in status.records if r.name == NAME]
    assert (record.own_seq, record.version, record.bep44_seq) == (1, "v1", item.seq)
    assert record.outcome in ("put", "current") and record.stored == 8
    summary = status.summary()
    assert summary["records"][0]["name"] == NAME and summary["running"]


def test_the_interval_must_stay_below_the_record_lifetime(publisher: Client) -> None:
    with pytest.raises(UsageError, match="below"):
        Daemon(publisher, republish_interval=3 * 3600)
    with pytest.raises(UsageError):
        Daemon(publisher, republish_interval=0)


def test_a_signal_taken_by_another_thread_still_stops_the_daemon() -> None:
    """`hubless seed` waits for SIGTERM in its main thread; the kernel may deliver the signal
    to another thread (libtorrent's), and a wait without timeout then never woke."""
    from tests.conftest import run_python

    out = run_python(
        """
        import signal, threading, time
        from hubless.services.daemon import wait_until_set

        stop = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        other = threading.Thread(target=time.sleep, args=(30,), daemon=True)
        other.start()
        threading.Timer(0.2, signal.pthread_kill, (other.ident, signal.SIGTERM)).start()
        wait_until_set(stop)
        print("stopped")
        """,
        timeout=10,
    )
    assert out.strip() == "stopped"
