"""The libtorrent session: one per process, its lifecycle, one alert loop, and torrents.

Every libtorrent alert is popped by one background thread and dispatched at once: DHT
alerts go to `hubless.net.dht`, torrent events set flags, resume data goes to disk. Fields
are copied out of an alert before the next `pop_alerts()` (a kept alert object is invalid
and reading it crashes the interpreter). `open_session` is the one way services get a
session: it joins the DHT and never leaves a half-made session running when that fails.

Only seeds announce themselves in the DHT. A download (and a metadata fetch) runs with
libtorrent's DHT off for that torrent and finds peers through plain `get_peers` lookups of
its own, never `announce_peer`: a process that downloads and exits must not stay listed as
a peer (spec §8.5), or clients that keep one peer per address stall on the dead entries.

Past ~400 lines because torrents, resume data and shutdown share one alert loop and lock.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import shutil
import tempfile
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

import libtorrent as lt

from ..core import bencode
from ..core.bep44 import RawItem
from ..core.errors import (
    IntegrityError,
    NetTimeoutError,
    NoPeersError,
    StoppedError,
    StoreError,
    UsageError,
)
from ..core.keys import PublicKey, SigningKey
from ..core.webseeds import BEP19, WebSeed
from ..files import atomic_write, make_temp_dir, private_dir, remove_stale
from .contract import Progress, ProgressCallback, PutReport, Traffic, format_endpoint
from .dht import Dht, network_id
from .malloc import tune_allocator
from .profile import NetProfile, settings_for
from .resume import ResumeStore
from .torrents import TORRENT_LIMITS, load_torrent_info

if TYPE_CHECKING:  # imported when first used: urllib and http.server cost every command
    from .webseeds import Gateway

log = logging.getLogger(__name__)

_POLL = 0.1  # seconds between status polls while a caller waits
_PROGRESS_EVERY = 0.5  # seconds between progress callbacks
_CLOSE_WAIT = 10.0  # seconds close() waits for resume data
_DELETE_WAIT = 60.0  # seconds close() waits for removals not yet confirmed (`_leftovers`)
# A download that received bad pieces ends when no verified byte arrived for this long with
# no BitTorrent peer left connected (each peer that sent bad data was dropped; a web seed
# that served a wrong copy is retried now and then, so it does not count), or at all with
# peers left (spec §8.4).
BAD_DATA_NO_PEERS = 15.0
BAD_DATA_STALL = 60.0
_BITTORRENT_PEER = lt.peer_info.standard_bittorrent  # connection_type of a BitTorrent peer
# Seconds between a download's first peer lookups, doubling up to _FIND_MAX: consumers that
# start together find each other within seconds instead of all pulling from the first seed
# (bench/fanout.py, decision 0011); libtorrent alone looks again only every 15 minutes.
_FIND_FIRST = 0.5
_FIND_MAX = 15.0  # ... up to this
# libtorrent connects to the peers it was told about only once a second (its session tick),
# except right after a torrent starts with peers or resumes; a pull goes through four
# torrents (manifest metadata and file, content metadata and files), and waited 0.6-1 s
# for each. So a download starts with the peers already found for its infohash, and is
# "kicked" once (paused and resumed: libtorrent then connects at once) when it learns of
# peers with no connection open or opening (`Session._kick`).
_KNOWN_PEERS = 64  # infohashes whose peers a session remembers for the next torrent of it
_FLUSH_WAIT = 60.0  # seconds a finished download waits for its last writes to reach the files
_WRITTEN_EVERY = 0.5  # seconds between checks for files complete on disk (`on_written`)
_WRITTEN_WAIT = 10.0  # seconds such a check waits for libtorrent to write them out


@dataclass
class _Torrent:
    handle: Any
    on_progress: ProgressCallback | None = None
    metadata: threading.Event = field(default_factory=threading.Event)
    flushed: threading.Event = field(default_factory=threading.Event)
    error: str = ""
    failed_pieces: set[int] = field(default_factory=set)  # failed their SHA-1 (bad data)
    web_seeds: tuple[WebSeed, ...] = ()
    announce: bool = True  # a seed: libtorrent announces it; else we look peers up ourselves
    next_find: float = 0.0  # monotonic time of the next get_peers lookup (downloads)
    find_delay: float = _FIND_FIRST
    kicked: bool = False  # `Session._kick` happens once
    # What finding a peer came to, for a download that reached none (`_no_peer_detail`).
    lookups: int = 0  # get_peers lookups sent
    found: set[tuple[str, int]] = field(default_factory=set)  # peers they (or earlier) found


def _ih_bytes(handle: Any) -> bytes:
    return bytes(handle.info_hashes().v1.to_bytes())


def _status_progress(ih: bytes, st: Any) -> Progress:
    return Progress(
        infohash=ih,
        done=int(st.total_wanted_done),
        wanted=int(st.total_wanted),
        rate=float(st.download_payload_rate),
        peers=int(st.num_peers),
        finished=bool(st.is_finished) and bool(st.has_metadata),
        uploaded=int(st.all_time_upload),
        seeds=int(st.num_seeds),
    )


_REFUSALS_KEPT = 8  # peers per infohash whose last connection failure is remembered


def _no_peer_detail(torrent: _Torrent | None, refused: dict[tuple[str, int], str]) -> str:
    """Why a download reached no peer, in words: what the DHT lookups found, and how the
    connections to those peers ended (`refused`: peer -> libtorrent's reason), e.g.
    "2 DHT lookups found 127.0.0.1:6881; connecting failed: Connection refused"."""
    if torrent is None:
        return "the download was removed"
    lookups = f"{torrent.lookups} DHT lookup{'' if torrent.lookups == 1 else 's'}"
    if not torrent.found:
        return f"{lookups} found no peer"
    shown = sorted(torrent.found)[:3]
    peers = ", ".join(format_endpoint(h, p) for h, p in shown)
    more = f" and {len(torrent.found) - len(shown)} more" if len(torrent.found) > 3 else ""
    found = f"{lookups} found {peers}{more}"
    reasons = sorted({why for peer, why in refused.items() if peer in torrent.found})
    if not reasons:
        return f"{found}; no connection to them was made"
    return f"{found}; connecting failed: {'; '.join(reasons)}"


class Session:
    """A libtorrent session set up from a `NetProfile`; use as a context manager.

    With `state_dir`, the DHT routing table is saved there on close and loaded on open, and
    resume data is kept in `state_dir/resume` (saved every `resume_interval` seconds and on
    close) so that an interrupted download continues where it stopped.

    `scratch_dir` is where metadata fetches get their private folders (spec §5.7): inside the
    home (default `state_dir/scratch`), never the system temp folder, which other local users
    can write. Without either, each fetch makes a private folder with `mkdtemp`.
    """

    def __init__(
        self,
        profile: NetProfile,
        state_dir: str | Path | None = None,
        *,
        resume_interval: float = 10.0,
        scratch_dir: str | Path | None = None,
    ) -> None:
        self.profile = profile
        self._state_dir = Path(state_dir) if state_dir is not None else None
        if scratch_dir is not None:
            self._scratch: Path | None = Path(scratch_dir)
        else:
            self._scratch = self._state_dir / "scratch" if self._state_dir else None
        self._deleted: dict[bytes, threading.Event] = {}
        # Metadata fetch folders whose torrent libtorrent had not finished deleting when the
        # fetch gave up waiting (a loaded machine, a torrent of many empty files, which
        # libtorrent creates, folders and all, as soon as the metadata arrives): close()
        # waits for those deletions, then removes the folders.
        self._leftovers: dict[Path, threading.Event] = {}
        self._resume = ResumeStore(self._state_dir / "resume") if self._state_dir else None
        self._resume_interval = resume_interval
        self._lock = threading.Lock()
        # Routing tables are saved per network: a private profile must never contact nodes
        # remembered from the public DHT or another private one.
        self._dht_state = (
            self._state_dir / "dht" / f"{network_id(profile)}.state" if self._state_dir else None
        )
        self._torrents: dict[bytes, _Torrent] = {}
        self._peer_lookups: dict[bytes, list[Future[list[tuple[str, int]]]]] = {}
        # Peers that DHT lookups found, per infohash, newest infohash last: a download of a
        # torrent whose metadata was just fetched starts with them (see _KICK_EVERY).
        self._known_peers: OrderedDict[bytes, set[tuple[str, int]]] = OrderedDict()
        # Why connections ended, per infohash (newest last): kept here, not on the torrent,
        # because a refusal can come before `_add` has registered the torrent.
        self._refused: OrderedDict[bytes, dict[tuple[str, int], str]] = OrderedDict()
        self._gateway: Gateway | None = None
        self._resume_pending = 0
        self._resume_done = threading.Condition(self._lock)
        tune_allocator()
        self._ses: Any = self._new_session()
        self.dht = Dht(self._ses, self._lock, profile)
        self._stopping = threading.Event()
        self._closed = False
        self._loop = threading.Thread(target=self._alert_loop, name="hubless-alerts", daemon=True)
        self._loop.start()

    def _new_session(self) -> Any:
        """The libtorrent session, its DHT started from the saved routing table if any.

        Extensions are chosen, not libtorrent's defaults: ut_metadata (BEP-9) and ut_pex
        (BEP-11) always, smart_ban on the public DHT only. smart_ban finds the sender of a
        bad block by IP address alone, so where peers share one (processes on one host, a
        web seed on a peer's host: the local profile allows several peers per address) it
        blamed, and banned, an honest peer for a web seed's wrong bytes, and the download
        then had no source left (tests/e2e/test_web_seeds.py; spec §8.4). Without it,
        libtorrent still bans a peer that alone sent a piece failing its hash check, and
        every piece is checked whoever sent it.
        """
        settings = settings_for(self.profile)
        pack: Any = {**settings, "enable_dht": False}  # the binding takes a dict
        ses: Any = lt.session(pack, 0)  # 0: none of libtorrent's default extensions
        ses.add_extension("ut_metadata")
        ses.add_extension("ut_pex")
        if self.profile.kind == "mainline":
            ses.add_extension("smart_ban")
        if self._dht_state is not None:
            with contextlib.suppress(OSError):
                data = self._dht_state.read_bytes()
                try:
                    ses.load_state(lt.bdecode(data), lt.save_state_flags_t.save_dht_state)
                except RuntimeError:
                    log.warning("ignoring unreadable DHT state %s", self._dht_state)
        ses.apply_settings({"enable_dht": settings["enable_dht"]})
        return ses

    # --- plumbing ---------------------------------------------------------------------------

    def __enter__(self) -> Session:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    @property
    def listen_port(self) -> int:
        return int(self._ses.listen_port())

    def get_settings(self) -> dict[str, Any]:
        """The settings libtorrent is actually running with."""
        return dict(self._ses.get_settings())

    def add_dht_node(self, host: str, port: int) -> None:
        self._ses.add_dht_node((host, port))

    def dht_node_count(self, timeout: float = 5.0) -> int:
        """Nodes in the DHT routing table right now."""
        return self.dht.node_count(timeout)

    def wait_for_dht(self, min_nodes: int = 1, timeout: float = 10.0) -> int:
        """Block until the routing table holds `min_nodes`; return the count."""
        return self.dht.wait_for_nodes(min_nodes, timeout)

    def dht_traffic(self, timeout: float = 5.0) -> Traffic:
        """DHT datagrams and bytes since the session began: libtorrent's node and the KRPC
        client together (`Dht.traffic`, `Dht.krpc_traffic` apart)."""
        return self.dht.traffic(timeout) + self.dht.krpc_traffic

    def dht_get(self, key: PublicKey, salt: bytes, timeout: float = 10.0) -> list[RawItem]:
        """Every distinct item a BEP-44 get met, unverified (see `hubless.net.dht`)."""
        return self.dht.get(key, salt, timeout)

    def dht_get_direct(self, key: PublicKey, salt: bytes, timeout: float = 10.0) -> list[RawItem]:
        """As `dht_get`, but a node silent for a second is passed over (`Dht.get_direct`)."""
        return self.dht.get_direct(key, salt, timeout)

    def dht_put(self, key: SigningKey, salt: bytes, payload: bytes, timeout: float = 10.0) -> int:
        """Sign and store `payload` under (key, salt); return how many nodes stored it."""
        return self.dht.put(key, salt, payload, timeout)

    def dht_put_signed(
        self, item: RawItem, timeout: float = 10.0, *, min_current: int | None = None
    ) -> PutReport:
        """Store an item exactly as its publisher signed it (BEP-44 re-announce)."""
        return self.dht.put_signed(item, timeout, min_current=min_current)

    # --- the alert loop -----------------------------------------------------------------------

    def _alert_loop(self) -> None:
        next_resume = time.monotonic() + self._resume_interval
        next_progress = time.monotonic()
        while not self._stopping.is_set():
            self._ses.wait_for_alert(100)
            for alert in self._ses.pop_alerts():
                try:
                    self._dispatch(alert)
                except Exception:  # one bad alert must not stop the loop
                    log.exception("error handling %s", type(alert).__name__)
            now = time.monotonic()
            if now >= next_progress:
                next_progress = now + _PROGRESS_EVERY
                with self._lock:
                    watching = any(t.on_progress for t in self._torrents.values())
                if watching:
                    self._ses.post_torrent_updates()
            if self._resume is not None and now >= next_resume:
                next_resume = now + self._resume_interval
                self._request_resume(lt.save_resume_flags_t.only_if_modified)
            self._find_peers(now)

    def _find_peers(self, now: float) -> None:
        """A `get_peers` lookup for each unfinished download that is due (module doc)."""
        due: list[bytes] = []
        with self._lock:
            for ih, t in self._torrents.items():
                if not t.announce and now >= t.next_find:
                    t.next_find = now + t.find_delay
                    t.find_delay = min(t.find_delay * 2, _FIND_MAX)
                    t.lookups += 1
                    due.append(ih)
        for ih in due:
            self._ses.dht_get_peers(lt.sha1_hash(ih))

    def _on_peers(self, ih: bytes, peers: list[tuple[str, int]]) -> None:
        """Answer `dht_peers` callers; connect a download to the peers (never to ourselves)."""
        own = (self.profile.listen_host, self.listen_port)
        found = [p for p in peers if p != own]
        with self._lock:
            waiting = self._peer_lookups.pop(ih, [])
            torrent = self._torrents.get(ih)
            if found and torrent is not None:
                torrent.found.update(found)
            if found:
                known = self._known_peers.pop(ih, set())
                self._known_peers[ih] = known | set(found)
                while len(self._known_peers) > _KNOWN_PEERS:
                    self._known_peers.popitem(last=False)
        for fut in waiting:
            if not fut.done():
                fut.set_result(list(peers))
        if torrent is None or torrent.announce or not found or not torrent.handle.is_valid():
            return
        for peer in found:
            torrent.handle.connect_peer(peer)
        self._kick(torrent)

    def _kick(self, torrent: _Torrent) -> None:
        """Make a download connect to the peers it knows now, not at libtorrent's next
        once-a-second round: pausing and resuming a torrent connects at once (see
        _KNOWN_PEERS). Once per torrent, and only with no connection open or being opened:
        pausing drops them, and an attempt cut short may count against the peer."""
        handle = torrent.handle
        if torrent.kicked:
            return
        try:
            status = handle.status()
            state = status.state
            busy = bool(status.num_connections)  # connections still being opened count too
        except RuntimeError:  # removed meanwhile
            return
        if state not in (lt.torrent_status.downloading, lt.torrent_status.downloading_metadata):
            return  # still checking its files: the torrent_checked_alert comes back here
        with self._lock:
            if torrent.kicked:
                return
            torrent.kicked = True
        if not busy:
            handle.pause()
            handle.resume()

    def _dispatch(self, a: Any) -> None:
        if self.dht.handle(a):
            return
        if isinstance(a, lt.save_resume_data_alert):
            ih, data = _ih_bytes(a.handle), bytes(lt.write_resume_data_buf(a.params))
            if self._resume is not None:
                self._resume.save(ih, data)
            self._resume_answered()
        elif isinstance(a, lt.save_resume_data_failed_alert):
            self._resume_answered()
        elif isinstance(a, (lt.torrent_deleted_alert, lt.torrent_delete_failed_alert)):
            ih = bytes(a.info_hashes.v1.to_bytes())
            with self._lock:
                done = self._deleted.pop(ih, None)
            if done is not None:
                done.set()
        elif isinstance(a, lt.metadata_received_alert):
            self._with_torrent(a, lambda t: t.metadata.set())
        elif isinstance(a, lt.cache_flushed_alert):
            self._with_torrent(a, lambda t: t.flushed.set())
        elif isinstance(a, lt.dht_get_peers_reply_alert):
            self._on_peers(bytes(a.info_hash.to_bytes()), [(str(h), int(p)) for h, p in a.peers()])
        elif isinstance(a, (lt.torrent_error_alert, lt.file_error_alert)):
            message = str(a.message())
            self._with_torrent(a, lambda t: setattr(t, "error", message))
        elif isinstance(a, lt.hash_failed_alert):
            piece = int(a.piece_index)
            self._with_torrent(a, lambda t: t.failed_pieces.add(piece))
        elif isinstance(a, lt.torrent_checked_alert):
            ih = _ih_bytes(a.handle) if a.handle.is_valid() else b""
            with self._lock:  # it may have been removed since the check began
                torrent = self._torrents.get(ih)
                known = ih in self._known_peers
            if torrent is not None and torrent.announce:
                a.handle.force_dht_announce()
            elif torrent is not None and known:
                self._kick(torrent)  # it started with peers, but a checked torrent waits
        elif isinstance(a, lt.state_update_alert):
            self._on_status([(_ih_bytes(st.handle), st) for st in a.status])
        elif isinstance(a, lt.peer_disconnected_alert) and a.handle.is_valid():
            self._note_refusal(_ih_bytes(a.handle), (str(a.ip[0]), int(a.ip[1])), a.error)

    def _note_refusal(self, ih: bytes, peer: tuple[str, int], error: Any) -> None:
        """Remember why the connection to `peer` ended, for `_no_peer_detail`."""
        why = str(error.message())
        with self._lock:
            refused = self._refused.pop(ih, {})
            refused.pop(peer, None)
            refused[peer] = why
            while len(refused) > _REFUSALS_KEPT:
                del refused[next(iter(refused))]
            self._refused[ih] = refused
            while len(self._refused) > _KNOWN_PEERS:
                self._refused.popitem(last=False)

    def _no_peer_detail(self, ih: bytes) -> str:
        with self._lock:
            return _no_peer_detail(self._torrents.get(ih), self._refused.get(ih, {}))

    def _with_torrent(self, a: Any, action: Callable[[_Torrent], None]) -> None:
        ih = _ih_bytes(a.handle)
        with self._lock:
            torrent = self._torrents.get(ih)
        if torrent is not None:
            action(torrent)

    def _on_status(self, statuses: list[tuple[bytes, Any]]) -> None:
        for ih, st in statuses:
            with self._lock:
                torrent = self._torrents.get(ih)
            if torrent is not None and torrent.on_progress is not None:
                try:
                    torrent.on_progress(_status_progress(ih, st))
                except Exception:
                    log.exception("progress callback failed")

    # --- torrents -----------------------------------------------------------------------

    def _handle(self, ih: bytes) -> Any:
        with self._lock:
            torrent = self._torrents.get(ih)
        if torrent is None:
            raise UsageError(f"torrent {ih.hex()} is not in this session")
        return torrent.handle

    def _add(
        self, atp: Any, on_progress: ProgressCallback | None = None, *, announce: bool
    ) -> bytes:
        """Add a torrent; `announce` False: libtorrent's DHT is off for it (module doc)."""
        ih = bytes(atp.info_hashes.v1.to_bytes()) if atp.ti is None else _ih_bytes(atp.ti)
        with self._lock:
            existing = self._torrents.get(ih)
        if existing is not None:
            if on_progress is not None:
                existing.on_progress = on_progress
            if announce and not existing.announce:  # a finished download now seeds
                existing.handle.unset_flags(lt.torrent_flags.disable_dht)
                existing.announce = True
            return ih
        # Every torrent runs: a registry client seeds all it holds, no queue decides for it.
        atp.flags &= ~(lt.torrent_flags.paused | lt.torrent_flags.auto_managed)
        atp.flags |= lt.torrent_flags.duplicate_is_error
        known: set[tuple[str, int]] = set()
        if announce:
            atp.flags &= ~lt.torrent_flags.disable_dht
        else:
            atp.flags |= lt.torrent_flags.disable_dht
            with self._lock:
                known = self._known_peers.get(ih, set())
            if known:  # connected to at once
                atp.peers = [*atp.peers, *(p for p in known if p not in atp.peers)]
        try:
            handle = self._ses.add_torrent(atp)
        except RuntimeError as exc:
            raise StoreError(f"cannot add torrent {ih.hex()}: {exc}") from exc
        torrent = _Torrent(handle, on_progress, announce=announce, found=set(known))
        if handle.status().has_metadata:
            torrent.metadata.set()
        with self._lock:
            self._torrents[ih] = torrent
        if not announce:
            self._find_peers(time.monotonic())  # its first lookup now, not at the loop's turn
        return ih

    def _params_for(self, ih: bytes | None, ti: Any, save_path: str | Path) -> Any:
        """Add parameters from saved resume data when there is any, else fresh ones."""
        atp = None
        key = ih if ih is not None else _ih_bytes(ti)
        if self._resume is not None:
            data = self._resume.load(key, Path(save_path))
            if data is not None:
                try:
                    atp = lt.read_resume_data(data, TORRENT_LIMITS)
                except RuntimeError:
                    log.warning("ignoring unreadable resume data for %s", key.hex())
                # Resume data of the same torrent kept elsewhere (a seeded snapshot, now a
                # download into partial/) describes other files, and its flags (seed and
                # upload mode) would stop the download: start afresh.
                if atp is not None and Path(atp.save_path) != Path(save_path):
                    atp = None
        if atp is None:
            atp = lt.parse_magnet_uri(f"magnet:?xt=urn:btih:{key.hex()}")
        if ti is not None:
            atp.ti = ti
        atp.save_path = str(save_path)
        return atp

    def seed(
        self,
        torrent_bytes: bytes,
        save_path: str | Path,
        *,
        trust_files: bool = False,
        upload_limit: int = 0,
    ) -> bytes:
        """Serve the files of a .torrent found under `save_path`; return its infohash.

        libtorrent checks the files first unless `trust_files` (we just hashed them, or they
        are verified blobs): then every piece is marked as had, without libtorrent's
        `seed_mode`, which hashes each piece again on its first request and, with deep
        request queues, cost a seeder twice the CPU of sending (bench/transfer.py).
        `upload_limit` caps this torrent's upload in bytes per second (0: none).
        A seeded torrent is in upload mode: libtorrent never downloads into `save_path` (not
        even for pieces peers report bad), so a cache snapshot changes only through the
        cache's own verified blobs (spec §8.4).
        """
        ti = _torrent_info(torrent_bytes)
        atp = self._params_for(None, ti, save_path)
        atp.flags |= lt.torrent_flags.upload_mode
        if trust_files:
            atp.have_pieces = [True] * ti.num_pieces()
        ih = self._add(atp, announce=True)
        handle = self._handle(ih)
        if upload_limit:
            handle.set_upload_limit(upload_limit)
        handle.force_dht_announce()
        return ih

    def download(
        self,
        source: bytes,
        save_path: str | Path,
        *,
        file_priorities: Sequence[int] | None = None,
        on_progress: ProgressCallback | None = None,
        web_seeds: Sequence[WebSeed] = (),
    ) -> bytes:
        """Start fetching a torrent (20-byte infohash or .torrent bytes); return its infohash.

        Peers are found through DHT lookups that never announce this process (module doc),
        and `web_seeds` (spec §5.8; they need the .torrent) serve the files over HTTP too:
        `bep19` seeds as BEP-19 url seeds, `path` seeds through the session's gateway. Web
        seeds named anywhere else (a `url-list` in `source`, old resume data) are dropped:
        only the ones passed here, which the manifest signed, are contacted.
        `file_priorities` (0 = skip, 1..7) needs the .torrent bytes. `on_progress` is called
        from the alert thread: keep it quick.
        """
        if len(source) == 20:
            ih, ti = source, None
        else:
            ti = _torrent_info(_info_only(source))
            ih = _ih_bytes(ti)
        atp = self._params_for(ih, ti, save_path)
        atp.flags &= ~(lt.torrent_flags.upload_mode | lt.torrent_flags.seed_mode)
        if file_priorities is not None:
            if ti is None:
                raise UsageError("file priorities need the .torrent, not only its infohash")
            atp.file_priorities = list(file_priorities)
        if web_seeds and ti is None:
            raise UsageError("web seeds need the .torrent, not only its infohash")
        name = str(ti.name()) if ti is not None else ""
        atp.url_seeds = [self._url_seed(seed, name) for seed in web_seeds]
        atp.http_seeds = []
        added = self._add(atp, on_progress, announce=False)
        with self._lock:
            self._torrents[added].web_seeds = tuple(web_seeds)
        if file_priorities is not None:
            self._handle(added).prioritize_files(list(file_priorities))
        return added

    def dht_peers(self, ih: bytes, timeout: float = 10.0) -> list[tuple[str, int]]:
        """The peers one BEP-5 `get_peers` lookup finds for `ih` (this session announces
        nothing); raises `NetTimeoutError` when the lookup does not end in `timeout` s."""
        fut: Future[list[tuple[str, int]]] = Future()
        with self._lock:
            self._peer_lookups.setdefault(ih, []).append(fut)
        self._ses.dht_get_peers(lt.sha1_hash(ih))
        try:
            return fut.result(timeout)
        except FutureTimeout:
            with self._lock, contextlib.suppress(KeyError, ValueError):
                self._peer_lookups[ih].remove(fut)
            raise NetTimeoutError(
                f"peer lookup of {ih.hex()} did not end in {timeout:g}s"
            ) from None

    def _url_seed(self, seed: WebSeed, name: str) -> str:
        """What libtorrent is told for `seed`: its base (BEP-19 form) or a gateway route."""
        if seed.kind == BEP19:
            return seed.base
        from .webseeds import Gateway

        with self._lock:
            if self._gateway is None:
                host = self.profile.listen_host
                if host.startswith("[") or ":" in host or host in ("0.0.0.0", ""):
                    host = "127.0.0.1"
                self._gateway = Gateway(host)
            gateway = self._gateway
        return gateway.route(seed, name)

    def set_file_priorities(self, ih: bytes, priorities: Sequence[int]) -> None:
        """Change a running download's file priorities (0 = skip, 1..7, higher first)."""
        self._handle(ih).prioritize_files(list(priorities))

    def connect_peer(self, ih: bytes, host: str, port: int) -> None:
        """Tell a torrent about a peer directly, without waiting for the DHT."""
        self._handle(ih).connect_peer((host, port))

    def force_dht_announce(self, ih: bytes) -> None:
        self._handle(ih).force_dht_announce()

    def set_upload_limit(self, ih: bytes, bytes_per_second: int) -> None:
        self._handle(ih).set_upload_limit(bytes_per_second)

    def progress(self, ih: bytes) -> Progress:
        return _status_progress(ih, self._handle(ih).status())

    def payload_downloaded(self, ih: bytes) -> int:
        """Payload bytes this session has downloaded for the torrent (not from disk)."""
        return int(self._handle(ih).status().total_payload_download)

    def payload_uploaded(self, ih: bytes) -> int:
        """Payload bytes this session has sent to peers for the torrent since it was added."""
        return int(self._handle(ih).status().total_payload_upload)

    def set_super_seeding(self, ih: bytes, on: bool = True) -> None:
        """BEP-16 super seeding for a torrent this session seeds: each piece goes to one
        peer until another has it, so an initial seed uploads each piece about once."""
        handle = self._handle(ih)
        if on:
            handle.set_flags(lt.torrent_flags.super_seeding)
        else:
            handle.unset_flags(lt.torrent_flags.super_seeding)

    def wait_finished(
        self,
        ih: bytes,
        timeout: float,
        *,
        cancel: threading.Event | None = None,
        on_written: Callable[[list[int]], None] | None = None,
    ) -> Progress:
        """Block until every wanted piece is verified and written to its file.

        libtorrent reports a piece as had once its hash passed, which may be before the
        disk thread wrote it: a file read at once can be missing or short. So a finished
        torrent's files are then released (`flush_cache`), and this returns only after
        libtorrent confirms it (`cache_flushed_alert`); callers read only what is on disk.
        `timeout` (seconds) bounds waiting, not the transfer: `NoPeersError` when no peer
        was connected within it, `NetTimeoutError` when peers were there but no payload
        byte arrived for that long (a slow peer that keeps sending is waited for), and
        `IntegrityError` when pieces failed their hash check and then no verified byte
        arrived for `BAD_DATA_NO_PEERS` seconds with no BitTorrent peer left (every peer
        that sent bad data was dropped; a wrong web seed is named) or `BAD_DATA_STALL`
        seconds in all (spec §8.4). Raises `StoppedError` within `_POLL` seconds of
        `cancel` being set (a stopping daemon must not wait for a download that can take an
        hour).

        `on_written`, while the download runs, receives the indices (in the torrent's file
        list) of wanted files whose every piece passed its hash check and is written out,
        each index once, so that a caller can hash them while the rest downloads. It is
        called from this thread, at most every `_WRITTEN_EVERY` seconds: keep it quick.
        """
        handle = self._handle(ih)
        started = time.monotonic()
        had_peers = False
        last_done, last_change = -1, started
        received, last_received = -1, started  # payload bytes arriving, verified or not
        written: set[int] = set()
        next_written = started + _WRITTEN_EVERY
        while True:
            if cancel is not None and cancel.is_set():
                raise StoppedError(f"the download of {ih.hex()} was stopped")
            status = handle.status()
            progress = _status_progress(ih, status)
            now = time.monotonic()
            if int(status.total_payload_download) > received:  # see below: bad data
                received, last_received = int(status.total_payload_download), now
            if on_written is not None and now >= next_written and not progress.finished:
                next_written = now + _WRITTEN_EVERY
                self._report_written(ih, handle, written, on_written)
            with self._lock:
                torrent = self._torrents.get(ih)
                error = torrent.error if torrent is not None else ""
                failures = len(torrent.failed_pieces) if torrent is not None else 0
            if error:
                raise StoreError(f"torrent {ih.hex()} failed: {error}")
            if progress.finished:
                self._flush(ih, handle)
                return progress
            if progress.done > last_done:
                last_done, last_change = progress.done, now
            stalled = now - last_change
            if failures and stalled >= min(BAD_DATA_NO_PEERS, BAD_DATA_STALL):
                self._fail_on_bad_data(ih, handle, progress, stalled)
            had_peers = had_peers or progress.peers > 0
            if not had_peers and now - started >= timeout:
                raise NoPeersError(
                    f"no peer for {ih.hex()} within {timeout:g}s ({self._no_peer_detail(ih)})"
                )
            # Bytes arriving count as activity only while none failed its hash check: a
            # peer sending bad data forever must not keep the wait alive.
            active = last_change if failures else max(last_received, last_change)
            if had_peers and now - active >= timeout:
                raise NetTimeoutError(
                    f"{ih.hex()}: no data arrived for {timeout:g}s from "
                    f"{progress.peers} peer(s); {progress.done:,} of {progress.wanted:,} "
                    "bytes verified",
                    hint="the peers stopped sending; try again later, or raise --timeout "
                    "for a slow peer",
                )
            # often at first: a small download (a manifest) is done in milliseconds
            time.sleep(min(_POLL, 0.01 + (now - started) / 10))

    def _fail_on_bad_data(self, ih: bytes, handle: Any, progress: Progress, stalled: float) -> None:
        """Raise `IntegrityError` naming the bad source, unless a BitTorrent peer is left and
        the stall is shorter than `BAD_DATA_STALL`.

        Reached when data failed its hash check and nothing moved for `BAD_DATA_NO_PEERS` s.
        Every peer that sent bad data was dropped; a web seed that served a wrong copy of a
        file is asked no more for that file and retried only every 30 s: with no peer left
        the download would wait for the transfer timeout (spec §8.4). When the manifest named
        web seeds, each failed piece is fetched again from them to name the wrong one.
        """
        if stalled < BAD_DATA_STALL and any(
            p.connection_type == _BITTORRENT_PEER for p in handle.get_peer_info()
        ):
            return
        with self._lock:
            torrent = self._torrents[ih]
            pieces, seeds = sorted(torrent.failed_pieces), torrent.web_seeds
        ti = handle.torrent_file()
        summary = (
            f"{len(pieces)} pieces failed their hash check and no verified data arrived for "
            f"{stalled:.0f} s ({progress.done:,} of {progress.wanted:,} bytes verified)"
        )
        if not seeds:
            raise IntegrityError(
                f"{summary}: every peer sent bad data, and libtorrent dropped them",
                hint="the publisher or another seeder must be online with the right "
                "files; try again later",
            )
        from .webseeds import bad_data_report

        report = bad_data_report(ti, seeds, pieces)
        raise IntegrityError(
            f"{summary}: {report}; no other source has them, so the download of "
            f"{ti.name()} stopped",
            hint="the bytes were refused and nothing was kept; wait for a peer that has the "
            "release, or tell the publisher which web seed is wrong",
        )

    def _report_written(
        self,
        ih: bytes,
        handle: Any,
        written: set[int],
        on_written: Callable[[list[int]], None],
    ) -> None:
        """Pass `on_written` the wanted files newly complete, once libtorrent wrote them out
        (a piece counts as had once its hash passed, maybe before its blocks were written)."""
        ti = handle.torrent_file()
        if ti is None:  # no metadata yet
            return
        files = ti.layout()
        done = handle.file_progress(flags=lt.torrent_handle.piece_granularity)
        wanted = handle.get_file_priorities()
        new = [
            i
            for i, have in enumerate(done)
            if i not in written and wanted[i] > 0 and have == files.file_size(i) > 0
        ]
        if new and self._flush_wait(ih, handle, _WRITTEN_WAIT):
            written.update(new)
            on_written(new)

    def _flush(self, ih: bytes, handle: Any) -> None:
        """Write out and close the torrent's files; wait for libtorrent to confirm it."""
        if not self._flush_wait(ih, handle, _FLUSH_WAIT):
            raise StoreError(f"torrent {ih.hex()}: files not written in {_FLUSH_WAIT:g}s")

    def _flush_wait(self, ih: bytes, handle: Any, wait: float) -> bool:
        """Ask libtorrent to write out every verified block of the torrent and close its
        files; True once it confirms, False when it did not within `wait` seconds."""
        with self._lock:
            torrent = self._torrents.get(ih)
        if torrent is None:
            return True
        torrent.flushed.clear()
        handle.flush_cache()
        return torrent.flushed.wait(wait)

    def fetch_metadata(self, ih: bytes, timeout: float = 30.0) -> bytes:
        """The .torrent bytes for infohash `ih`, built from the info dict peers sent.

        The metadata comes from untrusted peers and libtorrent prepares storage for it as
        soon as it arrives (empty files, BEP-47 links), before any caller could refuse it.
        So the torrent is added in upload mode (no piece is ever written) with a fresh
        private folder (0700, unpredictable name) as its save path, inside the home; the
        torrent is removed with its files and the folder deleted before this returns.
        Raises `NoPeersError`, `NetTimeoutError`, or `IntegrityError` when the info dict
        does not hash to `ih`.
        """
        with self._lock:
            known = ih in self._torrents
        folder: Path | None = None
        if not known:
            folder = self._metadata_folder(ih)
            atp = lt.parse_magnet_uri(f"magnet:?xt=urn:btih:{ih.hex()}")
            atp.save_path = str(folder)
            atp.flags |= lt.torrent_flags.upload_mode  # metadata only: never write pieces
            try:
                self._add(atp, announce=False)
            except BaseException:
                shutil.rmtree(folder, ignore_errors=True)
                raise
        handle = self._handle(ih)
        deadline = time.monotonic() + timeout
        had_peers = False
        try:
            with self._lock:
                got = self._torrents[ih].metadata
            while not got.wait(_POLL):
                status = handle.status()
                if status.has_metadata:  # its alert can come before _add registered the torrent
                    break
                had_peers = had_peers or int(status.num_peers) > 0
                if time.monotonic() >= deadline:
                    if not had_peers:
                        raise NoPeersError(
                            f"no peer for {ih.hex()} within {timeout:g}s "
                            f"({self._no_peer_detail(ih)})"
                        )
                    raise NetTimeoutError(f"metadata of {ih.hex()} not received in {timeout:g}s")
            info = bytes(handle.torrent_file().info_section())
        finally:
            if folder is not None:
                pending = self._remove_and_wait(ih)
                if pending is None:
                    shutil.rmtree(folder, ignore_errors=True)
                else:  # removing it now, the disk thread could make it again: at close()
                    with self._lock:
                        self._leftovers[folder] = pending
        if hashlib.sha1(info).digest() != ih:
            raise IntegrityError(f"metadata received for {ih.hex()} does not hash to it")
        return b"d4:info" + info + b"e"

    def _metadata_folder(self, ih: bytes) -> Path:
        """A new private folder for one metadata fetch (see `fetch_metadata`)."""
        if self._scratch is None:
            return Path(tempfile.mkdtemp(prefix="hubless-metadata-"))
        try:
            private_dir(self._scratch)
            remove_stale(self._scratch, suffix=".metadata")  # left by a killed process
            return make_temp_dir(self._scratch, ih.hex()[:16], ".metadata", mode=0o700)
        except OSError as exc:
            raise StoreError(f"cannot make a folder in {self._scratch}: {exc.strerror}") from exc

    def _remove_and_wait(self, ih: bytes) -> threading.Event | None:
        """Remove a torrent with its files and wait until libtorrent's disk thread is done:
        None once it is (or the torrent was not here), else the event set when it is."""
        done = threading.Event()
        with self._lock:
            present = ih in self._torrents
            if present:
                self._deleted[ih] = done
        if not present:
            return None
        self.remove(ih, delete_files=True)
        if done.wait(_CLOSE_WAIT):
            return None
        log.warning("libtorrent did not confirm removing %s in time", ih.hex())
        return done

    def remove(self, ih: bytes, *, delete_files: bool = False) -> None:
        """Stop seeding or downloading a torrent and forget its resume data."""
        with self._lock:
            torrent = self._torrents.pop(ih, None)
        if torrent is None:
            return
        flags = lt.session.delete_files if delete_files else 0
        self._ses.remove_torrent(torrent.handle, flags)
        if self._resume is not None:
            self._resume.forget(ih)

    # --- resume data and shutdown ------------------------------------------------------------

    def _request_resume(self, flags: Any) -> None:
        with self._lock:
            handles = [t.handle for t in self._torrents.values()]
        for handle in handles:
            # Another thread may remove the torrent at any moment: a handle that went invalid
            # raises RuntimeError, which must not end the alert loop that called this.
            try:
                if not handle.is_valid() or not handle.status().has_metadata:
                    continue
                if (
                    flags & lt.save_resume_flags_t.only_if_modified
                    and not handle.need_save_resume_data()
                ):
                    continue
            except RuntimeError:
                continue
            with self._lock:
                self._resume_pending += 1
            try:
                handle.save_resume_data(flags | lt.save_resume_flags_t.save_info_dict)
            except RuntimeError:
                log.debug("torrent removed while its resume data was asked for")
                self._resume_answered()

    def _resume_answered(self) -> None:
        with self._lock:
            self._resume_pending = max(0, self._resume_pending - 1)
            self._resume_done.notify_all()

    def close(self) -> None:
        """Save resume data and DHT state, then stop the session. Idempotent."""
        if self._closed:
            return
        self._closed = True
        if self._resume is not None:
            self._request_resume(lt.save_resume_flags_t.flush_disk_cache)
            with self._lock:
                self._resume_done.wait_for(lambda: self._resume_pending == 0, _CLOSE_WAIT)
        if self._dht_state is not None:
            try:
                state = self._ses.session_state(lt.save_state_flags_t.save_dht_state)
                self._dht_state.parent.mkdir(parents=True, exist_ok=True)
                atomic_write(
                    self._dht_state,
                    bytes(lt.write_session_params_buf(state, lt.save_state_flags_t.save_dht_state)),
                )
            except (OSError, RuntimeError) as exc:
                log.warning("could not save DHT state: %s", exc)
        # Removals not yet confirmed: the alert loop still runs and confirms them.
        deadline = time.monotonic() + _DELETE_WAIT
        for folder, deleted in self._leftovers.items():
            deleted.wait(max(0.0, deadline - time.monotonic()))
            shutil.rmtree(folder, ignore_errors=True)
        self._leftovers.clear()
        self.dht.close()
        if self._gateway is not None:
            self._gateway.close()
        self._stopping.set()
        self._loop.join()
        with self._lock:
            self._torrents.clear()
        self._ses.pause()
        self._ses = None


def _info_only(torrent_bytes: bytes) -> bytes:
    """`d4:info<info>e` of a .torrent: its web seeds, trackers and nodes set aside."""
    top = bencode.decode(torrent_bytes)
    info = top.get(b"info") if isinstance(top, dict) else None
    if not isinstance(info, dict):
        raise IntegrityError("not a valid .torrent: no info dictionary")
    return b"d4:info" + bencode.encode(info) + b"e"


def _torrent_info(torrent_bytes: bytes) -> Any:
    try:
        return load_torrent_info(torrent_bytes)
    except (RuntimeError, TypeError) as exc:
        raise IntegrityError(f"not a valid .torrent: {exc}") from exc


def open_session(
    profile: NetProfile,
    state_dir: str | Path | None = None,
    *,
    dht_timeout: float = 30.0,
    min_nodes: int = 2,
    scratch_dir: str | Path | None = None,
) -> Session:
    """A session that has joined its DHT; closed again if joining fails (no session leaks).

    On a private network the bootstrap nodes are added explicitly (a bootstrap entry alone
    can leave the routing table empty, DESIGN.md) and the call waits until the routing
    table knows `min_nodes` (libtorrent never stores items on a node it uses as a router).
    Raises `NetTimeoutError` when the DHT cannot be joined within `dht_timeout` seconds.
    `scratch_dir`: see `Session`.
    """
    session = Session(profile, state_dir, scratch_dir=scratch_dir)
    try:
        if profile.kind == "local" and profile.bootstrap:
            for host, port in profile.bootstrap:
                session.add_dht_node(host, port)
            session.wait_for_dht(min_nodes, dht_timeout)
    except BaseException:
        session.close()
        raise
    return session
