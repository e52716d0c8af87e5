"""Follows, poll schedules and accepted indexes: state only moves forward, a removed model is
kept until the user was told, and the tables join an existing state database."""

from __future__ import annotations

import hashlib
import sqlite3
from pathlib import Path

from hubless.core.bep44 import RawItem
from hubless.core.index import INDEX_SALT
from hubless.core.keys import SigningKey
from hubless.store.follows import INDEX_TARGET, AcceptedIndex, Follows
from hubless.store.state import SCHEMA_VERSION, State

KEY = SigningKey(hashlib.sha256(b"follows").digest()).public
OTHER = SigningKey(hashlib.sha256(b"follows: other").digest()).public


def index(seq: int, *names: str) -> AcceptedIndex:
    item = RawItem(KEY.raw, INDEX_SALT, seq + 10, b"3:abc", bytes([seq]) * 64)
    return AcceptedIndex(KEY, seq, bytes([seq]) * 32, 1000 + seq, names, item)


def names(follows: Follows) -> list[tuple[str, bool]]:
    return [(m.name, m.removed_at is not None) for m in follows.models()]


def test_an_accepted_index_never_moves_back_and_keeps_its_signed_item(tmp_path: Path) -> None:
    follows = Follows(State(tmp_path / "state.db"))
    assert follows.remember_index(index(3, "a", "b")).added == ("a", "b")
    assert not follows.remember_index(index(2, "a")).newer
    assert not follows.remember_index(index(3, "z")).newer
    kept = follows.known_index(KEY)
    assert kept == index(3, "a", "b") and kept.item.signature == bytes([3]) * 64
    change = follows.remember_index(index(4, "b", "c"))
    assert (change.added, change.removed) == (("c",), ("a",))


def test_a_followed_publishers_dropped_model_stays_until_acknowledged(tmp_path: Path) -> None:
    follows = Follows(State(tmp_path / "state.db"))
    follows.follow(KEY, None, 0.0)
    follows.remember_index(index(1, "a", "b"))
    follows.remember_index(index(2, "b"))
    assert names(follows) == [("a", True), ("b", False)]
    follows.acknowledge_removed([(KEY, "a")])
    assert names(follows) == [("b", False)]


def test_a_model_back_in_the_index_loses_its_removal_mark(tmp_path: Path) -> None:
    follows = Follows(State(tmp_path / "state.db"))
    follows.follow(KEY, None, 0.0)
    follows.remember_index(index(1, "a"))
    follows.remember_index(index(2))
    follows.remember_index(index(3, "a"))
    assert names(follows) == [("a", False)]


def test_an_index_read_without_following_marks_nothing(tmp_path: Path) -> None:
    follows = Follows(State(tmp_path / "state.db"))
    follows.remember_index(index(1, "a"))
    follows.remember_index(index(2))
    follows.follow(KEY, None, 0.0)
    assert names(follows) == []


def test_a_model_followed_by_name_outlives_its_removal(tmp_path: Path) -> None:
    follows = Follows(State(tmp_path / "state.db"))
    follows.follow(KEY, None, 0.0)
    follows.follow(KEY, "a", 0.0)
    follows.remember_index(index(1, "a"))
    follows.remember_index(index(2))
    follows.acknowledge_removed([(KEY, "a")])
    assert [(m.name, m.explicit, m.via_index) for m in follows.models()] == [("a", True, False)]


def test_delivery_only_moves_forward(tmp_path: Path) -> None:
    follows = Follows(State(tmp_path / "state.db"))
    follows.follow(KEY, "a", 0.0)
    follows.deliver(KEY, "a", 5)
    follows.deliver(KEY, "a", 3)
    assert follows.poll(KEY, "a").delivered_seq == 5  # type: ignore[union-attr]


def test_failures_count_up_and_a_success_or_a_new_follow_resets(tmp_path: Path) -> None:
    follows = Follows(State(tmp_path / "state.db"))
    follows.follow(OTHER, None, 0.0)
    follows.schedule(OTHER, INDEX_TARGET, next_poll=10, polled_at=1, error="timeout")
    poll = follows.schedule(OTHER, INDEX_TARGET, next_poll=30, polled_at=2, error="timeout")
    assert (poll.failures, poll.last_error, poll.next_poll) == (2, "timeout", 30)
    poll = follows.schedule(OTHER, INDEX_TARGET, next_poll=50, polled_at=3)
    assert (poll.failures, poll.last_error) == (0, None)
    follows.schedule(OTHER, "m", next_poll=float("inf"), polled_at=4, error="x", stopped="x")
    follows.follow(OTHER, "m", 99.0)
    poll = follows.poll(OTHER, "m")
    assert poll is not None and (poll.stopped, poll.failures, poll.next_poll) == (None, 0, 99.0)


def test_the_tables_join_an_existing_database_and_survive_a_reopen(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    State(path).close()  # a database made before follows existed
    follows = Follows(State(path))
    follows.follow(KEY, "a", 0.0)
    again = Follows(State(path))
    assert [m.name for m in again.models()] == ["a"]
    with sqlite3.connect(path) as db:
        # Follows add tables without bumping the state schema.
        expected = (str(SCHEMA_VERSION),)
        assert db.execute("SELECT value FROM meta WHERE key='schema'").fetchone() == expected


def test_next_due_is_the_earliest_poll_of_what_is_followed(tmp_path: Path) -> None:
    follows = Follows(State(tmp_path / "state.db"))

    assert follows.next_due() is None
    follows.follow(KEY, None, 0.0)
    follows.remember_index(index(1, "a", "b"))
    follows.follow(OTHER, "c", 70.0)
    assert follows.next_due() == 0.0  # the index and "a" were never polled
    follows.schedule(KEY, INDEX_TARGET, next_poll=50, polled_at=1)
    follows.schedule(KEY, "a", next_poll=30, polled_at=1)
    assert follows.next_due() == 0.0  # "b" still never polled
    follows.schedule(KEY, "b", next_poll=40, polled_at=1)
    assert follows.next_due() == 30
    follows.schedule(KEY, "a", next_poll=float("inf"), polled_at=2, error="x", stopped="x")
    assert follows.next_due() == 40  # a stopped model is not waited for
    follows.schedule(KEY, "b", next_poll=90, polled_at=3)
    assert follows.next_due() == 50  # the index's own poll
    follows.remember_index(index(2, "a"))  # "b" left the index: followed until acknowledged
    follows.schedule(KEY, INDEX_TARGET, next_poll=95, polled_at=4)
    assert follows.next_due() == 70  # OTHER/c, followed by name
    follows.acknowledge_removed([(KEY, "b")])
    follows.schedule(OTHER, "c", next_poll=99, polled_at=5)
    assert follows.next_due() == 95
