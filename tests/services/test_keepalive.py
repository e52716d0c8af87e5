"""Keeping records alive (spec §8.5), one rule per test, over the in-memory swarm.

Whoever verified a record and seeds its model re-puts the exact signed item it kept: never
an item older than the newest it verified, never over a newer record it finds, not when the
DHT already holds it. A re-putter that holds an older record cannot roll anyone back.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from hubless.core.bep44 import sign_item
from hubless.core.errors import RollbackError
from hubless.core.index import INDEX_SALT
from hubless.core.keys import SigningKey
from hubless.core.record import Record, encode_record
from hubless.services import keepalive
from hubless.services.client import Client
from hubless.services.keepalive import Target
from hubless.store import keepalive as store

from .conftest import NAME, PUBLISHER, REF, V1_FILES, known, write_model
from .fakenet import Swarm

SALT = NAME.encode()
MODEL = Target(PUBLISHER.public, NAME)
INDEX = Target(PUBLISHER.public, None)


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    return write_model(tmp_path / "work" / NAME, V1_FILES)


def publish(publisher: Client, folder: Path, version: str) -> None:
    (folder / "config.json").write_text(f'{{"version": "{version}"}}\n')
    publisher.publish(folder, NAME, version, key=PUBLISHER)


def kept(client: Client, salt: bytes = SALT) -> store.KeptItem:
    item = store.kept_item(client.state, PUBLISHER.public, salt)
    assert item is not None
    return item


def puts(swarm: Swarm) -> int:
    return swarm.count("put_signed")


# --- what is kept -----------------------------------------------------------------------------


def test_publish_keeps_the_exact_items_it_put(
    swarm: Swarm, publisher: Client, folder: Path
) -> None:
    publish(publisher, folder, "v1")
    (record,) = swarm.stored(PUBLISHER.public, SALT)
    assert kept(publisher).item == record and kept(publisher).own_seq == 1
    (index,) = swarm.stored(PUBLISHER.public, INDEX_SALT)
    assert kept(publisher, INDEX_SALT).item == index


def test_resolve_keeps_the_verified_item(
    swarm: Swarm, publisher: Client, consumer: Client, folder: Path
) -> None:
    publish(publisher, folder, "v1")
    publish(publisher, folder, "v2")
    consumer.resolve(REF)
    newest = max(swarm.stored(PUBLISHER.public, SALT), key=lambda i: i.seq)
    assert kept(consumer).item == newest and kept(consumer).own_seq == 2


def test_only_seeded_models_are_kept_alive(
    publisher: Client, consumer: Client, folder: Path
) -> None:
    publish(publisher, folder, "v1")
    consumer.resolve(REF)  # verified, but only the manifest is held: not kept alive
    assert keepalive.targets(consumer.ctx) == []
    consumer.pull(REF)
    assert keepalive.targets(consumer.ctx) == [MODEL, INDEX]
    assert keepalive.targets(publisher.ctx, skip=PUBLISHER.public) == []


# --- re-putting ---------------------------------------------------------------------------------


def test_a_forgotten_record_is_put_again_verbatim_after_a_restart(
    swarm: Swarm,
    publisher: Client,
    make_client: Callable[[str], Client],
    folder: Path,
) -> None:
    publish(publisher, folder, "v1")
    publish(publisher, folder, "v2")
    mirror = make_client("mirror")
    mirror.pull(REF)
    original = max(swarm.stored(PUBLISHER.public, SALT), key=lambda i: i.seq)
    mirror.close()
    swarm.forget(PUBLISHER.public, SALT)  # every node restarted: the DHT has nothing
    restarted = make_client("mirror")  # same home: the item comes from the store
    outcome = keepalive.check(restarted.ctx, MODEL)
    assert outcome.outcome == "put", outcome
    assert swarm.stored(PUBLISHER.public, SALT) == [original]  # same seq, value, signature
    fresh = make_client("fresh")
    resolution = fresh.history(REF)
    assert resolution.latest.manifest.version == "v2"
    assert [h.version for h in resolution.latest.manifest.history] == ["v1"]
    health = store.health(restarted.state)[(PUBLISHER.public.text, SALT)]
    assert (health.outcome, health.stored, health.seq) == ("put", 8, original.seq)


def test_the_check_looks_up_with_the_lookup_that_passes_over_departed_nodes(
    swarm: Swarm, publisher: Client, consumer: Client, folder: Path
) -> None:
    from hubless.core.errors import NetTimeoutError

    publish(publisher, folder, "v1")
    consumer.pull(REF)
    swarm.forget(PUBLISHER.public, SALT)

    def waits_on_departed_nodes(*args: object, **kwargs: object) -> None:
        raise NetTimeoutError("libtorrent's lookup waited 15 s on a node that left")

    consumer.ctx.network.dht_get = waits_on_departed_nodes  # type: ignore[method-assign,assignment]
    assert keepalive.check(consumer.ctx, MODEL).outcome == "put"
    assert keepalive.check(consumer.ctx, INDEX).outcome == "current"  # found, adopted
    assert swarm.count("get_direct") == 2


def test_a_record_the_dht_holds_is_not_put_again(
    swarm: Swarm, publisher: Client, consumer: Client, folder: Path
) -> None:
    publish(publisher, folder, "v1")
    consumer.pull(REF)
    outcome = keepalive.check(consumer.ctx, MODEL)
    assert outcome.outcome == "current" and outcome.report is not None
    assert outcome.report.already_current >= keepalive.MIN_CURRENT
    assert len(swarm.stored(PUBLISHER.public, SALT)) == 1


def test_an_older_record_cannot_roll_back_a_client_that_saw_the_newer(
    swarm: Swarm,
    publisher: Client,
    make_client: Callable[[str], Client],
    folder: Path,
) -> None:
    publish(publisher, folder, "v1")
    stale_mirror = make_client("stale-mirror")
    stale_mirror.pull(REF)  # it holds v1 only
    publish(publisher, folder, "v2")
    watcher = make_client("watcher")
    watcher.resolve(REF)  # saw v2
    swarm.forget(PUBLISHER.public, SALT)
    assert keepalive.check(stale_mirror.ctx, MODEL).outcome == "put"  # v1, its newest
    with pytest.raises(RollbackError):
        watcher.resolve(REF)
    assert known(watcher).seq == 2  # type: ignore[union-attr]


def test_a_newer_record_found_is_verified_and_kept_never_put_over(
    swarm: Swarm,
    publisher: Client,
    make_client: Callable[[str], Client],
    folder: Path,
) -> None:
    publish(publisher, folder, "v1")
    mirror = make_client("mirror")
    mirror.pull(REF)
    publish(publisher, folder, "v2")
    before = swarm.stored(PUBLISHER.public, SALT)
    outcome = keepalive.check(mirror.ctx, MODEL)
    assert outcome.outcome == "newer", outcome
    assert puts(swarm) == 0 and swarm.stored(PUBLISHER.public, SALT) == before
    assert known(mirror).seq == 2  # type: ignore[union-attr]
    assert kept(mirror).own_seq == 2  # the next check keeps v2 alive


def test_a_newer_record_under_a_lower_bep44_seq_is_not_put_over(
    swarm: Swarm,
    publisher: Client,
    make_client: Callable[[str], Client],
    folder: Path,
) -> None:
    """Nodes forgot v1 and v2; the publisher put v3, which got BEP-44 seq 1 again. Our v2
    item has BEP-44 seq 2 and nodes would take it: only the record's own seq tells."""
    publish(publisher, folder, "v1")
    publish(publisher, folder, "v2")
    mirror = make_client("mirror")
    mirror.pull(REF)
    assert kept(mirror).item.seq == 2
    swarm.forget(PUBLISHER.public, SALT)
    publish(publisher, folder, "v3")
    (v3,) = swarm.stored(PUBLISHER.public, SALT)
    assert v3.seq == 1
    outcome = keepalive.check(mirror.ctx, MODEL)
    assert outcome.outcome == "newer", outcome
    assert puts(swarm) == 0 and swarm.stored(PUBLISHER.public, SALT) == [v3]
    assert kept(mirror).item == v3


def test_a_kept_item_older_than_the_known_revision_is_never_put(
    swarm: Swarm, publisher: Client, consumer: Client, folder: Path
) -> None:
    publish(publisher, folder, "v1")
    consumer.pull(REF)
    v1_item = kept(consumer).item
    publish(publisher, folder, "v2")
    consumer.pull(REF)
    # A store that somehow kept only v1's item (say a crash between two writes).
    with consumer.state.transaction() as db:
        db.execute(
            "UPDATE kept_items SET own_seq=1, seq=?, value=?, signature=?",
            (v1_item.seq, v1_item.value, v1_item.signature),
        )
    swarm.forget(PUBLISHER.public, SALT)
    outcome = keepalive.check(consumer.ctx, MODEL)
    assert outcome.outcome == "held-back", outcome
    assert puts(swarm) == 0 and swarm.stored(PUBLISHER.public, SALT) == []


def test_equivocation_under_the_publishers_key_holds_the_put_back(
    swarm: Swarm, publisher: Client, consumer: Client, folder: Path
) -> None:
    publish(publisher, folder, "v1")
    consumer.pull(REF)
    rogue = Record(1, "v1", b"\x01" * 20, b"\x02" * 32, 1_700_000_000)
    swarm.inject(sign_item(PUBLISHER, SALT, 99, encode_record(rogue)))
    outcome = keepalive.check(consumer.ctx, MODEL)
    assert outcome.outcome == "held-back" and "two different" in outcome.message
    assert puts(swarm) == 0


def test_junk_under_the_key_does_not_stop_the_put(
    swarm: Swarm, publisher: Client, consumer: Client, folder: Path
) -> None:
    publish(publisher, folder, "v1")
    consumer.pull(REF)
    swarm.forget(PUBLISHER.public, SALT)
    mallory = SigningKey(b"\x07" * 32)
    swarm.inject(sign_item(mallory, SALT, 50, b"junk"), key=PUBLISHER.public)
    assert keepalive.check(consumer.ctx, MODEL).outcome == "put"


def test_the_publisher_index_is_kept_alive_too(
    swarm: Swarm, publisher: Client, consumer: Client, folder: Path
) -> None:
    publish(publisher, folder, "v1")
    consumer.pull(REF)
    assert keepalive.check(consumer.ctx, INDEX).outcome == "current"  # adopted from the DHT
    (index,) = swarm.forget(PUBLISHER.public, INDEX_SALT)
    assert kept(consumer, INDEX_SALT).item == index
    assert keepalive.check(consumer.ctx, INDEX).outcome == "put"
    assert swarm.stored(PUBLISHER.public, INDEX_SALT) == [index]


def test_without_a_verbatim_put_the_check_says_so(
    swarm: Swarm, publisher: Client, consumer: Client, folder: Path
) -> None:
    from hubless.core.errors import UsageError

    publish(publisher, folder, "v1")
    consumer.pull(REF)
    swarm.forget(PUBLISHER.public, SALT)

    def cannot(*args: object, **kwargs: object) -> None:
        raise UsageError("this build cannot put an item signed by another key")

    consumer.ctx.network.dht_put_signed = cannot  # type: ignore[method-assign,assignment]
    outcome = keepalive.check(consumer.ctx, MODEL)
    assert outcome.outcome == "unavailable" and "cannot put" in outcome.message


def test_the_key_holder_republish_keeps_its_new_item(
    swarm: Swarm, publisher: Client, folder: Path
) -> None:
    from hubless.services.seed import republish

    publish(publisher, folder, "v1")
    first = kept(publisher).item
    assert republish(publisher.ctx, PUBLISHER) == 1
    again = kept(publisher).item
    assert again.seq == first.seq + 1 and again.value == first.value  # same record, re-signed
    assert again in swarm.stored(PUBLISHER.public, SALT)
