"""The `hubless` command: the root group, its global options, and the one exit path.

Parse, call the Python API, render; no protocol logic lives in the command line. Commands
live in one module per group, each exporting `COMMANDS`: `keys` (key new|list|show),
`publishing` (publish), `consuming` (resolve, history, pull, verify, export, seed),
`caching` (list, rm, prune, import), `catalogue` (follow, unfollow, following, models,
search) and `lab` (testnet, demo). A new group is one module and one entry in `GROUPS`.
Nothing heavy is imported until a command runs, so `hubless --help` stays fast.
"""

from __future__ import annotations

import sys
import traceback
from collections.abc import Sequence
from typing import Any

import click

from . import caching, catalogue, consuming, daemon, keys, lab, publishing
from .app import App, Command, Group, global_options

GROUPS = (keys, publishing, consuming, caching, daemon, catalogue, lab)

EPILOG = """\b
Global options may come before or after the command:
  hubless resolve KEY/NAME --json   is   hubless --json resolve KEY/NAME

\b
Each setting comes from its flag, else the environment (HUBLESS_HOME,
HUBLESS_BOOTSTRAP, HUBLESS_LISTEN, HUBLESS_UPLOAD_LIMIT, HUBLESS_OFFLINE,
HUBLESS_TIMEOUT, HUBLESS_HF_CACHE, HUBLESS_PASSPHRASE), else config.toml in
the config folder (bootstrap, listen, upload_limit, offline, timeout,
hf_cache), else the default.

\b
Shell completion: add the line for your shell to its startup file.
  bash   eval "$(_HUBLESS_COMPLETE=bash_source hubless)"
  zsh    eval "$(_HUBLESS_COMPLETE=zsh_source hubless)"
  fish   _HUBLESS_COMPLETE=fish_source hubless | source

\b
Exit codes: 0 success, 1 an operational error, 2 a usage error, 130 interrupted.
"""


class RootGroup(click.Group):
    """The root group: visible global options, and every error mapped to one line and a code.

    The mapping lives in `main`, so the `hubless` entry point and click's test runner
    (`CliRunner().invoke(cli, args, obj=App(...))`) take the same exit path.
    """

    command_class = Command
    group_class = Group

    def main(  # type: ignore[override]
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        **extra: Any,
    ) -> None:
        """Run the command line and exit: 0, 1 (operational error), 2 (usage), 130 (interrupt)."""
        app = extra.get("obj")
        if not isinstance(app, App):
            app = extra["obj"] = App()
        try:
            code = self._run(app, args, prog_name or "hubless", complete_var, extra)
        finally:
            app.close()
        sys.exit(code)

    def _run(
        self,
        app: App,
        args: Sequence[str] | None,
        prog_name: str,
        complete_var: str | None,
        extra: dict[str, Any],
    ) -> int:
        try:
            rv = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
            return rv if isinstance(rv, int) else 0
        except click.exceptions.Abort:
            app.renderer.notice("aborted")
            return 130
        except KeyboardInterrupt:
            app.renderer.notice("interrupted")
            return 130
        except click.ClickException as exc:
            exc.show()
            return exc.exit_code
        except Exception as exc:
            from hubless.core.errors import HublessError

            from .errors import classify

            if not isinstance(exc, HublessError):
                raise
            code, hint = classify(exc)
            detail = traceback.format_exc() if app.debug else ""
            app.renderer.error(exc.message, hint, detail=detail)
            return code


@click.group(
    "hubless",
    cls=RootGroup,
    context_settings={"help_option_names": ["-h", "--help"]},
    epilog=EPILOG,
)
@global_options(hidden=False)
@click.version_option(package_name="hubless")
def cli() -> None:
    """hubless: a registry for AI models with no hub.

    Models are named KEY/NAME[@VERSION]: the publisher's key, the model's name, and
    optionally a version. Releases travel over BitTorrent; the DHT says which is latest.
    """


for _group in GROUPS:
    for _command in _group.COMMANDS:
        cli.add_command(_command)


def main(argv: list[str] | None = None) -> None:
    """Entry point of the `hubless` command (exits with the command's code)."""
    cli.main(args=argv, prog_name="hubless")
