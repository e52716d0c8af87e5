"""The one seam between the use cases and the network (STYLE.md §3).

`hubless.net.session.Session` implements it with libtorrent; unit tests may plug in an
in-memory network that can also misbehave. Services never import libtorrent.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from ..core.bep44 import VerifiedItem
from ..core.keys import PublicKey, SigningKey

if TYPE_CHECKING:  # the session module imports libtorrent: only its types are wanted here
    from ..net.session import Progress

ProgressCallback = Callable[["Progress"], None]


class Network(Protocol):
    def dht_get_all(
        self, key: PublicKey, salt: bytes, timeout: float = ...
    ) -> list[VerifiedItem]: ...

    def dht_put(
        self, key: SigningKey, salt: bytes, payload: bytes, timeout: float = ...
    ) -> int: ...

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
    ) -> bytes: ...

    def wait_finished(self, ih: bytes, timeout: float) -> Progress: ...

    def progress(self, ih: bytes) -> Progress: ...

    def fetch_metadata(self, ih: bytes, timeout: float = ...) -> bytes: ...

    def payload_downloaded(self, ih: bytes) -> int: ...

    def remove(self, ih: bytes, *, delete_files: bool = ...) -> None: ...

    def close(self) -> None: ...
