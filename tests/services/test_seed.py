"""Keeping records alive: republishing must never push an older release over a newer one."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from hubless.services.client import Client
from hubless.services.seed import republish

from .conftest import NAME, PUBLISHER, REF, V1_FILES, write_model
from .fakenet import Swarm


def test_republish_puts_a_forgotten_record_back(
    swarm: Swarm, publisher: Client, consumer: Client, tmp_path: Path
) -> None:
    publisher.publish(write_model(tmp_path / "m", V1_FILES), NAME, "v1", key=PUBLISHER)
    swarm.forget(PUBLISHER.public, NAME.encode())  # nodes dropped it after two hours
    assert republish(publisher.ctx, PUBLISHER) == 1
    assert consumer.resolve(REF).target.manifest.version == "v1"


def test_republish_leaves_a_newer_release_from_another_machine_alone(
    swarm: Swarm, make_client: Callable[[str], Client], consumer: Client, tmp_path: Path
) -> None:
    laptop, workstation = make_client("laptop"), make_client("workstation")
    laptop.publish(write_model(tmp_path / "m", V1_FILES), NAME, "v1", key=PUBLISHER)
    changed = {**V1_FILES, "config.json": b'{"hidden_size": 128}\n'}
    workstation.publish(write_model(tmp_path / "m2", changed), NAME, "v2", key=PUBLISHER)
    assert republish(laptop.ctx, PUBLISHER) == 0  # the laptop only knows v1
    assert consumer.resolve(REF).target.manifest.version == "v2"


def test_republish_stops_when_our_own_key_equivocates(
    swarm: Swarm, publisher: Client, tmp_path: Path
) -> None:
    """Two records for one seq under our key: another holder of the key is publishing."""
    from hubless.core.bep44 import sign_item
    from hubless.core.record import Record, encode_record

    publisher.publish(write_model(tmp_path / "m", V1_FILES), NAME, "v1", key=PUBLISHER)
    rogue = Record(1, "v1", b"\x01" * 20, b"\x02" * 32, 1_700_000_000)
    swarm.inject(sign_item(PUBLISHER, NAME.encode(), 99, encode_record(rogue)))
    assert republish(publisher.ctx, PUBLISHER) == 0
