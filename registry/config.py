"""Configuration, resolved once at the edge: flag > environment > default (STYLE.md §6).

Nothing reads the environment at import time; `Config.resolve` takes the environment as
an argument so the CLI, the Python API and the tests each decide where it comes from.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

import platformdirs

from .core.errors import UsageError
from .net.profile import NetProfile, parse_bootstrap

APP = "hubless"
ENV_HOME = "HUBLESS_HOME"
ENV_BOOTSTRAP = "HUBLESS_BOOTSTRAP"
ENV_PASSPHRASE = "HUBLESS_PASSPHRASE"
ENV_LISTEN = "HUBLESS_LISTEN"
ENV_UPLOAD_LIMIT = "HUBLESS_UPLOAD_LIMIT"


@dataclass(frozen=True)
class Config:
    """Where hubless keeps things and which network it joins."""

    config_dir: Path
    data_dir: Path
    cache_dir: Path
    bootstrap: tuple[tuple[str, int], ...] = ()
    listen_host: str | None = None
    listen_port: int = 0
    passphrase: str | None = field(default=None, repr=False)
    dht_timeout: float = 30.0
    transfer_timeout: float = 3600.0
    upload_limit: int = 0  # bytes per second per torrent; 0: no limit

    @property
    def local_network(self) -> bool:
        """A private DHT (explicit bootstrap nodes) rather than the public mainline DHT."""
        return bool(self.bootstrap)

    @classmethod
    def resolve(
        cls,
        env: Mapping[str, str],
        *,
        home: str | Path | None = None,
        bootstrap: tuple[str, ...] = (),
        listen: str | None = None,
        upload_limit: int | None = None,
    ) -> Config:
        """Flags first, then the environment, then platform defaults."""
        home_dir = home or env.get(ENV_HOME)
        if home_dir:
            root = Path(home_dir).expanduser().resolve()
            dirs = (root / "config", root / "data", root / "cache")
        else:
            dirs = (
                Path(platformdirs.user_config_dir(APP)),
                Path(platformdirs.user_data_dir(APP)),
                Path(platformdirs.user_cache_dir(APP)),
            )
        nodes_text = ",".join(bootstrap) if bootstrap else env.get(ENV_BOOTSTRAP, "")
        listen_text = listen or env.get(ENV_LISTEN)
        host, port = parse_endpoint(listen_text, "listen address") if listen_text else (None, 0)
        return cls(
            *dirs,
            bootstrap=parse_bootstrap(nodes_text.replace(" ", ",")),
            listen_host=host,
            listen_port=port,
            passphrase=env.get(ENV_PASSPHRASE),
            upload_limit=upload_limit if upload_limit is not None else _int(env, ENV_UPLOAD_LIMIT),
        )

    def with_passphrase(self, passphrase: str | None) -> Config:
        return replace(self, passphrase=passphrase)

    def profile(self) -> NetProfile:
        """`local` when bootstrap nodes are named (a private DHT), else the public DHT."""
        if self.bootstrap:
            return NetProfile.local(
                self.bootstrap, host=self.listen_host or "127.0.0.1", port=self.listen_port
            )
        return NetProfile.mainline(host=self.listen_host or "0.0.0.0", port=self.listen_port)


def _int(env: Mapping[str, str], name: str) -> int:
    text = env.get(name, "0").strip() or "0"
    if not text.isdigit():
        raise UsageError(f"{name}={text!r} is not a whole number")
    return int(text)


def parse_endpoint(text: str, what: str) -> tuple[str, int]:
    """`HOST:PORT` (IPv6 as `[::1]:PORT`) into a (host, port) pair."""
    host, sep, port_text = text.strip().rpartition(":")
    host = host.strip("[]")
    if not sep or not host or not port_text.isdigit() or not 0 <= int(port_text) < 65536:
        raise UsageError(f"{what} {text!r} is not HOST:PORT", hint="e.g. 127.0.0.1:6881")
    return host, int(port_text)
