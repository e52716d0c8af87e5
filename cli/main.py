"""The `hubless` command: parse, call the Python API, render. No protocol logic lives here."""

from __future__ import annotations

import datetime
import logging
import os
import sys
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
from hubless.config import ENV_PASSPHRASE, Config
from hubless.core.errors import HublessError, KeyStoreError, UsageError
from hubless.store.keystore import DEFAULT_KEY

from . import daemon as daemon_cli
from .errors import classify
from .render import Renderer, human_size

if TYPE_CHECKING:
    from hubless.services.client import Client


@dataclass
class App:
    """What the group options decided, shared with every command."""

    renderer: Renderer = field(default_factory=lambda: Renderer(as_json=False))
    debug: bool = False
    config: Config | None = None
    client_: Client | None = None

    def client(self, *, serve: bool = False) -> Client:
        """`serve`: this command keeps serving (the daemon); else it is one-shot."""
        if self.client_ is None:
            from hubless.services.client import Client

            assert self.config is not None
            self.client_ = Client(
                self.config, on_event=self.renderer.event, passphrase_prompt=_prompt, serve=serve
            )
        return self.client_


_app = App()


def _prompt(message: str) -> str:
    if not sys.stdin.isatty():
        raise KeyStoreError(
            "the key needs a passphrase and there is no terminal to ask",
            hint=f"set {ENV_PASSPHRASE}",
        )
    return str(click.prompt(message, hide_input=True))


def _date(ts: int) -> str:
    return datetime.datetime.fromtimestamp(ts, datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON on stdout.")
@click.option(
    "--bootstrap",
    multiple=True,
    metavar="HOST:PORT",
    help="Join a private DHT through this node (repeatable; env HUBLESS_BOOTSTRAP).",
)
@click.option("--listen", metavar="HOST[:PORT]", help="Address to listen on (env HUBLESS_LISTEN).")
@click.option(
    "--home",
    type=click.Path(file_okay=False, path_type=Path),
    help="Keep keys, state and cache under this folder (env HUBLESS_HOME).",
)
@click.option(
    "--upload-limit",
    type=click.IntRange(min=0),
    metavar="BYTES/S",
    help="Cap upload per seeded torrent (env HUBLESS_UPLOAD_LIMIT; 0: none).",
)
@click.option("--quiet", "-q", is_flag=True, help="No progress output.")
@click.option("--debug", is_flag=True, help="Show tracebacks on errors.")
@click.version_option(package_name="hubless")
def cli(
    as_json: bool,
    bootstrap: tuple[str, ...],
    listen: str | None,
    home: Path | None,
    upload_limit: int | None,
    quiet: bool,
    debug: bool,
) -> None:
    """hubless: a registry for AI models with no hub.

    Models are named KEY/NAME[@VERSION]: the publisher's key, the model's name, and
    optionally a version. Releases travel over BitTorrent; the DHT says which is latest.
    """
    _app.renderer = Renderer(as_json=as_json, quiet=quiet)
    _app.debug = debug
    click.get_current_context().obj = _app  # commands in other modules find it here
    if debug:
        logging.basicConfig(level=logging.DEBUG, format="%(name)s: %(message)s")
    if listen and ":" not in listen:
        listen = f"{listen}:0"
    _app.config = Config.resolve(
        os.environ, home=home, bootstrap=bootstrap, listen=listen, upload_limit=upload_limit
    )


# --- keys ------------------------------------------------------------------------------------


@cli.group()
def key() -> None:
    """Create and inspect publisher keys."""


@key.command("new")
@click.option("--name", default=DEFAULT_KEY, show_default=True, help="Local name of the key.")
@click.option("--no-passphrase", is_flag=True, help="Store the key unencrypted (0600 file).")
def key_new(name: str, no_passphrase: bool) -> None:
    """Create a new publisher key."""
    assert _app.config is not None
    keys = _app.client().keys
    if keys.exists(name):
        raise KeyStoreError(f"key {name!r} already exists", hint="choose another --name")
    passphrase = None
    if not no_passphrase:
        passphrase = _app.config.passphrase
        if passphrase is None:
            if not sys.stdin.isatty():
                raise UsageError(
                    "a new key needs a passphrase",
                    hint=f"set {ENV_PASSPHRASE}, or pass --no-passphrase",
                )
            passphrase = str(
                click.prompt(
                    "Passphrase for the new key", hide_input=True, confirmation_prompt=True
                )
            )
    info = keys.create(name, passphrase)
    _app.renderer.result(
        {
            "name": info.name,
            "public_key": info.public.text,
            "encrypted": info.encrypted,
            "path": str(info.path),
        },
        f"created key {info.name!r}: {info.public.text}\n(kept in {info.path}"
        + (", encrypted)" if info.encrypted else ", NOT encrypted)"),
    )


@key.command("list")
def key_list() -> None:
    """List the keys on this machine."""
    keys = _app.client().keys.list()
    rows = [{"name": k.name, "public_key": k.public.text, "encrypted": k.encrypted} for k in keys]
    text = (
        "\n".join(
            f"{k.name:<16} {k.public.text}{'' if k.encrypted else '  (unencrypted)'}" for k in keys
        )
        or "no keys yet: create one with `hubless key new`"
    )
    _app.renderer.result(rows, text)


@key.command("show")
@click.argument("name", default=DEFAULT_KEY)
def key_show(name: str) -> None:
    """Print a key's public text form (what consumers put before /NAME)."""
    info = _app.client().keys.info(name)
    _app.renderer.result(
        {
            "name": info.name,
            "public_key": info.public.text,
            "encrypted": info.encrypted,
            "path": str(info.path),
        },
        info.public.text,
    )


# --- publishing ------------------------------------------------------------------------------


@cli.command()
@click.argument("folder", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--name", required=True, help="Model name (letters, digits, . _ -; at most 64).")
@click.option("--version", "version", required=True, help="Version label, e.g. v1 or 1.0.0.")
@click.option("--notes", help="Description shown with this version.")
@click.option("--license", "license_", help="License identifier, e.g. apache-2.0.")
@click.option("--tag", multiple=True, help="Tag (repeatable).")
@click.option("--key", "key_name", default=DEFAULT_KEY, show_default=True, help="Key to sign with.")
@click.option("--seed/--no-seed", default=False, help="Then run this home's daemon, until Ctrl-C.")
def publish(
    folder: Path,
    name: str,
    version: str,
    notes: str | None,
    license_: str | None,
    tag: tuple[str, ...],
    key_name: str,
    seed: bool,
) -> None:
    """Publish FOLDER as a new signed version of model NAME."""
    client = _app.client(serve=seed)
    result = client.publish(
        folder, name, version, key=key_name, description=notes, license=license_, tags=tag
    )
    text = (
        f"{result.reference} is unchanged (seq {result.seq}): nothing published"
        if result.unchanged
        else f"published {result.reference} (seq {result.seq}, {result.files} files, "
        f"{human_size(result.size)})\n"
        f"pull it with: hubless pull {result.reference}"
    )
    served = {} if seed else daemon_cli.after_publish(_app, client, result)
    _app.renderer.result({**result.summary(), **served}, text)
    if seed:
        wanted = [result.manifest_infohash, result.content_infohash]
        daemon_cli.serve_after(_app, client, client.signing_key(key_name), wanted)


# --- consuming -------------------------------------------------------------------------------


@cli.command()
@click.argument("ref")
def resolve(ref: str) -> None:
    """Verify what REF (KEY/NAME[@VERSION]) points at, without downloading the model."""
    res = _app.client().resolve(ref)
    s = res.summary()
    text = "\n".join(
        [
            f"{s['reference']}  seq {s['seq']}"
            + (f"  YANKED: {s['yanked']}" if s["yanked"] else "")
            + ("  (offline: newest known here)" if s["stale"] else ""),
            f"published   {_date(s['published_at'])}",
            f"files       {s['files']} ({human_size(s['size'])})",
            f"manifest    {s['manifest_infohash']}",
            f"content     {s['content_infohash']}",
        ]
    )
    _app.renderer.result(s, text)


@cli.command()
@click.argument("ref")
def history(ref: str) -> None:
    """List every version of a model, newest last, with yanks."""
    res = _app.client().history(ref)
    m = res.latest.manifest
    versions: list[dict[str, Any]] = [
        {
            "seq": h.seq,
            "version": h.version,
            "manifest_infohash": h.manifest_infohash.hex(),
            "manifest_hash": h.manifest_hash.hex(),
            "published_at": h.created,
            "yanked": h.yanked,
        }
        for h in m.history
    ]
    versions.append(
        {
            "seq": m.seq,
            "version": m.version,
            "manifest_infohash": res.latest_infohash.hex(),
            "manifest_hash": res.latest.hash.hex(),
            "published_at": m.created,
            "yanked": m.yanked,
        }
    )
    lines = [f"{m.publisher.text}/{m.name}"]
    for v in versions:
        mark = "  <- latest" if v["seq"] == m.seq else ""
        yank = f"  YANKED: {v['yanked']}" if v["yanked"] else ""
        lines.append(
            f"  seq {v['seq']:>4}  {v['version']:<16} {_date(v['published_at'])}{yank}{mark}"
        )
    _app.renderer.result(
        {"publisher": m.publisher.text, "name": m.name, "versions": versions}, "\n".join(lines)
    )


@cli.command()
@click.argument("ref")
@click.option(
    "--to",
    type=click.Path(file_okay=False, path_type=Path),
    help="Also place the files in this new (or empty) folder.",
)
@click.option("--include", multiple=True, metavar="GLOB", help="Only files matching (repeatable).")
@click.option("--allow-yanked", is_flag=True, help="Pull even if the latest version is yanked.")
@click.option("--seed/--no-seed", default=False, help="Then run this home's daemon, until Ctrl-C.")
def pull(
    ref: str, to: Path | None, include: tuple[str, ...], allow_yanked: bool, seed: bool
) -> None:
    """Download REF, verify every file, print the folder `from_pretrained` can load."""
    client = _app.client(serve=seed)
    result = client.pull(ref, to=to, include=include, allow_yanked=allow_yanked)
    s = result.summary()
    text = (
        f"{s['reference']}: {result.files} files verified; fetched {result.fetched_files} "
        f"({human_size(result.downloaded_bytes)} downloaded), reused {result.reused_files} "
        f"from the cache\n{result.path}"
    )
    _app.renderer.result(s, text)
    if seed:
        res = result.resolution  # what the running daemon, if any, must be serving
        wanted = [res.target_infohash]
        if result.files == len(res.target.manifest.files):
            wanted.append(res.target.manifest.content_infohash)
        daemon_cli.serve_after(_app, client, None, wanted)


for _command in daemon_cli.COMMANDS:  # seed, status
    cli.add_command(_command)


@cli.command()
@click.argument("folder", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option(
    "--publisher", help="Require this publisher key (default: the one the manifest names)."
)
def verify(folder: Path, publisher: str | None) -> None:
    """Check FOLDER's files against the signed manifest it was pulled with."""
    from hubless.core.keys import PublicKey
    from hubless.services.verify import verify_folder

    report = verify_folder(folder, PublicKey.parse(publisher) if publisher else None)
    m = report.manifest.manifest
    lines = [
        f"{m.publisher.text}/{m.name}@{m.version}: "
        + ("OK" if report.ok else "FAILED")
        + f", {report.ok_files} of {len(m.files)} files intact"
    ]
    lines += [f"  missing   {p}" for p in report.missing]
    lines += [f"  modified  {p}" for p in report.modified]
    lines += [f"  extra     {p}" for p in report.extra]
    _app.renderer.result(report.summary(), "\n".join(lines))
    if not report.ok:
        raise SystemExit(1)


@cli.command()
@click.argument("ref")
@click.option(
    "--torrent",
    "torrent_file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the content .torrent here (it lists this network's DHT nodes).",
)
@click.option("--magnet", is_flag=True, help="Print a magnet link.")
def export(ref: str, torrent_file: Path | None, magnet: bool) -> None:
    """Hand a model to another BitTorrent client (v1 torrent or magnet).

    Seeders are found through the DHT only, so the client must have DHT on. The .torrent
    lists this network's DHT nodes (BEP-5 `nodes`), which aria2 bootstraps from:

    \b
      aria2c --enable-dht=true --dht-file-path=new.dat FILE.torrent

    A magnet names only the infohash; aria2 ignores `x.pe` peer hints, so on a private
    DHT name an entry point (`dht_nodes` in --json output):

    \b
      aria2c --enable-dht=true --dht-entry-point=HOST:PORT --dht-file-path=new.dat MAGNET

    On a private DHT, a fresh --dht-file-path keeps aria2 from also contacting nodes it
    saved earlier (e.g. public DHT nodes in ~/.aria2/dht.dat).
    """
    if (torrent_file is None) == (not magnet):
        raise UsageError("choose exactly one of --torrent FILE and --magnet")
    client = _app.client()
    if torrent_file is not None:
        info = client.export_torrent(ref, torrent_file)
        _app.renderer.result(info, f"wrote {torrent_file}")
    else:
        link = client.magnet(ref)
        _app.renderer.result({"magnet": link, "dht_nodes": client.dht_nodes()}, link)


# --- networks and the demo -------------------------------------------------------------------


@cli.command()
@click.option("--nodes", default=8, show_default=True, help="How many DHT nodes to run.")
@click.option("--port", default=0, help="First node's port (0: any free ports).")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
def testnet(nodes: int, port: int, host: str) -> None:
    """Run a private DHT for a lab, a LAN or tests, until Ctrl-C."""
    from hubless.net.testnet import run_testnet

    run_testnet(nodes, port, host, as_json=_app.renderer.as_json)


@cli.command()
@click.option(
    "--keep",
    type=click.Path(file_okay=False, path_type=Path),
    help="Keep the demo's identities and files in this folder.",
)
def demo(keep: Path | None) -> None:
    """Run a registry on this machine: testnet, publish two versions, pull in another process."""
    from hubless.lab.demo import run_demo

    say: Callable[[str], None] = _app.renderer.event_text
    outcome = run_demo(keep.resolve() if keep else None, say=say, on_event=lambda e: None)
    _app.renderer.result(
        {"ok": True, **{k: v for k, v in outcome.items() if k != "history"}},
        "demo finished: every step verified",
    )


def main(argv: list[str] | None = None) -> None:
    """Entry point: run the command, map errors to one line and an exit code."""
    try:
        cli.main(args=argv, prog_name="hubless", standalone_mode=False)
    except click.exceptions.Abort:
        sys.stderr.write("aborted\n")
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except HublessError as exc:
        code, hint = classify(exc)
        if _app.debug:
            traceback.print_exc()
        _app.renderer.error(exc.message, hint)
        sys.exit(code)
    except KeyboardInterrupt:
        sys.stderr.write("interrupted\n")
        sys.exit(130)
    finally:
        if _app.client_ is not None:
            _app.client_.close()
    sys.exit(0)
