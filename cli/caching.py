"""What is in the cache: list, rm, prune (names as users of `hf cache` and `ollama` expect),
and import (a folder another BitTorrent client downloaded)."""

from __future__ import annotations

from pathlib import Path

import click

from .app import App, Command, pass_app
from .render import human_size


@click.command("list", cls=Command)
@pass_app
def list_(app: App) -> None:
    """List cached models and versions: size on disk (shared files counted once), seeded,
    partial selections, and unfinished downloads.

    With -q, prints only the references KEY/NAME@VERSION, one per line.
    """
    listing = app.client().list_cache()
    lines: list[str] = []
    refs: list[str] = []
    for model in listing.models:
        lines.append(f"{model.publisher.text}/{model.name}  {human_size(model.size_on_disk)}")
        for v in model.versions:
            marks = [m for m, on in (("partial", v.partial), ("seeded", v.seeded)) if on]
            lines.append(
                f"  {v.manifest.version:<16} seq {v.manifest.seq:<4} {len(v.files):>4} files "
                f"{human_size(v.size):>9}" + (f"  ({', '.join(marks)})" if marks else "")
            )
            refs.append(f"{model.publisher.text}/{model.name}@{v.manifest.version}")
    for ih, size in listing.partial_downloads:
        lines.append(f"unfinished download {ih}  {human_size(size)}")
    lines.append(
        f"total {human_size(listing.size_on_disk)} on disk"
        + (
            f"; {human_size(listing.unused_blobs)} unused (hubless prune)"
            if listing.unused_blobs
            else ""
        )
    )
    app.renderer.result(listing.summary(), "\n".join(lines), value="\n".join(refs))


@click.command(cls=Command)
@click.argument("ref")
@pass_app
def rm(app: App, ref: str) -> None:
    """Remove REF (KEY/NAME for every version, KEY/NAME@VERSION for one) from the cache.

    Frees the files no other version uses and stops seeding what was removed. Refuses while
    a pull of the model runs in this home.
    """
    removal = app.client().remove(ref)
    text = "\n".join(
        [f"removed {r}" for r in removal.removed]
        + [f"freed {human_size(removal.freed)}"]
        + (
            [f"{human_size(removal.deferred)} more once running pulls end: hubless prune"]
            if removal.deferred
            else []
        )
    )
    app.renderer.result(removal.summary(), text, value="\n".join(removal.removed), note=text)


@click.command(cls=Command)
@click.option("--dry-run", is_flag=True, help="Only list what would be removed.")
@pass_app
def prune(app: App, dry_run: bool) -> None:
    """Free files no cached version uses, unfinished downloads and leftovers of crashes.

    Refuses while a pull runs in this home.
    """
    removal = app.client().prune(dry_run=dry_run)
    verb = "would free" if dry_run else "freed"
    text = "\n".join(
        [f"{'would remove' if dry_run else 'removed'} {p}" for p in removal.removed]
        + [f"{verb} {human_size(removal.freed)}"]
    )
    app.renderer.result(removal.summary(), text, value="\n".join(removal.removed), note=text)


@click.command("import", cls=Command)
@click.argument("folder", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.argument("ref")
@pass_app
def import_(app: App, folder: Path, ref: str) -> None:
    """Adopt FOLDER, downloaded by another BitTorrent client, as REF (KEY/NAME@VERSION).

    Every file is checked against REF's signed manifest first (as `verify --ref`), then
    copied into the cache; `hubless seed` serves it from then on. Prints the snapshot folder.
    """
    imported = app.client().import_folder(folder, ref)
    s = imported.summary()
    count = len(imported.resolution.target.manifest.files)
    text = f"{s['reference']}: {count} files verified and imported\n{imported.path}"
    app.renderer.result(s, text, value=str(imported.path), note=text.splitlines()[0])


COMMANDS = (list_, rm, prune, import_)
