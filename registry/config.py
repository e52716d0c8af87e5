"""Configuration, resolved once at the edge: flag > environment > config file > default.

`Config.resolve` is the one place where the command line's flags, the environment and the
config file `<config_dir>/config.toml` meet (STYLE.md §6). Nothing reads the environment at
import time; the environment is an argument, so the CLI, the Python API and the tests each
decide where it comes from. HOST:PORT text is parsed here and nowhere else: the network
layer takes `(host, port)` tuples.

The config file holds the settings that mirror the environment variables, for example:

    bootstrap = ["192.168.1.10:6881", "192.168.1.11:6881"]   # HUBLESS_BOOTSTRAP
    listen = "192.168.1.20"                                   # HUBLESS_LISTEN
    upload_limit = 10_000_000                                 # HUBLESS_UPLOAD_LIMIT (bytes/s)
    offline = false                                           # HUBLESS_OFFLINE=1
    timeout = 30                                              # HUBLESS_TIMEOUT (seconds)
    hf_cache = true                                           # HUBLESS_HF_CACHE=1

The home folder chooses where the file is, so it cannot be set in it; the passphrase is a
secret and stays out of it.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import platformdirs

from .core.errors import UsageError
from .net.profile import NetProfile

APP = "hubless"
ENV_HOME = "HUBLESS_HOME"
ENV_BOOTSTRAP = "HUBLESS_BOOTSTRAP"
ENV_PASSPHRASE = "HUBLESS_PASSPHRASE"
ENV_LISTEN = "HUBLESS_LISTEN"
ENV_UPLOAD_LIMIT = "HUBLESS_UPLOAD_LIMIT"
ENV_OFFLINE = "HUBLESS_OFFLINE"
ENV_TIMEOUT = "HUBLESS_TIMEOUT"
ENV_HF_CACHE = "HUBLESS_HF_CACHE"
#: Seconds a lookup waits by default, and a download for its peers and bytes.
DHT_TIMEOUT = 30.0
TRANSFER_TIMEOUT = 3600.0
#: Seconds a lookup waits by default when a known version could answer instead (stale).
CHECK_TIMEOUT = 10.0
SETTINGS = ("bootstrap", "listen", "upload_limit", "offline", "timeout", "hf_cache")
CONFIG_FILE = "config.toml"
#: Largest config file read, in bytes: it holds a handful of short settings.
MAX_CONFIG_FILE = 64 * 1024

Endpoint = tuple[str, int]


@dataclass(frozen=True)
class Config:
    """Where hubless keeps things and which network it joins."""

    config_dir: Path
    data_dir: Path
    cache_dir: Path
    bootstrap: tuple[Endpoint, ...] = ()
    listen_host: str | None = None
    listen_port: int = 0
    passphrase: str | None = field(default=None, repr=False)
    dht_timeout: float = DHT_TIMEOUT
    transfer_timeout: float = TRANSFER_TIMEOUT
    upload_limit: int = 0  # bytes per second per torrent; 0: no limit
    offline: bool = False  # never touch the network: answer from the cache or fail
    timeout: float | None = None  # the user's bound on every lookup and download wait, s
    hf_cache: bool = False  # also lay pulled versions out as a Hugging Face cache
    hf_cache_dir: Path | None = None  # that cache (HF_HUB_CACHE as huggingface_hub finds it)

    def __post_init__(self) -> None:
        if self.timeout is not None:
            object.__setattr__(self, "dht_timeout", self.timeout)
            object.__setattr__(self, "transfer_timeout", self.timeout)

    @property
    def check_timeout(self) -> float:
        """Seconds to ask the DHT for the latest when a known version can answer instead."""
        return self.timeout if self.timeout is not None else min(CHECK_TIMEOUT, self.dht_timeout)

    @property
    def local_network(self) -> bool:
        """A private DHT (explicit bootstrap nodes) rather than the public mainline DHT."""
        return bool(self.bootstrap)

    @property
    def config_file(self) -> Path:
        """The optional TOML file of settings (`bootstrap`, `listen`, `upload_limit`)."""
        return self.config_dir / CONFIG_FILE

    @classmethod
    def resolve(
        cls,
        env: Mapping[str, str],
        *,
        home: str | Path | None = None,
        bootstrap: tuple[str, ...] = (),
        listen: str | None = None,
        upload_limit: int | None = None,
        offline: bool | None = None,
        timeout: float | None = None,
        hf_cache: bool | None = None,
    ) -> Config:
        """Each setting from its flag, else the environment, else the config file, else default.

        `bootstrap` holds HOST:PORT texts (each may list several, comma-separated), `listen`
        is HOST or HOST:PORT, `upload_limit` is bytes per second (0: none), `timeout` seconds
        (bounds every lookup and download wait). `offline` and `hf_cache` are switches (env:
        1/true/yes/on or 0/false/no/off). The Hugging Face cache folder is found from the
        environment as huggingface_hub finds it (`hf_cache_dir`). Raises
        `UsageError` for text that does not parse, naming where it came from, and for a
        malformed config file, naming the file and the line.
        """
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
        file = FileSettings.read(dirs[0] / CONFIG_FILE)

        if bootstrap:
            nodes = parse_endpoints(",".join(bootstrap), "--bootstrap")
        elif env.get(ENV_BOOTSTRAP) is not None:  # set but empty: no bootstrap node
            nodes = parse_endpoints(env[ENV_BOOTSTRAP], ENV_BOOTSTRAP)
        else:
            nodes = file.bootstrap

        host: str | None
        if listen is not None:
            host, port = parse_listen(listen, "--listen")
        elif env.get(ENV_LISTEN, "").strip():
            host, port = parse_listen(env[ENV_LISTEN], ENV_LISTEN)
        else:
            host, port = file.listen or (None, 0)

        if upload_limit is not None:
            limit = upload_limit
        elif env.get(ENV_UPLOAD_LIMIT, "").strip():
            limit = _whole_number(env[ENV_UPLOAD_LIMIT], ENV_UPLOAD_LIMIT)
        else:
            limit = file.upload_limit

        if offline is None:
            offline = _switch(env, ENV_OFFLINE, file.offline)
        if hf_cache is None:
            hf_cache = _switch(env, ENV_HF_CACHE, file.hf_cache)
        if timeout is None and env.get(ENV_TIMEOUT, "").strip():
            timeout = _seconds(env[ENV_TIMEOUT], ENV_TIMEOUT)
        elif timeout is None:
            timeout = file.timeout
        elif timeout <= 0:
            raise UsageError(f"--timeout must be more than 0 seconds, not {timeout:g}")

        return cls(
            *dirs,
            bootstrap=nodes,
            listen_host=host,
            listen_port=port,
            passphrase=env.get(ENV_PASSPHRASE),
            upload_limit=limit,
            offline=offline,
            timeout=timeout,
            hf_cache=hf_cache,
            hf_cache_dir=hf_hub_cache(env),
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


# --- the config file ------------------------------------------------------------------------


@dataclass(frozen=True)
class FileSettings:
    """What `config.toml` says; every field optional (absent file: all defaults)."""

    bootstrap: tuple[Endpoint, ...] = ()
    listen: Endpoint | None = None
    upload_limit: int = 0
    offline: bool = False
    timeout: float | None = None
    hf_cache: bool = False

    @classmethod
    def read(cls, path: Path) -> FileSettings:
        """Read and check `path` (at most MAX_CONFIG_FILE bytes); `UsageError` names the line."""
        try:
            with path.open("rb") as f:
                data = f.read(MAX_CONFIG_FILE + 1)
        except FileNotFoundError:
            return cls()
        except OSError as exc:
            raise UsageError(f"cannot read {path}: {exc.strerror}") from exc
        if len(data) > MAX_CONFIG_FILE:
            raise UsageError(f"{path} is larger than {MAX_CONFIG_FILE} bytes")
        try:
            text = data.decode()
            doc = tomllib.loads(text)
        except UnicodeDecodeError:
            raise UsageError(f"{path} is not UTF-8 text") from None
        except tomllib.TOMLDecodeError as exc:
            raise UsageError(f"{path}: {exc}", hint="the file is TOML: key = value") from None
        return cls._from(doc, path, text)

    @classmethod
    def _from(cls, doc: dict[str, Any], path: Path, text: str) -> FileSettings:
        def where(key: str) -> str:
            match = re.search(rf"^[ \t]*{re.escape(key)}[ \t]*=", text, re.MULTILINE)
            line = text.count("\n", 0, match.start()) + 1 if match else 0
            return f"{path}, line {line}" if line else str(path)

        unknown = sorted(set(doc) - set(SETTINGS))
        if unknown:
            raise UsageError(
                f"{where(unknown[0])}: unknown setting {unknown[0]!r}",
                hint="the settings are " + ", ".join(SETTINGS),
            )
        settings = cls()
        if "bootstrap" in doc:
            value = doc["bootstrap"]
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise UsageError(
                    f'{where("bootstrap")}: bootstrap must be a list like ["HOST:PORT"]'
                )
            settings = replace(
                settings, bootstrap=parse_endpoints(",".join(value), where("bootstrap"))
            )
        if "listen" in doc:
            if not isinstance(doc["listen"], str):
                raise UsageError(f'{where("listen")}: listen must be a string like "HOST:PORT"')
            settings = replace(settings, listen=parse_listen(doc["listen"], where("listen")))
        if "upload_limit" in doc:
            value = doc["upload_limit"]
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise UsageError(
                    f"{where('upload_limit')}: upload_limit must be a whole number of bytes/s"
                )
            settings = replace(settings, upload_limit=value)
        for switch in ("offline", "hf_cache"):
            if switch in doc:
                if not isinstance(doc[switch], bool):
                    raise UsageError(f"{where(switch)}: {switch} must be true or false")
                settings = replace(settings, **{switch: doc[switch]})
        if "timeout" in doc:
            value = doc["timeout"]
            if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
                raise UsageError(f"{where('timeout')}: timeout must be a number of seconds > 0")
            settings = replace(settings, timeout=float(value))
        return settings


# --- HOST:PORT, the one parser ----------------------------------------------------------------

_BRACKETED = re.compile(r"\[([^\[\]\s]+)\](?::(\d+))?")
_HOST = re.compile(r"[^\s:\[\],/]+")


def parse_endpoint(
    text: str, source: str, *, default_port: int | None = None, min_port: int = 1
) -> Endpoint:
    """`HOST:PORT`, or `[IPV6]:PORT`, into `(host, port)`.

    With `default_port`, the port may be left out (`HOST`, `[IPV6]` or a bare IPv6
    address). Ports run from `min_port` to 65535. `source` names where the text came from
    (a flag, a variable, a file and line) for the `UsageError` raised on anything else.
    """
    part = text.strip()
    host: str | None = None
    port_text: str | None = None
    bracketed = _BRACKETED.fullmatch(part) or (
        default_port is not None and part.count(":") > 1 and _BRACKETED.fullmatch(f"[{part}]")
    )  # [IPV6]:PORT, [IPV6] or, with no port allowed, a bare IPV6
    if bracketed:
        host, port_text = bracketed.group(1), bracketed.group(2)
    elif part.count(":") == 1:
        host, port_text = part.split(":")
    elif ":" not in part:
        host = part
    wanted = "HOST:PORT" if default_port is None else "HOST or HOST:PORT"
    example = "e.g. 127.0.0.1:6881, or [::1]:6881 for IPv6"
    if not host or not (bracketed or _HOST.fullmatch(host)):
        raise UsageError(f"{source}: {part!r} is not {wanted}", hint=example)
    if port_text is None:
        if default_port is None:
            raise UsageError(f"{source}: {part!r} has no port", hint=example)
        return host, default_port
    if not port_text.isdigit() or not min_port <= int(port_text) <= 65535:
        raise UsageError(
            f"{source}: {part!r} has no port between {min_port} and 65535", hint=example
        )
    return host, int(port_text)


def parse_endpoints(text: str, source: str) -> tuple[Endpoint, ...]:
    """A list of `HOST:PORT` separated by commas or spaces; empty text gives `()`."""
    parts = [p for p in re.split(r"[,\s]+", text) if p]
    return tuple(parse_endpoint(p, source) for p in parts)


def parse_listen(text: str, source: str) -> Endpoint:
    """A listen address: `HOST` (any free port) or `HOST:PORT` (port 0: any free port)."""
    return parse_endpoint(text, source, default_port=0, min_port=0)


def hf_hub_cache(env: Mapping[str, str]) -> Path:
    """The Hugging Face hub cache folder, found as huggingface_hub finds it.

    HF_HUB_CACHE, else the legacy HUGGINGFACE_HUB_CACHE, else HF_HOME/hub, else
    XDG_CACHE_HOME/huggingface/hub, else ~/.cache/huggingface/hub; `~` and `$VARS` expanded.
    """

    def expand(text: str) -> str:
        text = os.path.expanduser(text)
        return re.sub(r"\$(\w+)|\$\{(\w+)\}", lambda m: env.get(m[1] or m[2], m[0]), text)

    xdg = env.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    hf_home = expand(env.get("HF_HOME") or os.path.join(xdg, "huggingface"))
    legacy = env.get("HUGGINGFACE_HUB_CACHE") or os.path.join(hf_home, "hub")
    return Path(expand(env.get("HF_HUB_CACHE") or legacy))


_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"", "0", "false", "no", "off"}


def _switch(env: Mapping[str, str], name: str, default: bool) -> bool:
    if name not in env:
        return default
    text = env[name].strip().lower()
    if text in _TRUE | _FALSE:
        return text in _TRUE
    raise UsageError(f"{name}={env[name]!r} is not a switch", hint="use 1 or 0")


def _seconds(text: str, source: str) -> float:
    try:
        value = float(text.strip())
    except ValueError:
        raise UsageError(f"{source}={text!r} is not a number of seconds") from None
    if not value > 0 or value == float("inf"):
        raise UsageError(f"{source}={text!r} must be more than 0 seconds")
    return value


def _whole_number(text: str, source: str) -> int:
    text = text.strip()
    if not text.isdigit():
        raise UsageError(f"{source}={text!r} is not a whole number")
    return int(text)
