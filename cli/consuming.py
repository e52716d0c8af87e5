"""What consumers run: resolve, history, pull, verify, export, and seed what they hold."""

from __future__ import annotations

import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from . import daemon as daemon_cli
from .app import App, Command, pass_app
from .render import human_size

if TYPE_CHECKING:
    from hubless.core.manifest import Manifest


def _date(ts: int) -> str:
    return datetime.datetime.fromtimestamp(ts, datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")


def release_notes(m: Manifest) -> dict[str, Any]:
    """A version's notes (the manifest's `description`), license and tags, for --json."""
    return {"description": m.description, "license": m.license, "tags": list(m.tags)}


def release_lines(m: Manifest, indent: str) -> list[str]:
    """The same as text lines, labelled in a column of 12; absent fields are left out."""
    lines = []
    if m.license:
        lines.append(f"{indent}{'license':<12}{m.license}")
    if m.tags:
        lines.append(f"{indent}{'tags':<12}{', '.join(m.tags)}")
    if m.description:
        first, *rest = m.description.splitlines() or [""]
        lines.append(f"{indent}{'notes':<12}{first}")
        lines += [f"{indent}{'':<12}{line}" for line in rest]
    return lines


@click.command(cls=Command)
@click.argument("ref")
@pass_app
def resolve(app: App, ref: str) -> None:
    """Verify what REF (KEY/NAME[@VERSION]) points at, without downloading the model.

    With -q, prints only the exact reference it resolved to (KEY/NAME@VERSION).
    """
    res = app.client().resolve(ref)
    m = res.target.manifest
    s = {**res.summary(), **release_notes(m)}
    text = "\n".join(
        [
            f"{s['reference']}  seq {s['seq']}"
            + (f"  YANKED: {s['yanked']}" if s["yanked"] else "")
            + ("  (offline: newest known here)" if s["stale"] else ""),
            f"{'published':<12}{_date(s['published_at'])}",
            f"{'files':<12}{s['files']} ({human_size(s['size'])})",
            *release_lines(m, ""),
            f"{'manifest':<12}{s['manifest_infohash']}",
            f"{'content':<12}{s['content_infohash']}",
            *(
                f"{'web seed' if i == 0 else '':<12}{w.base}"
                + (" (files)" if w.kind != "bep19" else "")
                for i, w in enumerate(m.web_seeds)
            ),
        ]
    )
    app.renderer.result(s, text, value=s["reference"])


@click.command(cls=Command)
@click.argument("ref")
@pass_app
def history(app: App, ref: str) -> None:
    """List every version of a model, newest last, with yanks.

    With -q, prints only the version labels, one per line.
    """
    client = app.client()
    res = client.history(ref)
    m = res.latest.manifest
    # Notes, license and tags are signed in each version's own manifest; the history table
    # does not repeat them, so earlier rows carry them when this home holds that manifest.
    held = client.held_manifests(res)
    versions: list[dict[str, Any]] = [
        {
            "seq": h.seq,
            "version": h.version,
            "manifest_infohash": h.manifest_infohash.hex(),
            "manifest_hash": h.manifest_hash.hex(),
            "published_at": h.created,
            "yanked": h.yanked,
            **(release_notes(held[h.seq].manifest) if h.seq in held else {}),
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
            **release_notes(m),
        }
    )
    lines = [f"{m.publisher.text}/{m.name}"]
    for v in versions:
        mark = "  <- latest" if v["seq"] == m.seq else ""
        yank = f"  YANKED: {v['yanked']}" if v["yanked"] else ""
        lines.append(
            f"  seq {v['seq']:>4}  {v['version']:<16} {_date(v['published_at'])}{yank}{mark}"
        )
        if v["seq"] in held:
            lines += release_lines(held[v["seq"]].manifest, " " * 12)
    lines += release_lines(m, " " * 12)
    app.renderer.result(
        {"publisher": m.publisher.text, "name": m.name, "versions": versions},
        "\n".join(lines),
        value="\n".join(str(v["version"]) for v in versions),
    )


@click.command(cls=Command)
@click.argument("ref")
@click.option(
    "--revision",
    metavar="VERSION",
    help="The version to pull, as REF@VERSION would name it (huggingface_hub's name).",
)
@click.option(
    "--to",
    "--local-dir",
    "to",
    type=click.Path(file_okay=False, path_type=Path),
    help="Also place the files in this new (or empty) folder; run again, the same pull "
    "only verifies it.",
)
@click.option("--include", multiple=True, metavar="GLOB", help="Only files matching (repeatable).")
@click.option(
    "--exclude", multiple=True, metavar="GLOB", help="Leave out files matching (repeatable)."
)
@click.option("--allow-yanked", is_flag=True, help="Pull even if the latest version is yanked.")
@click.option("--seed/--no-seed", default=False, help="Then run this home's daemon, until Ctrl-C.")
@click.option(
    "--hf-cache/--no-hf-cache",
    default=None,
    help='Also link it into the Hugging Face cache, so from_pretrained("KEY/NAME") finds it '
    "(env HUBLESS_HF_CACHE=1; config.toml hf_cache).",
)
@pass_app
def pull(
    app: App,
    ref: str,
    revision: str | None,
    to: Path | None,
    include: tuple[str, ...],
    exclude: tuple[str, ...],
    allow_yanked: bool,
    seed: bool,
    hf_cache: bool | None,
) -> None:
    """Download REF, verify every file, print the folder `from_pretrained` can load.

    With -q, stdout is only that folder: P=$(hubless -q pull REF)
    """
    if revision is not None:
        from hubless.core.refs import parse_reference, pin_version  # --help stays quick

        ref = str(pin_version(parse_reference(ref), revision, named_by="--revision"))
    client = app.client(serve=seed)
    result = client.pull(
        ref,
        to=to,
        include=include,
        exclude=exclude,
        allow_yanked=allow_yanked,
        hf_cache=hf_cache,
    )
    s = result.summary()
    summary = (
        f"{s['reference']}: {result.files} files verified; fetched {result.fetched_files} "
        f"({human_size(result.downloaded_bytes)} downloaded), reused {result.reused_files} "
        f"from the cache"
    )
    if result.hf_cache is not None:
        summary += f"; in the Hugging Face cache as {s['publisher']}/{s['name']}"
    app.renderer.result(s, f"{summary}\n{result.path}", value=str(result.path), note=summary)
    if seed:
        res = result.resolution  # what the running daemon, if any, must be serving
        wanted = [res.target_infohash]
        if result.files == len(res.target.manifest.files):
            wanted.append(res.target.manifest.content_infohash)
        daemon_cli.serve_after(app, client, None, wanted)


@click.command(cls=Command)
@click.argument("folder", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option(
    "--publisher", help="Require this publisher key (default: the one the manifest names)."
)
@click.option(
    "--ref",
    metavar="KEY/NAME[@VERSION]",
    help="Check against this reference's signed manifest, resolved on the network (for a "
    "folder another BitTorrent client downloaded).",
)
@pass_app
def verify(app: App, folder: Path, publisher: str | None, ref: str | None) -> None:
    """Check FOLDER's files against the signed manifest it was pulled with.

    With --ref, against the manifest REF resolves to instead: for a folder that aria2c or
    qBittorrent downloaded from an exported torrent (pad files under .pad/ are ignored).
    Exits 1 if any file is missing or modified. With -q, prints only the problems.
    """
    from hubless.core.errors import UsageError
    from hubless.core.keys import PublicKey
    from hubless.services.verify import verify_folder

    if ref is not None:
        if publisher is not None:
            raise UsageError("--ref names the publisher already; leave out --publisher")
        report, _ = app.client().verify_remote(folder, ref)
    else:
        report = verify_folder(folder, PublicKey.parse(publisher) if publisher else None)
    m = report.manifest.manifest
    checked = len(m.files) if report.selected is None else report.selected
    verdict = (
        f"{m.publisher.text}/{m.name}@{m.version}: "
        + ("OK" if report.ok else "FAILED")
        + f", {report.ok_files} of {checked} files intact"
        + (
            f" (a partial pull: the {checked} selected of {len(m.files)} files were checked)"
            if report.selected is not None
            else ""
        )
    )
    problems = [f"missing   {p}" for p in report.missing]
    problems += [f"modified  {p}" for p in report.modified]
    problems += [f"extra     {p}" for p in report.extra]
    if report.pads:
        problems.append(f"ignored   {len(report.pads)} pad files under .pad/ (BEP-47 padding)")
    app.renderer.result(
        report.summary(),
        "\n".join([verdict, *(f"  {p}" for p in problems)]),
        value="\n".join(problems),
        note=verdict,
    )
    if not report.ok:
        click.get_current_context().exit(1)


@click.command(cls=Command)
@click.argument("ref")
@click.option(
    "--torrent",
    "torrent_file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the content .torrent here (it lists this network's DHT nodes).",
)
@click.option("--magnet", is_flag=True, help="Print a magnet link.")
@pass_app
def export(app: App, ref: str, torrent_file: Path | None, magnet: bool) -> None:
    """Hand a model to another BitTorrent client (v1 torrent or magnet).

    Seeders are found through the DHT only, so the client must have DHT on. The .torrent
    lists this network's DHT nodes (BEP-5 `nodes`), which aria2 bootstraps from:

    \b
      aria2c --enable-dht=true --dht-file-path=new.dat FILE.torrent

    A magnet names the infohash and the seeders a DHT lookup found (`x.pe`, which
    qBittorrent and other libtorrent clients use); aria2 ignores `x.pe`, so on a private
    DHT name an entry point (`dht_nodes` in --json output):

    \b
      aria2c --enable-dht=true --dht-entry-point=HOST:PORT --dht-file-path=new.dat MAGNET

    On a private DHT, a fresh --dht-file-path keeps aria2 from also contacting nodes it
    saved earlier (e.g. public DHT nodes in ~/.aria2/dht.dat).

    --torrent also writes NAME.manifest.torrent and the signed manifest beside it: seeding
    both lets another client serve hubless consumers. libtorrent-based clients (qBittorrent,
    Deluge) on one host need "allow multiple connections from the same IP" turned on.
    """
    from hubless.core.errors import UsageError

    if (torrent_file is None) == (not magnet):
        raise UsageError("choose exactly one of --torrent FILE and --magnet")
    client = app.client()
    if torrent_file is not None:
        info = client.export_torrent(ref, torrent_file)
        written = [str(torrent_file)] + [
            info[k] for k in ("manifest_torrent", "manifest_file") if info[k] is not None
        ]
        text = "\n".join(
            [f"wrote {w}" for w in written]
            + ["to seed both with aria2c (hubless consumers need the manifest too):"]
            + [f"  {line}" for line in info["seed"]]
        )
        app.renderer.result(info, text, value="\n".join(written))
    else:
        link = client.magnet(ref)
        app.renderer.result({"magnet": link, "dht_nodes": client.dht_nodes()}, link, value=link)


COMMANDS = (resolve, history, pull, verify, export)
