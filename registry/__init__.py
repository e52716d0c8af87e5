"""hubless: a registry for AI models with no hub.

The Python API, for programs that publish or consume models:

    import hubless
    path = hubless.pull("KEY/tiny-llama@v1")          # verified snapshot folder
    path = hubless.pull("KEY/tiny-llama", include="*.json", offline=True)  # cache only
    hubless.publish("./my-model", "my-model", "v2")  # signed with the default key

    with hubless.Client() as client, hubless.Daemon(client) as daemon:
        ...                                           # this home serves and keeps records alive
        print(daemon.status())

Module-level functions use one shared `Client` configured from the environment
(HUBLESS_HOME, HUBLESS_BOOTSTRAP, HUBLESS_PASSPHRASE) on first call; make a `Client`
yourself to choose otherwise. Nothing heavy is imported until it is used.
"""

from __future__ import annotations

import atexit
import logging
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Sequence

    from .core.keys import PublicKey
    from .core.refs import Reference
    from .services.catalogue import Catalogue, SearchHit
    from .services.client import Client
    from .services.daemon import Daemon, DaemonStatus
    from .services.events import Listener
    from .services.follow import Following, FollowResult
    from .services.mirror import Delivered, MirrorOptions
    from .services.publish import PublishResult
    from .services.resolve import Resolution

__all__ = [
    "Client",
    "Daemon",
    "DaemonStatus",
    "Delivered",
    "MirrorOptions",
    "follow",
    "following",
    "history",
    "models",
    "publish",
    "pull",
    "resolve",
    "search",
    "seed",
    "unfollow",
]

# A library logs; the program decides where logs go (the CLI shows them with --debug).
logging.getLogger(__name__).addHandler(logging.NullHandler())
__version__ = "0.1.0"

_default: Client | None = None
_default_lock = threading.Lock()


def __getattr__(name: str) -> Any:
    if name == "Client":
        from .services.client import Client

        return Client
    if name in ("Daemon", "DaemonStatus"):
        from .services import daemon

        return getattr(daemon, name)
    if name in ("Delivered", "MirrorOptions"):
        from .services import mirror

        return getattr(mirror, name)
    raise AttributeError(f"module 'hubless' has no attribute {name!r}")


def _client() -> Client:
    global _default
    with _default_lock:
        if _default is None:
            from .services.client import Client

            _default = Client()
            atexit.register(_default.close)
        return _default


def publish(path: str | Path, name: str, version: str, *, key: str = "default") -> PublishResult:
    """Publish folder `path` as `version` of model `name`, signed with key `key`."""
    return _client().publish(path, name, version, key=key)


def resolve(ref: str | Reference) -> Resolution:
    """Resolve `KEY/NAME[@VERSION]` to a verified manifest."""
    return _client().resolve(ref)


def history(ref: str | Reference) -> Resolution:
    """The latest verified manifest of a model, whose `.history` lists every earlier version."""
    return _client().history(ref)


def pull(
    ref: str | Reference,
    to: str | Path | None = None,
    include: str | Sequence[str] | None = None,
    *,
    exclude: str | Sequence[str] | None = None,
    version: str | None = None,
    offline: bool = False,
    hf_cache: bool | None = None,
    progress: Listener | None = None,
) -> Path:
    """Download and verify a model version; return the folder `from_pretrained` can load.

    `include`/`exclude` take a glob or a list of globs (like `snapshot_download`'s
    `allow_patterns`/`ignore_patterns`); `version` names a version (like `@VERSION`);
    `offline` answers from the cache only (like `local_files_only`); `hf_cache` links it
    into the Hugging Face cache. `progress` receives each step and byte count (an `Event`);
    without it, a bar is drawn when stderr is a terminal, and nothing is printed otherwise.
    """
    from .progressbar import TerminalBar, default_progress

    listener = progress if progress is not None else default_progress()
    try:
        return (
            _client()
            .pull(
                ref,
                to=to,
                include=include,
                exclude=exclude,
                version=version,
                offline=offline,
                hf_cache=hf_cache,
                progress=listener,
            )
            .path
        )
    finally:
        if isinstance(listener, TerminalBar):
            listener.close()


def seed(stop: threading.Event | None = None) -> None:
    """Run this home's daemon until `stop` is set: serve every model it holds and keep the
    records it verified alive (one daemon per home: `DaemonRunningError` if one runs)."""
    _client().seed(stop)


def follow(target: str | Reference | PublicKey) -> FollowResult:
    """Follow `KEY` (every model in its index, also models published later) or `KEY/NAME`."""
    return _client().follow(target)


def unfollow(target: str | Reference | PublicKey) -> bool:
    """Stop following `KEY` or `KEY/NAME`; False if it was not followed."""
    return _client().unfollow(target)


def following() -> Following:
    """What this home follows; models that left their publisher's index are flagged once."""
    return _client().following()


def models(publisher: str | PublicKey) -> Catalogue:
    """A publisher's catalogue: each model in its index with its latest verified version."""
    return _client().models(publisher)


def search(text: str) -> list[SearchHit]:
    """Models this home knows (followed, pulled) matching every word of `text`."""
    return _client().search(text)
