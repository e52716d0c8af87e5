"""File locks between threads and processes, and a state database many processes open at once."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from hubless.core.errors import NetTimeoutError
from hubless.store.locks import Busy, Locks
from hubless.store.state import State


def test_threads_of_one_process_take_turns(tmp_path: Path) -> None:
    locks = Locks(tmp_path)
    inside: list[int] = []
    overlap: list[int] = []

    def work(i: int) -> None:
        with locks.hold("x"):
            inside.append(i)
            if len(inside) > 1:
                overlap.append(i)
            time.sleep(0.02)
            inside.remove(i)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert overlap == []


def test_shared_holders_coexist_and_keep_an_exclusive_one_out(tmp_path: Path) -> None:
    locks = Locks(tmp_path)
    with locks.hold("m", shared=True), locks.hold("m", shared=True):
        assert locks.busy("m")
        with pytest.raises(Busy), locks.hold("m", timeout=0):
            pass
    assert not locks.busy("m")


def test_waiting_is_bounded_and_says_so_once(tmp_path: Path) -> None:
    """A waiter gives up while the lock is still held (bounded); one with time enough gets
    the lock only after its holder let go (it waited). Each says once that it waits."""
    locks = Locks(tmp_path)
    events: list[str] = []
    with locks.hold("d"):
        with (
            pytest.raises(NetTimeoutError, match=r"waited 0\.3s for the download"),
            locks.hold(
                "d", timeout=0.3, on_wait=lambda: events.append("wait"), what="the download"
            ),
        ):
            pass
        events.append("gave up")  # while the lock was still held: it did not wait for it

        waiting = threading.Event()

        def waits() -> None:
            events.append("wait")
            waiting.set()

        def patient() -> None:
            with locks.hold("d", timeout=600, on_wait=waits):
                events.append("acquired")

        waiter = threading.Thread(target=patient)
        waiter.start()
        assert waiting.wait(60), "the second waiter never found the lock taken"
        events.append("released")
    waiter.join(60)
    assert not waiter.is_alive(), "the second waiter did not get the lock once it was free"
    assert events == ["wait", "gave up", "wait", "released", "acquired"]


def test_a_dead_holder_releases_its_lock(tmp_path: Path) -> None:
    code = (
        "import sys, time\n"
        "from pathlib import Path\n"
        "from hubless.store.locks import Locks\n"
        "with Locks(Path(sys.argv[1])).hold('p'):\n"
        "    print('held', flush=True)\n"
        "    time.sleep(60)\n"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", code, str(tmp_path)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "held"
        assert Locks(tmp_path).busy("p")
    finally:
        proc.kill()
        proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()
    with Locks(tmp_path).hold("p", timeout=5):
        pass


def test_many_processes_create_one_state_database_at_once(tmp_path: Path) -> None:
    code = (
        "import sys\n"
        "from pathlib import Path\n"
        "from hubless.core.keys import PublicKey\n"
        "from hubless.store.state import State\n"
        "s = State(Path(sys.argv[1]))\n"
        "for i in range(20):\n"
        "    s.pin(PublicKey(bytes([int(sys.argv[2])]) * 32), f'n{i}')\n"
        "s.close()\n"
    )
    db = tmp_path / "home" / "state.db"
    procs = [
        subprocess.Popen([sys.executable, "-c", code, str(db), str(i)], stderr=subprocess.PIPE)
        for i in range(8)
    ]
    errors = [p.communicate(timeout=120)[1] for p in procs]
    assert [p.returncode for p in procs] == [0] * 8, errors
    assert len(State(db).pinned()) == 8


def test_threads_share_one_state_connection(tmp_path: Path) -> None:
    from hubless.core.keys import PublicKey

    state = State(tmp_path / "state.db")
    failures: list[BaseException] = []

    def pin(i: int) -> None:
        try:
            for j in range(20):
                state.pin(PublicKey(bytes([i]) * 32), f"{j}")
                state.pinned()
        except BaseException as exc:
            failures.append(exc)

    threads = [threading.Thread(target=pin, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert failures == []
    assert len(state.pinned()) == 6
