"""The Python API: one `Client` per process, a thin facade over the use cases.

    with hubless.Client() as client:
        client.pull("KEY/tiny-llama@v1", to=Path("models/tiny-llama"))

The client builds the `Context` every use case receives (config, store, cache, keys,
network, events) and hands it to them. The libtorrent session starts on first use, so
commands that need no network never load it. This module and `hubless.lab` are the only
places above `hubless.net` that name its libtorrent implementation.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

from ..config import Config
from ..core.errors import KeyStoreError
from ..core.keys import SigningKey
from ..core.refs import Reference, check_name, check_version, parse_reference
from ..core.webseeds import WebSeed, parse_web_seed
from ..net.contract import ContentTorrent, Network, Torrents
from ..store.cache import Cache
from ..store.keystore import DEFAULT_KEY, KeyStore
from ..store.state import State
from . import export as export_service
from . import publish as publish_service
from . import pull as pull_service
from . import resolve as resolve_service
from . import seed as seed_service
from .context import Context
from .events import Listener, ignore

if TYPE_CHECKING:
    from .publish import PublishResult
    from .pull import PullResult
    from .resolve import Resolution


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
    ) -> None:
        self.config = config or Config.resolve(os.environ)
        self.ctx = Context(
            config=self.config,
            state=State(self.config.data_dir / "state.db"),
            cache=Cache(self.config.cache_dir),
            keys=KeyStore(self.config.data_dir / "keys"),
            torrents=_LazyTorrents(),
            network_factory=self._open_network,
            on_event=on_event,
            _network=network,
        )
        self._prompt = passphrase_prompt

    def _open_network(self) -> Network:
        from ..net.session import open_session

        return open_session(
            self.config.profile(),
            self.config.data_dir / "session",
            dht_timeout=self.config.dht_timeout,
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
        web_seeds: Sequence[str | WebSeed] = (),
    ) -> PublishResult:
        """Publish folder `path` as `version` of model `name` (spec §8.3).

        `web_seeds`: HTTP(S) places serving the same files (spec §5.8), as `WebSeed`s or as
        text `[bep19:|path:]URL` (`UsageError` for one that is not a web seed).
        """
        check_name(name)  # bad input is reported before any passphrase is asked for
        check_version(version)
        seeds = tuple(s if isinstance(s, WebSeed) else parse_web_seed(s) for s in web_seeds)
        publish_service.check_folder(Path(path))
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
            web_seeds=seeds,
        )

    def resolve(self, ref: str | Reference) -> Resolution:
        """Verify what `KEY/NAME[@VERSION]` points at (spec §8.1)."""
        return resolve_service.resolve(self.ctx, _ref(ref))

    def history(self, ref: str | Reference) -> Resolution:
        """The latest revision with its full verified history (`.latest.manifest.history`)."""
        return self.resolve(_ref(ref).at(None))

    def pull(
        self,
        ref: str | Reference,
        to: str | Path | None = None,
        include: tuple[str, ...] = (),
        *,
        allow_yanked: bool = False,
    ) -> PullResult:
        """Download a version (only files not cached), verify it, return where it is."""
        return pull_service.pull(
            self.ctx,
            _ref(ref),
            to=Path(to) if to is not None else None,
            include=include,
            allow_yanked=allow_yanked,
        )

    def export_torrent(self, ref: str | Reference, path: str | Path) -> dict[str, Any]:
        """Write `ref`'s verified content .torrent to `path` for another BitTorrent client."""
        return export_service.export_torrent(self.ctx, _ref(ref), Path(path))

    def magnet(self, ref: str | Reference) -> str:
        """A magnet link naming `ref`'s content torrent (peers come from the DHT)."""
        return export_service.magnet_link(self.ctx, _ref(ref))

    def dht_nodes(self) -> list[str]:
        """`host:port` of the DHT nodes another client should join to find this network."""
        return export_service.dht_nodes(self.ctx)

    def seed(self, stop: threading.Event | None = None, *, key: SigningKey | None = None) -> None:
        """Serve everything this machine holds until `stop` is set (forever by default)."""
        seed_service.run(self.ctx, key=key, stop=stop or threading.Event())


def _ref(ref: str | Reference) -> Reference:
    return ref if isinstance(ref, Reference) else parse_reference(ref)
