"""The one seam between the use cases and the network (STYLE.md §3); no libtorrent here.

`Network` is what services may ask of the outside world: DHT items and torrents.
`hubless.net.session.Session` implements it with libtorrent; unit tests plug in an in-memory
network that can also misbehave. Adapters hand back DHT items *raw*, exactly as nodes sent
them: verification is the trusted side's job (`hubless.core.trust`), never the adapter's.
`Torrents` makes the torrents a release is made of (hashing files, no network).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import astuple, dataclass, field
from pathlib import Path
from typing import Protocol

from ..core.bep44 import RawItem
from ..core.keys import PublicKey, SigningKey
from ..core.webseeds import WebSeed

Endpoint = tuple[str, int]

__all__ = [
    "ContentTorrent",
    "Endpoint",
    "Network",
    "Progress",
    "ProgressCallback",
    "PutReport",
    "RawItem",
    "Torrents",
    "Traffic",
    "format_endpoint",
]


def format_endpoint(host: str, port: int) -> str:
    """`host:port`, with IPv6 addresses in brackets as libtorrent expects."""
    return f"[{host}]:{port}" if ":" in host and not host.startswith("[") else f"{host}:{port}"


@dataclass(frozen=True)
class Progress:
    """A snapshot of one torrent's transfer, copied out of the network layer."""

    infohash: bytes
    done: int  # bytes of wanted pieces verified on disk
    wanted: int  # bytes wanted (all files, or the prioritised ones)
    rate: float  # payload bytes per second, downloading
    peers: int
    finished: bool
    uploaded: int = 0  # payload bytes uploaded, all sessions together (kept in resume data)
    seeds: int = 0  # connected peers (and web seeds) that hold every piece

    @property
    def eta(self) -> float | None:
        """Seconds to go at the current rate, or None when stalled."""
        if self.finished:
            return 0.0
        return (self.wanted - self.done) / self.rate if self.rate > 0 else None


ProgressCallback = Callable[[Progress], None]


@dataclass(frozen=True)
class Traffic:
    """Datagrams and bytes one operation sent and received; `dropped` counts received
    datagrams that were ignored (malformed, oversized, unknown transaction, wrong sender)."""

    packets_sent: int = 0
    bytes_sent: int = 0
    packets_received: int = 0
    bytes_received: int = 0
    dropped: int = 0

    def __add__(self, other: Traffic) -> Traffic:
        return Traffic(*(a + b for a, b in zip(astuple(self), astuple(other), strict=True)))

    def __sub__(self, other: Traffic) -> Traffic:
        return Traffic(*(a - b for a, b in zip(astuple(self), astuple(other), strict=True)))


@dataclass(frozen=True)
class PutReport:
    """What a verbatim put did.

    `stored`: nodes that acknowledged it; `queried`: nodes it was sent to; `already_current`:
    how many of the k closest held this seq before; `newer`: how many answers held a validly
    signed higher seq (then nothing is put, and `newest` is the highest such item);
    `refused`: put errors (BEP-44 302 when a node holds a higher seq); `skipped`: no put was
    sent (back-off, or a newer item found); `lookup_queries`: gets of the traversal.
    """

    stored: int
    queried: int
    already_current: int
    newer: int = 0
    refused: int = 0
    skipped: bool = False
    lookup_queries: int = 0
    newest: RawItem | None = None
    traffic: Traffic = field(default_factory=Traffic)


@dataclass(frozen=True)
class ContentTorrent:
    """A content torrent and the per-file facts the manifest signs (spec §5.6)."""

    torrent_bytes: bytes
    infohash_v1: bytes
    file_sha256: Mapping[str, bytes]
    sizes: Mapping[str, int]
    piece_length: int


class Network(Protocol):
    """DHT items and torrents (spec §4, §5.6). Errors: `NetworkError` subclasses."""

    def dht_get(self, key: PublicKey, salt: bytes, timeout: float = ...) -> list[RawItem]:
        """Every distinct item a BEP-44 get met for (key, salt), unverified; [] if none.

        Raises `NetTimeoutError` when the lookup did not finish in `timeout` seconds.
        """
        ...

    def dht_get_direct(self, key: PublicKey, salt: bytes, timeout: float = ...) -> list[RawItem]:
        """As `dht_get`, from a lookup that passes over a node silent for a second instead of
        waiting for it (the keep-alive check's get, spec §8.5: under churn, libtorrent's
        lookup waits up to 15 s on a departed node). Raises `NetTimeoutError` when no node
        answered within `timeout` seconds.
        """
        ...

    def dht_put(self, key: SigningKey, salt: bytes, payload: bytes, timeout: float = ...) -> int:
        """Sign and store `payload` as the value of (key, salt); return nodes that stored it."""
        ...

    def dht_put_signed(
        self, item: RawItem, timeout: float = ..., *, min_current: int | None = ...
    ) -> PutReport:
        """Store an item exactly as its publisher signed it (BEP-44 re-announce, spec §8.5).

        Never over a newer item; skipped when `min_current` of the closest nodes already hold
        its seq. Raises an `UntrustedDataError` for an item whose signature fails.
        """
        ...

    def seed(
        self,
        torrent_bytes: bytes,
        save_path: str | Path,
        *,
        trust_files: bool = ...,
        upload_limit: int = ...,
    ) -> bytes: ...

    def download(
        self,
        source: bytes,
        save_path: str | Path,
        *,
        file_priorities: Sequence[int] | None = ...,
        on_progress: ProgressCallback | None = ...,
        web_seeds: Sequence[WebSeed] = ...,
    ) -> bytes:
        """Fetch a torrent from peers and from `web_seeds` (spec §5.8) into `save_path`."""
        ...

    def set_file_priorities(self, ih: bytes, priorities: Sequence[int]) -> None:
        """Change a running download's file priorities (0 = skip, 1..7, higher first)."""
        ...

    def wait_finished(
        self,
        ih: bytes,
        timeout: float,
        *,
        cancel: threading.Event | None = ...,
        on_written: Callable[[list[int]], None] | None = ...,
    ) -> Progress:
        """Block until every wanted piece is verified and on disk; fails when no peer came
        within `timeout` seconds or no byte arrived for that long (`NoPeersError`,
        `NetTimeoutError`); raises `StoppedError` soon after `cancel` is set (the torrent
        stays added). `on_written` meanwhile gets the indices of wanted files complete on
        disk, each once (for hashing them early)."""
        ...

    def progress(self, ih: bytes) -> Progress: ...

    def fetch_metadata(self, ih: bytes, timeout: float = ...) -> bytes: ...

    def payload_downloaded(self, ih: bytes) -> int: ...

    def dht_peers(self, ih: bytes, timeout: float = ...) -> list[Endpoint]:
        """The peers one BEP-5 `get_peers` lookup finds for `ih` (nothing is announced).

        Raises `NetTimeoutError` when the lookup does not end in `timeout` seconds.
        """
        ...

    def remove(self, ih: bytes, *, delete_files: bool = ...) -> None: ...

    def close(self) -> None: ...


class Torrents(Protocol):
    """Deterministic torrent creation for releases (spec §5.6); hashing only, no network."""

    def content_torrent(
        self,
        folder: Path,
        relpaths: Sequence[str],
        *,
        name: str,
        on_progress: Callable[[int], None] | None = ...,
    ) -> ContentTorrent: ...

    def blob_torrent(self, name: str, data: bytes) -> tuple[bytes, bytes]:
        """(torrent bytes, 20-byte infohash) of a single-file torrent of `data`."""
        ...
