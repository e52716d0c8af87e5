"""`hubless publish`: sign a folder as a new version of a model and put its record."""

from __future__ import annotations

from pathlib import Path

import click

from . import daemon as daemon_cli
from .app import DEFAULT_KEY, App, Command, pass_app
from .render import human_size


@click.command(cls=Command)
@click.argument("folder", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--name", required=True, help="Model name (letters, digits, . _ -; at most 64).")
@click.option("--version", "version", required=True, help="Version label, e.g. v1 or 1.0.0.")
@click.option("--notes", help="Description shown with this version.")
@click.option("--license", "license_", help="License identifier, e.g. apache-2.0.")
@click.option("--tag", multiple=True, help="Tag (repeatable).")
@click.option("--key", "key_name", default=DEFAULT_KEY, show_default=True, help="Key to sign with.")
@click.option("--seed/--no-seed", default=False, help="Then run this home's daemon, until Ctrl-C.")
@click.option(
    "--follow-links",
    is_flag=True,
    help="Publish what symbolic links point to, even outside FOLDER (default: refuse them).",
)
@pass_app
def publish(
    app: App,
    folder: Path,
    name: str,
    version: str,
    notes: str | None,
    license_: str | None,
    tag: tuple[str, ...],
    key_name: str,
    seed: bool,
    follow_links: bool,
) -> None:
    """Publish FOLDER as a new signed version of model NAME.

    With -q, prints only the reference (KEY/NAME@VERSION).
    """
    from hubless.core.refs import check_name, check_version

    check_name(name)  # bad input is reported before any passphrase is asked for
    check_version(version)
    client = app.client(serve=seed)
    # Loaded once: publishing and then seeding (which republishes) must not ask twice.
    signing = app.signing_key(key_name)
    result = client.publish(
        folder,
        name,
        version,
        key=signing,
        description=notes,
        license=license_,
        tags=tag,
        follow_links=follow_links,
    )
    if result.unchanged:
        summary = f"{result.reference} is unchanged (seq {result.seq}): nothing published"
        text = summary
    else:
        summary = (
            f"published {result.reference} (seq {result.seq}, {result.files} files, "
            f"{human_size(result.size)})"
        )
        text = f"{summary}\npull it with: hubless pull {result.reference}"
    served = {} if seed else daemon_cli.after_publish(app, client, result)
    app.renderer.result(
        {**result.summary(), **served}, text, value=str(result.reference), note=summary
    )
    if seed:
        wanted = [result.manifest_infohash, result.content_infohash]
        daemon_cli.serve_after(app, client, signing, wanted)


COMMANDS = (publish,)
