"""The Python API: one `Client` per process, a thin facade over the use cases.

    with hubless.Client() as client:
        client.pull("KEY/tiny-llama@v1", to=Path("models/tiny-llama"))

The client builds the `Context` every use case receives (config, store, cache, keys,
network, events) and hands it to them. The libtorrent session starts on first use, so
commands that need no network never load it. This module and `hubless.lab` are the only
places above `hubless.net` that name its libtorrent implementation.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

from ..config import Config
from ..core.errors import KeyStoreError
from ..core.keys import PublicKey, SigningKey
from ..core.refs import Reference, check_name, check_version, parse_reference, pin_version
from ..core.webseeds import WebSeed, parse_web_seed
from ..files import private_dir
from ..net.contract import ContentTorrent, Network, Torrents
from ..store.cache import Cache
from ..store.home import check_home
from ..store.keystore import DEFAULT_KEY, KeyStore
from ..store.state import State
from . import adopt as adopt_service
from . import cached as cached_service
from . import catalogue as catalogue_service
from . import export as export_service
from . import folder as folder_service
from . import follow as follow_service
from . import poll as poll_service
from . import publish as publish_service
from . import pull as pull_service
from . import resolve as resolve_service
from . import seed as seed_service
from .context import Context
from .daemon import Daemon
from .events import Event, Listener, ignore
from .intervals import REPUBLISH_EVERY
from .own_records import OwnRecordCheck, leak_error
from .status import DaemonStatus, home_status

if TYPE_CHECKING:
    from ..core.manifest import VerifiedManifest
    from .adopt import Imported
    from .cached import Listing, Removal
    from .catalogue import Catalogue, SearchHit
    from .follow import Following, FollowResult
    from .poll import NewVersion, PollPolicy
    from .publish import PublishResult
    from .pull import PullResult
    from .resolve import Resolution
    from .verify import VerifyReport


log = logging.getLogger(__name__)


def _libtorrent_torrents() -> Torrents:
    from ..net.torrents import LibtorrentTorrents

    return LibtorrentTorrents()


class _LazyTorrents:
    """Loads libtorrent's torrent maker only when a torrent is made."""

    def __init__(self) -> None:
        self._real: Torrents | None = None

    def _get(self) -> Torrents:
        if self._real is None:
            self._real = _libtorrent_torrents()
        return self._real

    def content_torrent(
        self,
        folder: Path,
        relpaths: Sequence[str],
        *,
        name: str,
        on_progress: Callable[[int], None] | None = None,
    ) -> ContentTorrent:
        return self._get().content_torrent(folder, relpaths, name=name, on_progress=on_progress)

    def blob_torrent(self, name: str, data: bytes) -> tuple[bytes, bytes]:
        return self._get().blob_torrent(name, data)


class Client:
    """Everything one identity on one machine does: publish, resolve, pull, seed."""

    def __init__(
        self,
        config: Config | None = None,
        *,
        network: Network | None = None,
        on_event: Listener = ignore,
        passphrase_prompt: Callable[[str], str] | None = None,
        serve: bool = True,
    ) -> None:
        """`serve` False: a one-shot process that leaves serving to the home's daemon; what
        it publishes or pulls goes into the seeds table, and nothing is announced."""
        self.config = config or Config.resolve(os.environ)
        data_dir = self.config.data_dir
        warnings = check_home(data_dir, data_dir / "keys", self.config.cache_dir)
        if not data_dir.exists():
            private_dir(data_dir)
        self.ctx = Context(
            config=self.config,
            state=State(self.config.data_dir / "state.db"),
            cache=Cache(self.config.cache_dir),
            keys=KeyStore(self.config.data_dir / "keys"),
            torrents=_LazyTorrents(),
            network_factory=self._open_network,
            on_event=on_event,
            serve=serve,
            _network=network,
        )
        self._prompt = passphrase_prompt
        for warning in warnings:
            log.warning("%s", warning)
            self.ctx.emit(Event("warning", warning))

    def _open_network(self, join_timeout: float) -> Network:
        from ..net.session import open_session

        return open_session(
            self.config.profile(),
            self.config.data_dir / "session",
            dht_timeout=join_timeout,
            scratch_dir=self.cache.partial_root,
        )

    # --- what the context holds, for programs and tests ---------------------------------------

    @property
    def keys(self) -> KeyStore:
        return self.ctx.keys

    @property
    def state(self) -> State:
        return self.ctx.state

    @property
    def cache(self) -> Cache:
        return self.ctx.cache

    @property
    def network(self) -> Network:
        """The network session, started on first use."""
        return self.ctx.network

    def close(self) -> None:
        self.ctx.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def signing_key(self, name: str = DEFAULT_KEY) -> SigningKey:
        """Load a key, asking for its passphrase when it has one and none was configured."""
        info = self.keys.info(name)
        passphrase = self.config.passphrase
        if info.encrypted and passphrase is None:
            if self._prompt is None:
                raise KeyStoreError(
                    f"key {name!r} needs its passphrase", hint="set HUBLESS_PASSPHRASE"
                )
            passphrase = self._prompt(f"Passphrase for key {name!r}")
        return self.keys.load(name, passphrase)

    # --- the use cases ------------------------------------------------------------------------

    def publish(
        self,
        path: str | Path,
        name: str,
        version: str,
        *,
        key: str | SigningKey = DEFAULT_KEY,
        description: str | None = None,
        license: str | None = None,
        tags: tuple[str, ...] = (),
        follow_links: bool = False,
        web_seeds: Sequence[str | WebSeed] = (),
    ) -> PublishResult:
        """Publish folder `path` as `version` of model `name` (spec §8.3).

        Links and special files in it are refused unless `follow_links` (§8.3 step 1).
        `web_seeds`: HTTP(S) places serving the same files (spec §5.8), as `WebSeed`s or as
        text `[bep19:|path:]URL` (`UsageError` for one that is not a web seed).
        """
        check_name(name)  # bad input is reported before any passphrase is asked for
        check_version(version)
        seeds = tuple(s if isinstance(s, WebSeed) else parse_web_seed(s) for s in web_seeds)
        folder_service.check_folder(Path(path), follow_links=follow_links)
        signing = key if isinstance(key, SigningKey) else self.signing_key(key)
        return publish_service.publish(
            self.ctx,
            Path(path),
            name,
            version,
            signing,
            description=description,
            license=license,
            tags=tags,
            follow_links=follow_links,
            web_seeds=seeds,
        )

    def resolve(self, ref: str | Reference) -> Resolution:
        """Verify what `KEY/NAME[@VERSION]` points at (spec §8.1)."""
        return resolve_service.resolve(self.ctx, _ref(ref))

    def history(self, ref: str | Reference) -> Resolution:
        """The latest revision with its full verified history (`.latest.manifest.history`)."""
        return self.resolve(_ref(ref).at(None))

    def held_manifests(self, resolution: Resolution) -> dict[int, VerifiedManifest]:
        """Earlier revisions' manifests this home holds (by seq), verified; no network."""
        return resolve_service.held_manifests(self.ctx, resolution)

    def pull(
        self,
        ref: str | Reference,
        to: str | Path | None = None,
        include: str | Sequence[str] | None = None,
        *,
        exclude: str | Sequence[str] | None = None,
        version: str | None = None,
        offline: bool = False,
        allow_yanked: bool = False,
        hf_cache: bool | None = None,
        progress: Listener | None = None,
    ) -> PullResult:
        """Download a version (only files not cached), verify it, return where it is.

        `include`/`exclude`: a glob or a list of globs on file paths (as `snapshot_download`'s
        `allow_patterns`/`ignore_patterns`); `version`: a version label, as `@VERSION` in
        the reference (`UsageError` when both name different versions); `offline`: only
        what is cached (like `local_files_only`; `OfflineError` otherwise). `hf_cache` also
        links it into the Hugging Face cache (default: the configuration's `hf_cache`,
        HUBLESS_HF_CACHE), so `from_pretrained("KEY/NAME")` finds it offline. `progress`
        receives this call's `Event`s (steps, and download and verify progress in bytes).
        """
        with self.ctx.listening(progress):
            return pull_service.pull(
                self.ctx,
                _ref(ref, version),
                to=Path(to) if to is not None else None,
                include=include,
                exclude=exclude,
                allow_yanked=allow_yanked,
                offline=offline,
                hf_cache=hf_cache,
            )

    def verify_remote(
        self, folder: str | Path, ref: str | Reference
    ) -> tuple[VerifyReport, Resolution]:
        """Check a folder another client downloaded against `ref`'s signed manifest."""
        return adopt_service.verify_remote(self.ctx, Path(folder), _ref(ref))

    def import_folder(self, folder: str | Path, ref: str | Reference) -> Imported:
        """Adopt a verified folder into the cache as `ref`'s version, to be seeded."""
        return adopt_service.import_folder(self.ctx, Path(folder), _ref(ref))

    def list_cache(self) -> Listing:
        """Models and versions in the cache, sizes counting shared files once (no network)."""
        return cached_service.list_cache(self.ctx)

    def remove(self, ref: str | Reference) -> Removal:
        """Remove `KEY/NAME[@VERSION]` from the cache and free what nothing else uses."""
        return cached_service.remove(self.ctx, _ref(ref))

    def prune(self, *, dry_run: bool = False) -> Removal:
        """Free unused blobs, abandoned downloads and leftovers (`dry_run`: only list them)."""
        return cached_service.prune(self.ctx, dry_run=dry_run)

    def export_torrent(self, ref: str | Reference, path: str | Path) -> dict[str, Any]:
        """Write `ref`'s verified content .torrent to `path` for another BitTorrent client."""
        return export_service.export_torrent(self.ctx, _ref(ref), Path(path))

    def magnet(self, ref: str | Reference) -> str:
        """A magnet link naming `ref`'s content torrent (peers come from the DHT)."""
        return export_service.magnet_link(self.ctx, _ref(ref))

    def dht_nodes(self) -> list[str]:
        """`host:port` of the DHT nodes another client should join to find this network."""
        return export_service.dht_nodes(self.ctx)

    def republish(self, key: SigningKey) -> list[OwnRecordCheck]:
        """Check and put again, once, the records of every model `key` published here.

        Raises `KeyLeakError` when the DHT holds a record under `key` that this machine did
        not sign (spec §8.5); such records are never overwritten.
        """
        _, checks = seed_service.republish_once(self.ctx, key)
        error = leak_error(checks)
        if error is not None:
            raise error
        return checks

    def seed(
        self,
        stop: threading.Event | None = None,
        *,
        key: SigningKey | None = None,
        republish_interval: float = REPUBLISH_EVERY,
    ) -> None:
        """Run this home's daemon until `stop` is set (forever by default): serve everything
        this home holds and keep its records alive (`hubless.Daemon`; spec §8.5)."""
        Daemon(self, key=key, republish_interval=republish_interval).run(stop or threading.Event())

    def status(self) -> DaemonStatus:
        """What this home's daemon serves and keeps alive, read from the store."""
        return home_status(self.config)

    # --- following publishers, catalogues, search ---------------------------------------------

    def follow(self, target: str | Reference | PublicKey) -> FollowResult:
        """Follow `KEY` (every model in its index, now and later) or `KEY/NAME` (one model)."""
        return follow_service.follow(self.ctx, _target(target))

    def unfollow(self, target: str | Reference | PublicKey) -> bool:
        """Stop following `KEY` (every follow of it) or `KEY/NAME`; False if not followed."""
        return follow_service.unfollow(self.ctx, _target(target))

    def following(self, *, acknowledge: bool = True) -> Following:
        """What this home follows; models that left their publisher's index are flagged
        (`removed_at`) and, with `acknowledge`, dropped once listed here."""
        return follow_service.following(self.ctx, acknowledge=acknowledge)

    def models(self, publisher: str | PublicKey) -> Catalogue:
        """A publisher's catalogue: every model in its index, resolved (spec §4.5, §8.1)."""
        key = publisher if isinstance(publisher, PublicKey) else PublicKey.parse(publisher)
        return catalogue_service.catalogue(self.ctx, key)

    def search(self, text: str) -> list[SearchHit]:
        """Models this home knows whose name, tags or description hold every word of `text`."""
        return catalogue_service.search(self.ctx, text)

    def poll_follows(
        self, now: float | None = None, *, policy: PollPolicy | None = None
    ) -> list[NewVersion]:
        """One poll round over what is due: the revisions the follower does not hold yet."""
        return poll_service.poll_follows(
            self.ctx,
            time.time() if now is None else now,
            policy=policy or poll_service.DEFAULT_POLICY,
        )


def _target(target: str | Reference | PublicKey) -> Reference | PublicKey:
    return follow_service.parse_target(target) if isinstance(target, str) else target


def _ref(ref: str | Reference, version: str | None = None) -> Reference:
    parsed = ref if isinstance(ref, Reference) else parse_reference(ref)
    return parsed if version is None else pin_version(parsed, version, named_by="version=")
