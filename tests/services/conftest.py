"""Clients of one in-memory swarm, fixed keys, and helpers to forge what a network can serve."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import pytest
from hubless.config import Config
from hubless.core.bep44 import RawItem, sign_item
from hubless.core.keys import SigningKey
from hubless.core.manifest import Manifest, manifest_hash, sign_manifest
from hubless.core.record import Record, encode_record
from hubless.core.refs import Reference
from hubless.services.client import Client
from hubless.store.state import KnownModel

from .fakenet import Swarm

# Fixed keys: generated data must not drift between runs.
PUBLISHER = SigningKey(hashlib.sha256(b"hubless services test: publisher").digest())
MALLORY = SigningKey(hashlib.sha256(b"hubless services test: mallory").digest())
NAME = "tiny-model"
REF = Reference(PUBLISHER.public, NAME)

V1_FILES = {
    "config.json": b'{"hidden_size": 64, "layers": 2}\n',
    "model.safetensors": bytes(range(256)) * 200,  # 51,200 bytes
    "tokenizer/vocab.txt": b"hello\nworld\n",
}


def write_model(folder: Path, files: dict[str, bytes]) -> Path:
    """A model folder holding exactly `files`."""
    for rel, data in files.items():
        path = folder / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return folder


@pytest.fixture
def swarm() -> Swarm:
    return Swarm()


@pytest.fixture
def make_client(tmp_path: Path, swarm: Swarm) -> Iterator[Callable[[str], Client]]:
    """`make_client(label)`: a client with its own home under tmp_path, on the shared swarm.

    The same label twice gives a second client on the same home (a restarted process).
    """
    made: list[Client] = []

    def make(label: str) -> Client:
        client = Client(Config.resolve({}, home=tmp_path / label), network=swarm.node())
        made.append(client)
        return client

    yield make
    for client in made:
        client.close()


@pytest.fixture
def publisher(make_client: Callable[[str], Client]) -> Client:
    return make_client("publisher")


@pytest.fixture
def consumer(make_client: Callable[[str], Client]) -> Client:
    return make_client("consumer")


# --- forging: what a key holder (or an attacker with old signed items) can put out there ---


def next_bep44_seq(swarm: Swarm, name: str = NAME) -> int:
    """A BEP-44 seq above everything stored, so the DHT serves the item that carries it."""
    return max((i.seq for i in swarm.stored(PUBLISHER.public, name.encode())), default=0) + 1


def record_item(
    swarm: Swarm,
    seq: int,
    version: str,
    manifest_infohash: bytes,
    manifest_digest: bytes,
    *,
    key: SigningKey = PUBLISHER,
    name: str = NAME,
    published_at: int | None = None,
) -> RawItem:
    """A record signed by `key`, carrying a BEP-44 seq that wins the DHT lookup."""
    record = Record(
        seq,
        version,
        manifest_infohash,
        manifest_digest,
        int(time.time()) if published_at is None else published_at,
    )
    return sign_item(key, name.encode(), next_bep44_seq(swarm, name), encode_record(record))


@dataclass(frozen=True)
class Served:
    """A signed manifest some peer serves: its bytes, hash and manifest-torrent infohash."""

    data: bytes
    hash: bytes
    infohash: bytes


def serve_manifest(
    swarm: Swarm, manifest: Manifest, folder: Path, key: SigningKey = PUBLISHER
) -> Served:
    """Sign `manifest` with `key` and seed it as a manifest torrent from `folder`."""
    data = sign_manifest(manifest, key)
    digest = manifest_hash(data)
    _, ih = swarm.serve_blob(f"{digest.hex()}.hubless-manifest", data, folder)
    return Served(data, digest, ih)


def publish_forged(
    swarm: Swarm, manifest: Manifest, folder: Path, key: SigningKey = PUBLISHER
) -> Served:
    """Serve a signed manifest and put a record naming it above every other record."""
    served = serve_manifest(swarm, manifest, folder, key)
    m = manifest
    swarm.inject(
        record_item(swarm, m.seq, m.version, served.infohash, served.hash, key=key, name=m.name)
    )
    return served


def known(client: Client, ref: Reference = REF) -> KnownModel | None:
    return client.state.known(ref.publisher, ref.name)


def rewrite(manifest: Manifest, **changes: object) -> Manifest:
    return replace(manifest, **changes)  # type: ignore[arg-type]
