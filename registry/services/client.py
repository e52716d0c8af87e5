"""The Python API: one `Client` per process holds the config, the store and the network.

    with hubless.Client() as client:
        client.pull("KEY/tiny-llama@v1", to=Path("models/tiny-llama"))

The libtorrent session starts on first use, so commands that need no network never load it.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING

from ..config import Config
from ..core.errors import KeyStoreError
from ..core.keys import SigningKey
from ..core.refs import Reference, check_name, check_version, parse_reference
from ..store.cache import Cache
from ..store.keystore import DEFAULT_KEY, KeyStore
from ..store.state import SeedEntry, State
from .events import Event, Listener, ignore

if TYPE_CHECKING:
    from .network import Network
    from .publish import PublishResult
    from .pull import PullResult
    from .resolve import Resolution


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
        self.keys = KeyStore(self.config.data_dir / "keys")
        self.state = State(self.config.data_dir / "state.db")
        self.cache = Cache(self.config.cache_dir)
        self._network = network
        self._on_event = on_event
        self._prompt = passphrase_prompt
        self._seeding: set[bytes] = set()
        self._lock = threading.Lock()

    # --- plumbing -----------------------------------------------------------------------------

    @property
    def network(self) -> Network:
        """The network session, started on first use."""
        with self._lock:
            if self._network is None:
                from ..net.session import Session

                session = Session(self.config.profile(), self.config.data_dir / "session")
                # A bootstrap entry alone can leave the routing table empty (DESIGN.md):
                # add the nodes explicitly and wait until the DHT knows a node beyond them
                # (libtorrent never stores items on a node it uses as a router).
                for host, port in self.config.bootstrap:
                    session.add_dht_node(host, port)
                if self.config.bootstrap:
                    session.wait_for_dht(2, self.config.dht_timeout)
                network: Network = session
                self._network = network
            return self._network

    def emit(self, event: Event) -> None:
        self._on_event(event)

    def close(self) -> None:
        with self._lock:
            if self._network is not None:
                self._network.close()
                self._network = None
        self.state.close()

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

    def seed_torrent(self, entry: SeedEntry, *, remember: bool = True) -> None:
        """Serve a torrent now and (unless told otherwise) again whenever `seed` runs."""
        if remember:
            self.state.add_seed(entry)
        if entry.infohash in self._seeding:
            return
        self.network.seed(
            entry.torrent, entry.save_path, trust_files=True, upload_limit=self.config.upload_limit
        )
        self._seeding.add(entry.infohash)

    def stop_seeding(self, infohash: bytes) -> None:
        """Stop serving a torrent in this process (the seeds table keeps it for later)."""
        if infohash in self._seeding:
            self.network.remove(infohash)
            self._seeding.discard(infohash)

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
    ) -> PublishResult:
        """Publish folder `path` as `version` of model `name`."""
        from .publish import publish

        check_name(name)  # bad input is reported before any passphrase is asked for
        check_version(version)
        signing = key if isinstance(key, SigningKey) else self.signing_key(key)
        return publish(
            self,
            Path(path),
            name,
            version,
            signing,
            description=description,
            license=license,
            tags=tags,
        )

    def resolve(self, ref: str | Reference) -> Resolution:
        """Verify what `KEY/NAME[@VERSION]` points at."""
        from .resolve import resolve

        return resolve(self, _ref(ref))

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
        from .pull import pull

        return pull(
            self,
            _ref(ref),
            to=Path(to) if to is not None else None,
            include=include,
            allow_yanked=allow_yanked,
        )

    def seed(self, stop: threading.Event | None = None, *, key: SigningKey | None = None) -> None:
        """Serve everything this machine holds until `stop` is set (forever by default)."""
        from .seed import run

        run(self, key=key, stop=stop or threading.Event())


def _ref(ref: str | Reference) -> Reference:
    return ref if isinstance(ref, Reference) else parse_reference(ref)
