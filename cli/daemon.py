"""`hubless seed` (the home's daemon) and `hubless status`, and what publish and pull say
about serving: one-shot commands leave serving to the daemon (spec §8.5)."""

from __future__ import annotations

import datetime
import json
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import click
from hubless.services.intervals import POLL_EVERY, RECORD_LIFETIME, REPUBLISH_EVERY

from .app import App, Command, pass_app
from .render import Renderer, human_size

if TYPE_CHECKING:
    from hubless.core.keys import SigningKey
    from hubless.services.client import Client
    from hubless.services.events import Event, Listener
    from hubless.services.mirror import MirrorOptions
    from hubless.services.publish import PublishResult
    from hubless.services.status import DaemonStatus

#: Seconds a one-shot publish waits for the running daemon to serve what it published.
PICKUP_WAIT = 15.0


def _stamped(listener: Listener) -> Listener:
    """Daemon log lines carry the local time: it runs for days."""
    from hubless.services.events import Event

    def stamp(event: Event) -> None:
        clock = time.strftime("%H:%M:%S")
        listener(Event(event.stage, f"{clock} {event.message}", *_tail(event)))

    return stamp


def _tail(event: Event) -> tuple[int, int, float, int, float | None]:
    return event.done, event.total, event.rate, event.peers, event.eta


def run_daemon(
    app: App,
    client: Client,
    key: SigningKey | None = None,
    republish_interval: float = REPUBLISH_EVERY,
    mirror: MirrorOptions | None = None,
) -> None:
    """Run the home's daemon in this process until SIGINT/SIGTERM."""
    from hubless.services.daemon import Daemon

    daemon = Daemon(
        client,
        key=key,
        republish_interval=republish_interval,
        on_event=_stamped(app.renderer.event),
        mirror=mirror,
    )
    daemon.run(app.stop())


def serve_after(
    app: App, client: Client, key: SigningKey | None = None, infohashes: Sequence[bytes] = ()
) -> None:
    """What `--seed` does after a publish or pull: run the daemon here, unless one runs for
    this home already (it picks the new torrents up from the store: wait until it serves
    `infohashes`)."""
    from hubless.services.status import wait_served
    from hubless.store.lock import running_daemon

    pid = running_daemon(client.config.data_dir)
    if pid is not None:
        served = wait_served(client.config, list(infohashes), PICKUP_WAIT)
        app.renderer.event_text(
            f"the daemon of this home (pid {pid}) serves it; not starting a second one"
            if served
            else f"the daemon of this home (pid {pid}) did not pick it up in {PICKUP_WAIT:g}s"
        )
        return
    app.renderer.event_text("serving as this home's daemon; press Ctrl-C to stop")
    run_daemon(app, client, key)


def after_publish(app: App, client: Client, result: PublishResult) -> dict[str, Any]:
    """For a publish without --seed: who serves the new version now (fields for --json).

    With a daemon running, wait until it serves the new torrents. Without one, say plainly on
    stderr that nothing serves them, and how to fix it.
    """
    from hubless.services.status import wait_served
    from hubless.store.lock import running_daemon

    config = client.config
    pid = running_daemon(config.data_dir)
    wanted = [result.manifest_infohash, result.content_infohash]
    if pid is not None:
        if wait_served(config, wanted, PICKUP_WAIT):
            return {"served": True, "daemon_pid": pid}
        message = (
            f"the daemon of this home (pid {pid}) did not start serving {result.reference} "
            f"within {PICKUP_WAIT:g}s; check its log"
        )
        _warn(app.renderer, message)
        return {"served": False, "daemon_pid": pid, "warning": message}
    message = (
        f"nothing serves {result.reference} now: no daemon runs for this home, and this "
        "command does not keep serving. Consumers will find the record but no peer. Start "
        "`hubless seed` (it serves everything this home publishes or pulls and keeps the "
        "records alive), or publish with --seed."
    )
    _warn(app.renderer, message)
    return {"served": False, "daemon_pid": None, "warning": message}


def _warn(renderer: Renderer, message: str) -> None:
    """A warning on stderr, even with -q: it is not progress."""
    if renderer.as_json:
        renderer.err.write(json.dumps({"warning": message}) + "\n")
    else:
        renderer.err.write(f"warning: {message}\n")
    renderer.err.flush()


# --- commands ------------------------------------------------------------------------------------


@click.command(cls=Command)
@click.option(
    "--key", "key_name", help="Also sign this key's records again each round (its holder)."
)
@click.option(
    "--republish-interval",
    type=click.FloatRange(min=0, min_open=True, max=RECORD_LIFETIME, max_open=True),
    default=REPUBLISH_EVERY,
    show_default=True,
    metavar="SECONDS",
    help="How often each kept record is checked and put again (with jitter).",
)
@click.option(
    "--poll-interval",
    type=click.FloatRange(min=0, min_open=True),
    default=POLL_EVERY,
    show_default=True,
    metavar="SECONDS",
    help="How often followed publishers and models are checked for new versions.",
)
@click.option(
    "--exec",
    "exec_cmd",
    metavar="CMD",
    help="Run CMD (a shell command) once per new followed version; it gets HUBLESS_REFERENCE, "
    "HUBLESS_VERSION, HUBLESS_SEQ and HUBLESS_PATH in its environment.",
)
@click.option(
    "--keep",
    type=click.IntRange(min=1),
    metavar="N",
    help="Keep only the newest N versions of each followed model (default: all).",
)
@click.option(
    "--once",
    is_flag=True,
    help="Sign --key's records again once and exit, without running the daemon (exit 3 if "
    "the DHT holds one this home did not sign).",
)
@pass_app
def seed(
    app: App,
    key_name: str | None,
    republish_interval: float,
    poll_interval: float,
    exec_cmd: str | None,
    keep: int | None,
    once: bool,
) -> None:
    """Run this home's daemon until Ctrl-C.

    It serves every model this home published or pulled, picks up within seconds what
    other commands on this home publish, pull or remove, and keeps the DHT records it
    verified alive by putting them again verbatim. With follows (`hubless follow`), it
    fetches, verifies and seeds every new version of what it follows: a mirror. One daemon
    per home.
    """
    from hubless.core.errors import UsageError
    from hubless.services.mirror import MirrorOptions
    from hubless.services.poll import PollPolicy

    if once:
        if key_name is None:
            raise UsageError("--once signs a key's records again: name it with --key")
        republish_once(app, key_name)
        return
    client = app.client(serve=True)
    signing = app.signing_key(key_name) if key_name else None
    mirror = MirrorOptions(policy=PollPolicy(interval=poll_interval), exec_cmd=exec_cmd, keep=keep)
    run_daemon(app, client, signing, republish_interval, mirror)


def republish_once(app: App, key_name: str) -> None:
    """`seed --key NAME --once`: one key-holder republish round, then exit (spec §8.5).

    Raises `KeyLeakError` (exit 3) when the DHT holds a record under the key that this home
    did not sign; such records are left alone."""
    client = app.client(serve=False)
    checks = client.republish(app.signing_key(key_name))
    text = "\n".join(
        f"{c.name}: {c.status}" + (f" ({c.detail})" if c.detail else "") for c in checks
    )
    app.renderer.result([c.summary() for c in checks], text or "no models to republish")


@click.command(cls=Command)
@pass_app
def status(app: App) -> None:
    """Show what this home's daemon serves and keeps alive (whether or not it runs)."""
    report = app.client(serve=False).status()
    app.renderer.result(report.summary(), render_status(report, int(time.time())))


def render_status(report: DaemonStatus, now: int) -> str:
    """The human form of `hubless status`."""
    lines = []
    if report.running:
        since = _ago(report.started_at, now)
        port = f", port {report.listen_port}" if report.listen_port else ""
        every = (
            f", re-putting every {report.republish_interval:g}s"
            if report.republish_interval
            else ""
        )
        lines.append(f"daemon      running (pid {report.pid}, started {since}{every}{port})")
    else:
        lines.append("daemon      not running: nothing serves this home (start: hubless seed)")
    lines.append(f"records     {len(report.records)} kept alive")
    for r in report.records:
        name = r.name if r.name is not None else "(publisher index)"
        head = f"  {r.publisher.text[:12]}…/{name}"
        if r.own_seq is None:
            lines.append(f"{head}  {r.message}")
            continue
        version = f" ({r.version})" if r.version else ""
        parts = [f"seq {r.own_seq}{version}, BEP-44 seq {r.bep44_seq}"]
        if r.checked_at is not None:
            held = f"{r.current} closest nodes held it" if r.current is not None else r.outcome
            parts.append(f"checked {_ago(r.checked_at, now)}: {held}")
        if r.put_at is not None:
            stored = f" on {r.stored}/{r.queried} nodes" if r.queried else f" on {r.stored} nodes"
            parts.append(f"put {_ago(r.put_at, now)}{stored}")
        if r.outcome not in (None, "put", "current") and r.message:
            parts.append(r.message)
        lines.append(f"{head}  " + "; ".join(parts))
    lines.append(f"torrents    {len(report.torrents)} in this home")
    for t in report.torrents:
        if t.serving:
            load = f"{t.peers} peers, {human_size(t.uploaded or 0)} uploaded"
        else:
            load = "not served"
        lines.append(f"  {t.name} seq {t.seq} {t.kind:<8} {t.infohash.hex()[:12]}…  {load}")
    return "\n".join(lines)


def _ago(ts: int | None, now: int) -> str:
    if ts is None:
        return "never"
    seconds = max(0, now - ts)
    if seconds < 120:
        return f"{seconds}s ago"
    if seconds < 7200:
        return f"{seconds // 60}m ago"
    return datetime.datetime.fromtimestamp(ts, datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")


COMMANDS = (seed, status)
