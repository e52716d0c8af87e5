"""What every command shares, carried in click's context object instead of a module global.

`App` is `ctx.obj`: the global options as they were given (before or after the command),
and, made on first use, the resolved `Config`, the `Renderer` and the `Client`. A test
hands its own `App` to click's runner (`runner.invoke(cli, args, obj=App(...))`) to run
any command in-process, with an in-memory network, a scripted passphrase prompt and a stop
event of its choosing.

Global options are declared once here (`global_options`) and attached to the root group
and to every command and group below it, so `hubless --json resolve REF` and
`hubless resolve REF --json` mean the same; values given in both places combine (flags
switch on, `--bootstrap` adds up, the last `--home`, `--listen` or `--upload-limit` wins).
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from .render import Renderer

if TYPE_CHECKING:
    from hubless.config import Config
    from hubless.core.keys import SigningKey
    from hubless.net.contract import Network
    from hubless.services.client import Client

F = TypeVar("F", bound=Callable[..., Any])

#: The key `publish`, `seed` and `key` use when none is named (the key store's default).
DEFAULT_KEY = "default"
ENV_PASSPHRASE = "HUBLESS_PASSPHRASE"

GLOBAL_OPTIONS_NOTE = (
    "Global options (--json, -q, --debug, --home, --bootstrap, --listen, --upload-limit, "
    "--offline, --timeout) may come before or after the command; see `hubless --help`."
)


@dataclass
class Options:
    """The global options as given on the command line (None or empty: not given)."""

    as_json: bool = False
    quiet: bool = False
    debug: bool = False
    home: Path | None = None
    bootstrap: tuple[str, ...] = ()
    listen: str | None = None
    upload_limit: int | None = None
    offline: bool = False
    timeout: float | None = None


def _terminal_prompt(message: str) -> str:
    from hubless.core.errors import KeyStoreError

    if not sys.stdin.isatty():
        raise KeyStoreError(
            "the key needs a passphrase and there is no terminal to ask",
            hint=f"set {ENV_PASSPHRASE}",
        )
    return str(click.prompt(message, hide_input=True))


def _stop_on_signals() -> threading.Event:
    """An event set by SIGINT or SIGTERM: how long-running commands learn to stop."""
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    return stop


@dataclass
class App:
    """Shared state of one invocation; `network`, `prompt` and `stop` are seams for tests."""

    options: Options = field(default_factory=Options)
    network: Network | None = None
    prompt: Callable[[str], str] = _terminal_prompt
    stop: Callable[[], threading.Event] = _stop_on_signals
    _config: Config | None = field(default=None, init=False, repr=False)
    _renderer: Renderer | None = field(default=None, init=False, repr=False)
    _client: Client | None = field(default=None, init=False, repr=False)

    @property
    def debug(self) -> bool:
        return self.options.debug

    @property
    def config(self) -> Config:
        """Flags > environment > config file > defaults, resolved once (`Config.resolve`)."""
        if self._config is None:
            from hubless.config import Config

            o = self.options
            self._config = Config.resolve(
                os.environ,  # read now, not at import: a test runner may have changed it
                home=o.home,
                bootstrap=o.bootstrap,
                listen=o.listen,
                upload_limit=o.upload_limit,
                offline=True if o.offline else None,
                timeout=o.timeout,
            )
        return self._config

    @property
    def renderer(self) -> Renderer:
        """Made on first use, after every global option (wherever it was) has been read."""
        if self._renderer is None:
            self._renderer = Renderer(as_json=self.options.as_json, quiet=self.options.quiet)
        return self._renderer

    def client(self, *, serve: bool = False) -> Client:
        """The Python API's `Client`; its network starts only when a command needs it.

        `serve`: this command keeps serving (the daemon); otherwise it is one-shot and its
        downloads do not announce themselves as peers (spec §8.5).
        """
        if self._client is None:
            from hubless.services.client import Client

            self._client = Client(
                self.config,
                network=self.network,
                on_event=self.renderer.event,
                passphrase_prompt=self.prompt,
                serve=serve,
            )
        return self._client

    def signing_key(self, name: str) -> SigningKey:
        """Load key `name`, asking for its passphrase if it needs one and none is configured.

        Each call may ask again: a command loads a key once and passes the key on.
        """
        return self.client().signing_key(name)

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None


pass_app = click.make_pass_decorator(App, ensure=True)


# --- global options, accepted by every command ---------------------------------------------


def _app_of(ctx: click.Context) -> App:
    app = ctx.find_object(App)
    if app is None:
        app = ctx.ensure_object(App)
    return app


def _store(name: str) -> Callable[[click.Context, click.Parameter, Any], None]:
    def callback(ctx: click.Context, param: click.Parameter, value: Any) -> None:
        if value is None or value is False or value == ():
            return  # not given here: keep what another position said
        options = _app_of(ctx).options
        if name == "bootstrap":
            options.bootstrap = (*options.bootstrap, *value)
        else:
            setattr(options, name, value)
        if name == "debug":
            logging.basicConfig(level=logging.DEBUG, format="%(name)s: %(message)s")

    return callback


def global_options(*, hidden: bool) -> Callable[[F], F]:
    """The global options as click parameters; `hidden` on commands below the root."""
    specs: list[tuple[tuple[str, ...], dict[str, Any]]] = [
        (("--json", "as_json"), {"is_flag": True, "help": "Print machine-readable JSON."}),
        (
            ("--quiet", "-q", "quiet"),
            {
                "is_flag": True,
                "help": "No progress; stdout carries only each command's main value "
                "(a path, a key, a reference); summaries go to stderr.",
            },
        ),
        (("--debug", "debug"), {"is_flag": True, "help": "Show logs and tracebacks."}),
        (
            ("--home", "home"),
            {
                "type": click.Path(file_okay=False, path_type=Path),
                "help": "Keep keys, state, cache and config.toml under this folder "
                "(env HUBLESS_HOME).",
            },
        ),
        (
            ("--bootstrap", "bootstrap"),
            {
                "multiple": True,
                "metavar": "HOST:PORT",
                "help": "Join a private DHT through this node (repeatable; "
                "env HUBLESS_BOOTSTRAP; config.toml bootstrap).",
            },
        ),
        (
            ("--listen", "listen"),
            {
                "metavar": "HOST[:PORT]",
                "help": "Address to listen on (env HUBLESS_LISTEN; config.toml listen).",
            },
        ),
        (
            ("--upload-limit", "upload_limit"),
            {
                "type": click.IntRange(min=0),
                "metavar": "BYTES/S",
                "help": "Cap upload per seeded torrent, 0: none (env HUBLESS_UPLOAD_LIMIT; "
                "config.toml upload_limit).",
            },
        ),
        (
            ("--offline", "offline"),
            {
                "is_flag": True,
                "help": "Never use the network: answer from the cache or fail "
                "(env HUBLESS_OFFLINE=1; config.toml offline).",
            },
        ),
        (
            ("--timeout", "timeout"),
            {
                "type": click.FloatRange(min=0, min_open=True),
                "metavar": "SECONDS",
                "help": "Bound every lookup and download wait (env HUBLESS_TIMEOUT; "
                "config.toml timeout; default 30 s per lookup, 10 s when a cached "
                "version can answer).",
            },
        ),
    ]

    def decorate(f: F) -> F:
        for decls, attrs in reversed(specs):
            *flags, name = decls
            f = click.option(
                *flags,
                name,
                expose_value=False,
                callback=_store(name),
                hidden=hidden,
                **attrs,
            )(f)
        return f

    return decorate


class Command(click.Command):
    """A command that accepts the global options too and says so in its help."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("epilog", GLOBAL_OPTIONS_NOTE)
        super().__init__(*args, **kwargs)
        global_options(hidden=True)(self)


class Group(click.Group):
    """A group of commands; the group and its commands accept the global options too."""

    command_class = Command

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        global_options(hidden=True)(self)


Group.group_class = Group
