"""Following publishers over the in-memory swarm: the index read by the rules of records, the
poll round a daemon drives (catch-up in order, back-off, stops), catalogue and search.

Each test names one behaviour; attacks assert the precise error and that what the client
remembers did not move.
"""

from __future__ import annotations

import hashlib
import random
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from hubless.core.bep44 import sign_item
from hubless.core.errors import (
    EquivocationError,
    HistoryRewriteError,
    IntegrityError,
    RollbackError,
    UsageError,
)
from hubless.core.index import INDEX_SALT, IndexRecord, encode_index, encode_name_list
from hubless.core.manifest import FileEntry, Manifest, verify_manifest
from hubless.core.refs import Reference
from hubless.services.client import Client
from hubless.services.poll import STOPPING, NewVersion, PollPolicy, deliver, fetch_version
from hubless.store.follows import INDEX_TARGET, Follows

from .conftest import PUBLISHER, V1_FILES, known, publish_forged, write_model
from .fakenet import Swarm

KEY = PUBLISHER.public.text
A, B, C = "model-a", "model-b", "model-c"
POLICY = PollPolicy(interval=100.0, max_backoff=1000.0, jitter=0.1)


def files(tag: str) -> dict[str, bytes]:
    """Model files that differ per `tag`, so every release has its own content."""
    return {**V1_FILES, "model.safetensors": hashlib.sha256(tag.encode()).digest() * 500}


class Publishing:
    """The publisher's side: one folder per model, a new release per call."""

    def __init__(self, client: Client, root: Path) -> None:
        self.client = client
        self.root = root

    def release(self, name: str, version: str, **notes: object) -> None:
        folder = write_model(self.root / name, files(f"{name} {version}"))
        self.client.publish(folder, name, version, key=PUBLISHER, **notes)  # type: ignore[arg-type]


@pytest.fixture
def pub(publisher: Client, tmp_path: Path) -> Publishing:
    return Publishing(publisher, tmp_path / "work")


class Rounds:
    """Poll rounds at a clock far enough apart that every target is due each time."""

    def __init__(self, client: Client) -> None:
        self.client = client
        self.now = time.time()

    def poll(self, *, hold: bool = True) -> list[NewVersion]:
        self.now += 10 * POLICY.max_backoff
        found = self.client.poll_follows(self.now, policy=POLICY)
        if hold:
            for new in found:
                fetch_version(self.client.ctx, new)
                deliver(self.client.ctx, new)
        return found


def seqs(found: list[NewVersion]) -> list[tuple[str, str, int]]:
    return [(n.reference.name, n.manifest.manifest.version, n.seq) for n in found]


# --- follow, following, unfollow -------------------------------------------------------------


def test_following_a_key_follows_every_model_in_its_index(
    pub: Publishing, consumer: Client
) -> None:
    pub.release(A, "v1")
    pub.release(B, "v1")
    result = consumer.follow(KEY)
    assert result.new and result.models == (A, B) and result.error is None
    listed = consumer.following()
    assert [p.publisher.text for p in listed.publishers] == [KEY]
    assert [(m.name, m.via_index, m.explicit) for m in listed.models] == [
        (A, True, False),
        (B, True, False),
    ]
    assert Follows(consumer.state).known_index(PUBLISHER.public).seq == 2  # type: ignore[union-attr]


def test_following_a_model_that_is_not_published_yet_is_kept(consumer: Client) -> None:
    result = consumer.follow(f"{KEY}/{A}")
    assert result.new and result.error is not None and "no DHT record" in result.error
    assert [m.name for m in consumer.following().models] == [A]


def test_a_follow_names_a_model_not_a_version(consumer: Client) -> None:
    with pytest.raises(UsageError):
        consumer.follow(f"{KEY}/{A}@v1")


def test_unfollowing_one_model_of_a_followed_key_leaves_it_out(
    pub: Publishing, consumer: Client
) -> None:
    pub.release(A, "v1")
    pub.release(B, "v1")
    consumer.follow(KEY)
    assert consumer.unfollow(f"{KEY}/{A}")
    assert [m.name for m in consumer.following().models] == [B]
    assert [n for n, _, _ in seqs(Rounds(consumer).poll())] == [B]
    consumer.follow(f"{KEY}/{A}")  # following it by name again undoes that
    assert [m.name for m in consumer.following().models] == [A, B]
    assert consumer.unfollow(KEY) and consumer.following().models == ()
    assert not consumer.unfollow(KEY)


# --- the poll round ------------------------------------------------------------------------


def test_a_first_poll_gives_the_latest_of_each_model_and_then_nothing(
    pub: Publishing, consumer: Client, swarm: Swarm
) -> None:
    pub.release(A, "v1")
    pub.release(A, "v2")
    pub.release(B, "v1")
    consumer.follow(KEY)
    rounds = Rounds(consumer)
    assert seqs(rounds.poll()) == [(A, "v2", 2), (B, "v1", 1)]
    snapshot = consumer.cache.snapshot_dir(PUBLISHER.public, A, 2)
    assert (snapshot / "model.safetensors").read_bytes() == files(f"{A} v2")["model.safetensors"]
    fetched = swarm.count("fetch_metadata")
    assert rounds.poll() == []
    assert swarm.count("fetch_metadata") == fetched  # unchanged records: no manifest fetched


def test_models_published_later_are_followed_too(pub: Publishing, consumer: Client) -> None:
    pub.release(A, "v1")
    consumer.follow(KEY)
    rounds = Rounds(consumer)
    assert seqs(rounds.poll()) == [(A, "v1", 1)]
    pub.release(B, "v1")
    pub.release(A, "v2")
    assert seqs(rounds.poll()) == [(A, "v2", 2), (B, "v1", 1)]


def test_a_follower_offline_for_a_while_catches_up_on_every_version_in_order(
    pub: Publishing, consumer: Client
) -> None:
    pub.release(A, "v1")
    consumer.follow(f"{KEY}/{A}")
    rounds = Rounds(consumer)
    assert seqs(rounds.poll()) == [(A, "v1", 1)]
    for version in ("v2", "v3", "v4"):
        pub.release(A, version)
    found = rounds.poll()
    assert seqs(found) == [(A, "v2", 2), (A, "v3", 3), (A, "v4", 4)]
    assert [n.latest for n in found] == [False, False, True]
    for seq in (2, 3, 4):
        assert consumer.cache.snapshot_dir(PUBLISHER.public, A, seq).is_dir()


def test_a_version_not_yet_held_is_given_again_after_a_crash(
    pub: Publishing, make_client: Callable[[str], Client]
) -> None:
    pub.release(A, "v1")
    first = make_client("mirror")
    first.follow(KEY)
    before = Rounds(first)
    crashed = before.poll(hold=False)  # fetched nothing, marked nothing
    assert seqs(crashed) == [(A, "v1", 1)]
    first.close()
    again = Rounds(make_client("mirror"))
    again.now = before.now  # the same clock, one round later
    assert seqs(again.poll()) == [(A, "v1", 1)]
    assert again.poll() == []


def test_a_rewritten_history_stops_that_model_and_the_others_go_on(
    pub: Publishing, consumer: Client, swarm: Swarm, tmp_path: Path
) -> None:
    pub.release(A, "v1")
    pub.release(B, "v1")
    consumer.follow(KEY)
    rounds = Rounds(consumer)
    assert len(rounds.poll()) == 2
    held = known(consumer, Reference(PUBLISHER.public, A))
    assert held is not None
    # The key holder signs a seq 2 of A that forgets v1: a rewritten history.
    rewritten = Manifest(
        PUBLISHER.public, A, "v2", 2, int(time.time()), b"\x05" * 20, held_files(consumer)
    )
    publish_forged(swarm, rewritten, tmp_path / "forged")
    pub.release(B, "v2")
    assert seqs(rounds.poll()) == [(B, "v2", 2)]
    poll = Follows(consumer.state).poll(PUBLISHER.public, A)
    assert poll is not None and poll.stopped is not None and "history" in poll.stopped
    assert known(consumer, Reference(PUBLISHER.public, A)) == held
    assert rounds.poll() == []  # stopped: not polled again, B has nothing new
    model = {m.name: m for m in consumer.following().models}[A]
    assert model.poll is not None and model.poll.stopped == poll.stopped


def held_files(client: Client) -> tuple[FileEntry, ...]:
    m = known(client, Reference(PUBLISHER.public, A))
    assert m is not None
    return verify_manifest(m.manifest, PUBLISHER.public, A, now=int(time.time())).manifest.files


def test_failed_lookups_back_off_exponentially_and_a_success_resets(
    pub: Publishing, consumer: Client, swarm: Swarm
) -> None:
    pub.release(A, "v1")
    consumer.follow(f"{KEY}/{A}")
    swarm.dht_offline = True
    now = time.time() + 1
    waits = []
    for _ in range(5):
        assert consumer.poll_follows(now, policy=POLICY) == []
        poll = Follows(consumer.state).poll(PUBLISHER.public, A)
        assert poll is not None and poll.last_error is not None
        waits.append(poll.next_poll - now)
        now = poll.next_poll
    # 200, 400, 800, then capped at max_backoff; each spread by the jitter
    assert all(0.9 <= w / min(100 * 2**i, 1000) <= 1.1 for i, w in enumerate(waits, 1))
    swarm.dht_offline = False
    assert len(consumer.poll_follows(now, policy=POLICY)) == 1
    poll = Follows(consumer.state).poll(PUBLISHER.public, A)
    assert poll is not None and poll.failures == 0 and poll.last_error is None
    assert 90 <= poll.next_poll - now <= 110


def test_polls_spread_by_jitter() -> None:
    rng = random.Random(1)
    waits = {round(POLICY.wait(0, rng), 3) for _ in range(20)}
    assert len(waits) > 10 and all(90 <= w <= 110 for w in waits)


# --- the index: removals, rollback, equivocation, list form ---------------------------------


def put_index(swarm: Swarm, seq: int, names: tuple[str, ...]) -> None:
    bep44 = max((i.seq for i in swarm.stored(PUBLISHER.public, INDEX_SALT)), default=0) + 1
    payload = encode_index(IndexRecord(seq, int(time.time()), names=names))
    swarm.inject(sign_item(PUBLISHER, INDEX_SALT, bep44, payload))


def test_a_name_removed_from_the_index_is_followed_until_the_user_was_told(
    pub: Publishing, consumer: Client, swarm: Swarm
) -> None:
    pub.release(A, "v1")
    pub.release(B, "v1")
    consumer.follow(KEY)
    rounds = Rounds(consumer)
    rounds.poll()
    put_index(swarm, 10, (A,))
    pub.release(B, "v2")
    assert seqs(rounds.poll()) == [(B, "v2", 2)]  # dropped from the index, still followed
    seen = consumer.following(acknowledge=False)
    assert [(m.name, m.removed_at is not None) for m in seen.models] == [(A, False), (B, True)]
    told = consumer.following()
    assert [(m.name, m.removed_at is not None) for m in told.models] == [(A, False), (B, True)]
    assert [m.name for m in consumer.following().models] == [A]
    pub.release(B, "v3")
    assert rounds.poll() == []


def test_an_older_index_replayed_is_rollback_and_the_known_one_stays(
    pub: Publishing, consumer: Client, swarm: Swarm
) -> None:
    pub.release(A, "v1")
    pub.release(B, "v1")
    consumer.follow(KEY)
    before = Follows(consumer.state).known_index(PUBLISHER.public)
    assert before is not None and before.seq == 2
    old = [i for i in swarm.forget(PUBLISHER.public, INDEX_SALT) if b"model-b" not in i.value]
    swarm.inject(old[0])
    with pytest.raises(RollbackError):
        consumer.models(KEY)
    assert Follows(consumer.state).known_index(PUBLISHER.public) == before
    Rounds(consumer).poll()
    poll = Follows(consumer.state).poll(PUBLISHER.public, INDEX_TARGET)
    assert poll is not None and poll.failures == 1 and "seq 2 was seen" in (poll.last_error or "")


def test_another_index_for_the_accepted_seq_is_equivocation(
    pub: Publishing, consumer: Client, swarm: Swarm
) -> None:
    pub.release(A, "v1")
    consumer.follow(KEY)
    swarm.forget(PUBLISHER.public, INDEX_SALT)
    put_index(swarm, 1, (A, B))  # seq 1 again, other names
    with pytest.raises(EquivocationError):
        consumer.models(KEY)


def test_a_list_form_index_is_read_from_its_torrent_and_checked(
    pub: Publishing, consumer: Client, swarm: Swarm, tmp_path: Path
) -> None:
    pub.release(A, "v1")
    pub.release(B, "v1")
    data = encode_name_list((A, B))
    digest = hashlib.sha256(data).digest()
    _, ih = swarm.serve_blob(f"{digest.hex()}.hubless-index", data, tmp_path / "list")
    bep44 = max(i.seq for i in swarm.stored(PUBLISHER.public, INDEX_SALT)) + 1
    record = IndexRecord(5, int(time.time()), list_infohash=ih, list_hash=digest)
    swarm.inject(sign_item(PUBLISHER, INDEX_SALT, bep44, encode_index(record)))
    cat = consumer.models(KEY)
    assert [e.reference.name for e in cat.entries] == [A, B] and cat.index.seq == 5
    assert consumer.cache.index_list_path(digest).read_bytes() == data  # kept and served

    signed = hashlib.sha256(encode_name_list((A, B, C))).digest()
    served = encode_name_list(("evil", A, B))  # what a peer sends instead
    _, bad_ih = swarm.serve_blob(f"{signed.hex()}.hubless-index", served, tmp_path / "bad")
    tampered = IndexRecord(6, int(time.time()), list_infohash=bad_ih, list_hash=signed)
    swarm.inject(sign_item(PUBLISHER, INDEX_SALT, bep44 + 1, encode_index(tampered)))
    with pytest.raises(IntegrityError):
        consumer.models(KEY)
    assert Follows(consumer.state).known_index(PUBLISHER.public).seq == 5  # type: ignore[union-attr]
    assert not consumer.cache.index_list_path(signed).exists()


# --- catalogue and search -------------------------------------------------------------------


def test_a_catalogue_lists_every_model_with_its_latest_release(
    pub: Publishing, consumer: Client
) -> None:
    pub.release(A, "v1", description="A small chat model", license="apache-2.0", tags=("chat",))
    pub.release(A, "v2", description="A small chat model, retrained", tags=("chat", "en"))
    pub.release(B, "v1", description="Speech to text", tags=("audio",))
    cat = consumer.models(KEY).summary()
    assert cat["publisher"] == KEY and cat["index_seq"] == 3 and not cat["stale"]
    rows = {m["name"]: m for m in cat["models"]}
    assert (rows[A]["version"], rows[A]["seq"], rows[A]["versions"]) == ("v2", 2, 2)
    assert rows[A]["tags"] == ["chat", "en"] and rows[A]["license"] is None
    assert rows[B]["description"] == "Speech to text" and rows[B]["yanked"] is None
    assert rows[B]["size"] == sum(len(d) for d in files(f"{B} v1").values())


def test_a_catalogue_lists_a_model_it_cannot_resolve_with_the_error(
    pub: Publishing, consumer: Client, swarm: Swarm
) -> None:
    pub.release(A, "v1")
    pub.release(B, "v1")
    swarm.forget(PUBLISHER.public, B.encode())
    rows = {m["name"]: m for m in consumer.models(KEY).summary()["models"]}
    assert rows[A]["error"] is None and rows[B]["version"] is None
    assert "no DHT record" in rows[B]["error"]


def test_search_finds_known_models_by_name_tag_and_description(
    pub: Publishing, consumer: Client
) -> None:
    pub.release(A, "v1", description="A small chat model", tags=("chat", "en"))
    pub.release(B, "v1", description="Speech to text for meetings", tags=("audio",))
    assert consumer.search("chat") == []  # nothing known here yet: search is local
    consumer.follow(KEY)
    consumer.models(KEY)
    assert [h.reference.name for h in consumer.search("CHAT")] == [A]
    assert [h.matched for h in consumer.search("meetings")] == [("description",)]
    assert [h.reference.name for h in consumer.search("model")] == [A, B]  # names first
    assert [h.reference.name for h in consumer.search("audio speech")] == [B]
    assert consumer.search("audio chat") == []
    hit = consumer.search("audio")[0].summary()
    assert hit["followed"] and hit["version"] == "v1" and hit["reference"].endswith("@v1")
    with pytest.raises(UsageError):
        consumer.search("   ")


def test_search_knows_index_names_before_any_manifest(pub: Publishing, consumer: Client) -> None:
    pub.release(A, "v1", tags=("chat",))
    consumer.follow(KEY)  # reads the index only
    hits = consumer.search("model-a")
    assert [(h.reference.name, h.manifest) for h in hits] == [(A, None)]
    assert consumer.search("chat") == []


def test_history_rewrite_is_among_the_stopping_errors() -> None:
    assert HistoryRewriteError in STOPPING and EquivocationError in STOPPING
    assert RollbackError not in STOPPING  # a replayed old record must not stop a mirror
