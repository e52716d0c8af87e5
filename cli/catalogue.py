"""Following publishers and browsing what they publish: follow, unfollow, following, models,
search. The daemon (`hubless seed`) is what polls the follows and fetches new versions."""

from __future__ import annotations

import datetime
from typing import Any

import click

from .app import App, Command, pass_app
from .render import human_size


def _date(ts: float | None) -> str:
    if ts is None:
        return "-"
    return datetime.datetime.fromtimestamp(ts, datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")


def _short(key: str) -> str:
    return f"{key[:12]}…"


@click.command(cls=Command)
@click.argument("target", metavar="KEY[/NAME]")
@pass_app
def follow(app: App, target: str) -> None:
    """Follow a publisher KEY (every model it publishes, now and later) or one model.

    `hubless seed` then fetches, verifies and serves each new version. With -q, prints
    only the models found.
    """
    result = app.client().follow(target)
    s = result.summary()
    what = f"{result.publisher.text}/{result.name}" if result.name else result.publisher.text
    head = ("following " if result.new else "already following ") + what
    if result.error:
        lines = [head, f"  not found yet: {result.error}", "  `hubless seed` keeps looking"]
    elif result.name:
        lines = [head, f"  latest version: {result.latest}"]
    else:
        lines = [head, f"  {len(result.models)} models: {', '.join(result.models) or '-'}"]
    app.renderer.result(s, "\n".join(lines), value="\n".join(result.models), note=head)


@click.command(cls=Command)
@click.argument("target", metavar="KEY[/NAME]")
@pass_app
def unfollow(app: App, target: str) -> None:
    """Stop following a publisher KEY (all of it) or one model of it.

    Exits 1 if it was not followed.
    """
    done = app.client().unfollow(target)
    text = f"no longer following {target}" if done else f"{target} was not followed"
    app.renderer.result({"target": target, "unfollowed": done}, text, value=None)
    if not done:
        click.get_current_context().exit(1)


@click.command(cls=Command)
@pass_app
def following(app: App) -> None:
    """List the publishers and models followed, with each one's poll state.

    A model its publisher removed from its index is shown once, flagged, and then no
    longer followed. With -q, prints only the model references.
    """
    listed = app.client().following()
    s = listed.summary()
    lines = []
    for p in s["publishers"]:
        count = len(p["models"])
        index = "index not read yet" if p["index_seq"] is None else f"index seq {p['index_seq']}"
        lines.append(f"{p['publisher']}  (every model: {count}; {index})")
        if p["error"]:
            lines.append(f"  index: {p['error']} ({p['failures']} failures in a row)")
    for m in s["models"]:
        via = "by name" if m["explicit"] else "via index"
        held = f"seq {m['held_seq']}" if m["held_seq"] is not None else "nothing yet"
        line = f"  {_short(m['publisher'])}/{m['name']:<28} {via:<10} holds {held}"
        if m["removed_from_index_at"] is not None:
            line += "  REMOVED from the publisher's index: no longer followed"
        if m["stopped"]:
            line += f"  STOPPED: {m['stopped']}"
        elif m["error"] and m["failures"]:
            line += f"  last poll failed: {m['error']}"
        elif m["error"]:  # the poll worked, the download did not: "could not fetch ..."
            line += f"  {m['error']}"
        lines.append(line)
    text = "\n".join(lines) if lines else "nothing followed (hubless follow KEY[/NAME])"
    app.renderer.result(s, text, value="\n".join(m["reference"] for m in s["models"]))


@click.command(cls=Command)
@click.argument("key")
@pass_app
def models(app: App, key: str) -> None:
    """List every model publisher KEY publishes, with its latest version.

    Read from the publisher's index in the DHT and checked like every record. With -q,
    prints only the references (KEY/NAME@VERSION).
    """
    cat = app.client().models(key).summary()
    lines = [
        f"{cat['publisher']}  index seq {cat['index_seq']}"
        + ("  (offline: the index known here)" if cat["stale"] else "")
    ]
    for m in cat["models"]:
        lines += _model_lines(m)
    refs = [f"{m['reference']}@{m['version']}" for m in cat["models"] if m["version"]]
    app.renderer.result(cat, "\n".join(lines), value="\n".join(refs))


def _model_lines(m: dict[str, Any]) -> list[str]:
    if m["error"]:
        return [f"  {m['name']:<28} unavailable: {m['error']}"]
    line = (
        f"  {m['name']:<28} {m['version']:<12} {_date(m['published_at'])}  "
        f"{human_size(m['size'])}, {m['versions']} versions"
    )
    if m["yanked"]:
        line += f"  YANKED: {m['yanked']}"
    lines = [line]
    if m["license"]:
        lines.append(f"  {'':<28} license  {m['license']}")
    if m["tags"]:
        lines.append(f"  {'':<28} tags     {', '.join(m['tags'])}")
    if m["description"]:
        lines.append(f"  {'':<28} {m['description'].splitlines()[0]}")
    return lines


@click.command(cls=Command)
@click.argument("text", nargs=-1, required=True)
@pass_app
def search(app: App, text: tuple[str, ...]) -> None:
    """Find models this machine knows (followed publishers, pulled models) by name, tag or
    description; every word must match. No network: `hubless models KEY` learns more.

    With -q, prints only the references.
    """
    hits = [hit.summary() for hit in app.client().search(" ".join(text))]
    lines = []
    for h in hits:
        mark = "  (followed)" if h["followed"] else ""
        version = h["version"] or "(not resolved yet)"
        lines.append(f"{_short(h['publisher'])}/{h['name']:<28} {version:<12}{mark}")
        if h["tags"]:
            lines.append(f"  tags  {', '.join(h['tags'])}")
        if h["description"]:
            lines.append(f"  {h['description'].splitlines()[0]}")
    text_out = "\n".join(lines) if lines else "no model known here matches"
    app.renderer.result(
        {"query": " ".join(text), "results": hits},
        text_out,
        value="\n".join(h["reference"] for h in hits),
    )


COMMANDS = (follow, unfollow, following, models, search)
