"""An in-memory `Network` (registry/net/contract.py) that an attacker can steer.

One `Swarm` is the whole outside world: DHT slots and who serves which torrent. Each client
gets its own `FakeNetwork` view of it (its own torrents, byte counters and seeds), so a
publisher and a consumer in one test behave like two machines.

DHT: a slot per (public key, salt) holds every item ever stored there. `dht_get` answers
like `hubless.net.session.Session.dht_get`: every distinct item, raw and unverified (the
trusted side, `hubless.core.trust`, verifies), [] when the slot is empty. `dht_put` signs
like libtorrent's binding: BEP-44 seq = highest stored + 1.
The attacker can `inject` any `RawItem` (forged, another key's, replayed, equivocating) and
`forget` a slot (DHT nodes churned).

Torrents: seeding registers (torrent bytes, save path) under the v1 infohash; a download
copies the selected files from the first peer that has them, read at transfer time, from
`<save path>/<torrent name>/<path>` (single-file torrents: `<save path>/<name>`). Pieces
are not hashed: a tampered seeder's bytes arrive as if they had passed BitTorrent's SHA-1
piece check (a collision, or a publisher whose torrent and manifest disagree), so the
manifest's SHA-256 is what stands between them and the cache. `fetch_metadata` checks
the info dict against the infohash as the real session does, unless `check_metadata` is
turned off to model a network layer that forgot to.
"""

from __future__ import annotations

import hashlib
import shutil
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from hubless.core import bencode
from hubless.core.bep44 import RawItem, sign_item, verify_item, wrap_value
from hubless.core.errors import (
    IntegrityError,
    NetTimeoutError,
    NoPeersError,
    StoppedError,
    UntrustedDataError,
    UsageError,
)
from hubless.core.keys import PublicKey, SigningKey
from hubless.core.metainfo import Metainfo, parse_metainfo
from hubless.net.contract import Progress, ProgressCallback, PutReport

DHT_NODES = 8  # what a put reports as "stored on"


def info_of(torrent: bytes) -> bytes:
    """The bencoded info dict of a .torrent, as peers send it in metadata exchange."""
    top = bencode.decode(torrent)
    assert isinstance(top, dict) and isinstance(top.get(b"info"), dict)
    return bencode.encode(top[b"info"])


def infohash(torrent: bytes) -> bytes:
    return hashlib.sha1(info_of(torrent)).digest()


@dataclass
class Peer:
    """Somebody serving a torrent: an honest client's seed or an attacker's folder."""

    torrent: bytes
    save_path: Path
    owner: object  # the FakeNetwork that seeds it, or the Swarm itself for an attacker


@dataclass
class Swarm:
    """The outside world every `FakeNetwork` of a test shares, with the attacker's controls."""

    items: dict[tuple[bytes, bytes], list[RawItem]] = field(default_factory=dict)
    peers: dict[bytes, list[Peer]] = field(default_factory=dict)
    metadata: dict[bytes, bytes] = field(default_factory=dict)  # attacker-served info dicts
    check_metadata: bool = True
    dht_offline: bool = False
    failing_puts: int = 0  # the next N puts time out without storing anything
    calls: list[tuple[str, bytes]] = field(default_factory=list)  # (operation, infohash)
    web_seeds: dict[bytes, tuple[object, ...]] = field(default_factory=dict)  # last download's

    def node(self) -> FakeNetwork:
        return FakeNetwork(self)

    # --- the DHT --------------------------------------------------------------------------

    def inject(
        self, item: RawItem, *, key: PublicKey | None = None, salt: bytes | None = None
    ) -> None:
        """Store `item` as some DHT node would serve it for the lookup (key, salt)."""
        slot = (key.raw if key else item.public_key, item.salt if salt is None else salt)
        self.items.setdefault(slot, []).append(item)

    def forget(self, key: PublicKey, salt: bytes) -> list[RawItem]:
        """Every node holding (key, salt) left the DHT; return what they held (to replay)."""
        return self.items.pop((key.raw, salt), [])

    def stored(self, key: PublicKey, salt: bytes) -> list[RawItem]:
        return list(self.items.get((key.raw, salt), []))

    # --- torrents -------------------------------------------------------------------------

    def serve(self, torrent: bytes, save_path: Path, *, exclusive: bool = False) -> bytes:
        """Seed `torrent` from `save_path` as an attacker; `exclusive` drops every other peer."""
        ih = infohash(torrent)
        if exclusive:
            self.peers[ih] = []
        self.peers.setdefault(ih, []).append(Peer(torrent, Path(save_path), self))
        return ih

    def serve_blob(self, name: str, data: bytes, folder: Path) -> tuple[bytes, bytes]:
        """Write `data` to `folder/name` and seed it as a blob torrent; (torrent, infohash)."""
        from hubless.net.torrents import create_blob_torrent

        folder.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(data)
        torrent, ih = create_blob_torrent(name, data)
        self.serve(torrent, folder)
        return torrent, ih

    def serve_metadata(self, ih: bytes, info: bytes) -> None:
        """Answer metadata requests for `ih` with `info`, whatever it hashes to."""
        self.metadata[ih] = info

    def seeders(self, ih: bytes) -> list[Peer]:
        return list(self.peers.get(ih, []))

    def count(self, operation: str, ih: bytes | None = None) -> int:
        return sum(1 for op, h in self.calls if op == operation and (ih is None or h == ih))


@dataclass
class _Torrent:
    meta: Metainfo
    torrent: bytes
    save_path: Path
    seeding: bool
    priorities: list[int] | None = None
    on_progress: ProgressCallback | None = None
    downloaded: int = 0
    finished: bool = False


class FakeNetwork:
    """One client's view of the `Swarm`: implements `hubless.net.contract.Network`."""

    def __init__(self, swarm: Swarm) -> None:
        self.swarm = swarm
        self.torrents: dict[bytes, _Torrent] = {}
        self.closed = False

    # --- DHT ------------------------------------------------------------------------------

    def dht_get(self, key: PublicKey, salt: bytes, timeout: float = 10.0) -> list[RawItem]:
        """Every distinct stored item, raw: as if different nodes held different ones."""
        return self._items(key, salt, timeout)

    def _items(self, key: PublicKey, salt: bytes, timeout: float) -> list[RawItem]:
        if self.swarm.dht_offline:
            raise NetTimeoutError(f"DHT lookup of {salt!r} did not finish in {timeout:g}s")
        found: dict[tuple[int, bytes, bytes], RawItem] = {}
        for raw in self.swarm.items.get((key.raw, salt), []):
            found.setdefault((raw.seq, raw.value, raw.signature), raw)
        return sorted(found.values(), key=lambda item: item.seq, reverse=True)

    def dht_get_direct(self, key: PublicKey, salt: bytes, timeout: float = 10.0) -> list[RawItem]:
        """The same answer as `dht_get` (the swarm has no silent nodes to pass over)."""
        self.swarm.calls.append(("get_direct", salt))
        return self._items(key, salt, timeout)

    def dht_put_signed(
        self, item: RawItem, timeout: float = 10.0, *, min_current: int | None = None
    ) -> PutReport:
        """Like a BEP-44 node: never over a validly signed higher seq; back off when current."""
        verify_item(item, PublicKey(item.public_key), item.salt)
        if self.swarm.dht_offline:
            raise NetTimeoutError(f"no DHT node stored {item.salt!r} within {timeout:g}s")
        self.swarm.calls.append(("put_signed", item.salt))
        slot = self.swarm.items.setdefault((item.public_key, item.salt), [])
        newer = 0
        for held in slot:
            if held.seq > item.seq:
                try:
                    verify_item(held, PublicKey(item.public_key), item.salt)
                except UntrustedDataError:
                    continue
                newer = DHT_NODES
        current = DHT_NODES if item in slot else 0
        if newer or (min_current is not None and current >= min_current):
            return PutReport(0, 0, current, newer, skipped=True)
        if item not in slot:
            slot.append(item)
        return PutReport(DHT_NODES, DHT_NODES, current)

    def dht_put(self, key: SigningKey, salt: bytes, payload: bytes, timeout: float = 10.0) -> int:
        wrap_value(payload)
        if self.swarm.dht_offline or self.swarm.failing_puts:
            self.swarm.failing_puts = max(0, self.swarm.failing_puts - 1)
            raise NetTimeoutError(f"no DHT node stored {salt!r} within {timeout:g}s")
        slot = self.swarm.items.setdefault((key.public.raw, salt), [])
        seq = max((item.seq for item in slot), default=0) + 1
        slot.append(sign_item(key, salt, seq, payload))
        return DHT_NODES

    # --- torrents -------------------------------------------------------------------------

    def seed(
        self,
        torrent_bytes: bytes,
        save_path: str | Path,
        *,
        trust_files: bool = False,
        upload_limit: int = 0,
    ) -> bytes:
        meta = parse_metainfo(torrent_bytes)
        ih = meta.infohash_v1
        self.swarm.calls.append(("seed", ih))
        if ih not in self.torrents:
            self.torrents[ih] = _Torrent(meta, torrent_bytes, Path(save_path), True, finished=True)
            self.swarm.peers.setdefault(ih, []).append(Peer(torrent_bytes, Path(save_path), self))
        return ih

    def download(
        self,
        source: bytes,
        save_path: str | Path,
        *,
        file_priorities: Sequence[int] | None = None,
        on_progress: ProgressCallback | None = None,
        web_seeds: Sequence[object] = (),  # no HTTP here: web seeds are tested on loopback
    ) -> bytes:
        if len(source) == 20:
            raise UsageError("this fake needs the .torrent bytes, not only an infohash")
        meta = parse_metainfo(source)
        ih = meta.infohash_v1
        self.swarm.calls.append(("download", ih))
        self.swarm.web_seeds[ih] = tuple(web_seeds)
        existing = self.torrents.get(ih)
        if existing is not None:  # like libtorrent: the torrent already in the session wins
            if on_progress is not None:
                existing.on_progress = on_progress
            return ih
        if file_priorities is not None and len(file_priorities) != len(meta.files):
            raise UsageError("file priorities do not match the torrent's files")
        self.torrents[ih] = _Torrent(
            meta,
            source,
            Path(save_path),
            False,
            list(file_priorities) if file_priorities is not None else None,
            on_progress,
        )
        return ih

    def set_file_priorities(self, ih: bytes, priorities: Sequence[int]) -> None:
        self._get(ih).priorities = list(priorities)

    def wait_finished(
        self,
        ih: bytes,
        timeout: float,
        *,
        cancel: threading.Event | None = None,
        on_written: Callable[[list[int]], None] | None = None,
    ) -> Progress:
        t = self._get(ih)
        if cancel is not None and cancel.is_set():
            raise StoppedError(f"the download of {ih.hex()} was stopped")
        if not t.finished:
            self._transfer(ih, t, timeout)
            if on_written is not None:  # every wanted file at once, as if written early
                wanted = [
                    i
                    for i, f in enumerate(t.meta.files)
                    if not f.pad and (t.priorities is None or t.priorities[i] > 0)
                ]
                on_written(wanted)
        progress = self.progress(ih)
        if t.on_progress is not None:
            t.on_progress(progress)
        return progress

    def _transfer(self, ih: bytes, t: _Torrent, timeout: float) -> None:
        peers = [p for p in self.swarm.peers.get(ih, []) if p.owner is not self]
        if not peers:
            raise NoPeersError(f"no peer for {ih.hex()} within {timeout:g}s")
        landings = _landings(t.torrent)
        for i, f in enumerate(t.meta.files):
            if f.pad or (t.priorities is not None and t.priorities[i] == 0):
                continue
            rel = landings[i]
            target = t.save_path / rel
            source = next((p.save_path / rel for p in peers if (p.save_path / rel).is_file()), None)
            if source is None:
                raise NetTimeoutError(f"{ih.hex()}: no peer has {f.path!r} after {timeout:g}s")
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, target)
            t.downloaded += target.stat().st_size
        t.finished = True

    def progress(self, ih: bytes) -> Progress:
        t = self._get(ih)
        wanted = sum(
            f.size
            for i, f in enumerate(t.meta.files)
            if not f.pad and (t.priorities is None or t.priorities[i] > 0)
        )
        peers = sum(1 for p in self.swarm.peers.get(ih, []) if p.owner is not self)
        return Progress(ih, wanted if t.finished else 0, wanted, 0.0, peers, t.finished)

    def fetch_metadata(self, ih: bytes, timeout: float = 30.0) -> bytes:
        self.swarm.calls.append(("fetch_metadata", ih))
        info = self.swarm.metadata.get(ih)
        if info is None:
            mine = self.torrents.get(ih)
            peers = [p for p in self.swarm.peers.get(ih, []) if p.owner is not self]
            if mine is None and not peers:
                raise NoPeersError(f"no peer for {ih.hex()} within {timeout:g}s")
            info = info_of(mine.torrent if mine is not None else peers[0].torrent)
        if self.swarm.check_metadata and hashlib.sha1(info).digest() != ih:
            raise IntegrityError(f"metadata received for {ih.hex()} does not hash to it")
        return b"d4:info" + info + b"e"

    def dht_peers(self, ih: bytes, timeout: float = 10.0) -> list[tuple[str, int]]:
        """Each seeder as a made-up loopback endpoint (the fake swarm has no addresses)."""
        if self.swarm.dht_offline:
            raise NetTimeoutError(f"peer lookup of {ih.hex()} did not end in {timeout:g}s")
        return [("127.0.0.1", 7000 + i) for i, _ in enumerate(self.swarm.seeders(ih))]

    def payload_downloaded(self, ih: bytes) -> int:
        return self._get(ih).downloaded

    def remove(self, ih: bytes, *, delete_files: bool = False) -> None:
        t = self.torrents.pop(ih, None)
        if t is None:
            return
        self.swarm.calls.append(("remove", ih))
        self.swarm.peers[ih] = [p for p in self.swarm.peers.get(ih, []) if p.owner is not self]
        if delete_files:
            shutil.rmtree(t.save_path / _landings(t.torrent)[0].parts[0], ignore_errors=True)

    def close(self) -> None:
        for ih in list(self.torrents):
            self.remove(ih)
        self.closed = True

    def _get(self, ih: bytes) -> _Torrent:
        t = self.torrents.get(ih)
        if t is None:
            raise UsageError(f"torrent {ih.hex()} is not in this session")
        return t


def _landings(torrent: bytes) -> list[Path]:
    """Where each file of a torrent lands below the save path, as libtorrent 2.1 decides.

    Measured: libtorrent drops '/' and '\\' inside a path segment and turns '..' into '_';
    so a segment `b"a/b"` lands at `a` + `b` joined, not in a folder `a`.
    """
    info = bencode.decode(info_of(torrent))
    assert isinstance(info, dict)
    name = _segment(info[b"name"])
    if b"files" not in info:
        return [Path(name)]
    return [Path(name, *(_segment(s) for s in f[b"path"])) for f in info[b"files"]]


def _segment(raw: object) -> str:
    assert isinstance(raw, bytes)
    text = raw.decode("utf-8").replace("/", "").replace("\\", "")
    return "_" if text == ".." else text
