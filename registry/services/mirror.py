"""What a daemon with follows does each round: fetch every new version, then tell (spec §8.7).

A mirror is a daemon with follows, not a second kind of program. Each round polls what is
due (`hubless.services.poll`), downloads each new revision (only files not already in the
cache), verifies and seeds it, marks it held, and hands it to the user's hook: a crash or a
full disk before it is held hands the same revision out again at the next round, never
skips it. In a daemon, hooks run on a thread of their own (`HookRunner`), one at a time and
in order, so a slow hook (an inference server restarting) holds up neither polling nor a
stop.
`keep` removes the snapshots of older revisions beyond the newest N, which then stop being
seeded; their manifests stay cached and seeded (they are small and let anyone walk the
history).
"""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ..core.errors import HublessError, StoppedError
from ..core.refs import Reference
from .cached import model_versions, remove
from .context import Context
from .events import Event
from .poll import (
    DEFAULT_POLICY,
    NewVersion,
    PollPolicy,
    deliver,
    fetch_failed,
    fetch_stopped,
    fetch_version,
    poll_follows,
)

HOOK_TIMEOUT = 3600.0  # seconds a hook may run before it is stopped
_HOOK_TICK = 0.2  # seconds between checks of a running hook


@dataclass(frozen=True)
class Delivered:
    """A new revision that is now complete, verified and seeded at `path`."""

    version: NewVersion
    path: Path
    downloaded_bytes: int

    def environment(self) -> dict[str, str]:
        """What a hook receives: the reference, version, seq and snapshot path."""
        m = self.version.manifest.manifest
        return {
            "HUBLESS_REFERENCE": str(self.version.reference),
            "HUBLESS_PUBLISHER": m.publisher.text,
            "HUBLESS_NAME": m.name,
            "HUBLESS_VERSION": m.version,
            "HUBLESS_SEQ": str(m.seq),
            "HUBLESS_PATH": str(self.path),
            "HUBLESS_YANKED": self.version.yanked or "",
        }


NewVersionListener = Callable[[Delivered], None]


@dataclass(frozen=True)
class MirrorOptions:
    """`policy`: poll interval and back-off; `exec_cmd`: a shell command run once per new
    version (its failure is logged, never fatal); `keep`: complete versions kept per model
    (None: all); `on_new_version`: called in the daemon's worker thread for each new
    version; `hooks`: where `exec_cmd` runs (None: in the round itself, waiting for it)."""

    policy: PollPolicy = DEFAULT_POLICY
    exec_cmd: str | None = None
    keep: int | None = None
    on_new_version: NewVersionListener | None = None
    hooks: HookRunner | None = None


def mirror_round(ctx: Context, options: MirrorOptions, now: float | None = None) -> int:
    """Poll what is due, fetch and deliver each new revision in order; return how many.

    A revision that fails to download (no peer, full disk, bad data) stops that model for
    this round with an event, and its error is kept for `following`; it is handed out
    again at the next poll. When `ctx.cancel` is set (the daemon stops), the round ends
    before the next revision, or mid-download keeping what was verified, and the model is
    due again at once for the next start.
    """
    delivered = 0
    failed: set[tuple[str, str]] = set()
    at = time.time() if now is None else now
    found = poll_follows(ctx, at, policy=options.policy)
    for i, new in enumerate(found):
        m = new.manifest.manifest
        model = (m.publisher.text, m.name)
        if model in failed:
            continue  # keep the order: no later revision before an earlier one
        try:
            if ctx.cancel.is_set():
                raise StoppedError("stopping")
            fetched = fetch_version(ctx, new)
        except StoppedError:
            for left in found[i:]:
                fetch_stopped(ctx, left)
            ctx.emit(
                Event(
                    "mirror",
                    f"stopped before holding {new.reference}: what was verified stays, "
                    "the download goes on at the next start",
                )
            )
            return delivered
        except HublessError as exc:
            failed.add(model)
            fetch_failed(ctx, new, exc.message)
            ctx.emit(Event("mirror", f"could not fetch {new.reference}: {exc.message}"))
            continue
        done = Delivered(new, fetched.path, fetched.downloaded_bytes)
        ctx.emit(
            Event(
                "mirror",
                f"now holds {new.reference} (seq {m.seq}) at {fetched.path}: "
                f"{fetched.downloaded_bytes:,} bytes downloaded, verified, seeded",
            )
        )
        deliver(ctx, new)
        delivered += 1
        if options.on_new_version is not None:
            try:
                options.on_new_version(done)
            except Exception as exc:  # a program's callback must not stop the daemon
                ctx.emit(Event("mirror", f"new-version callback failed: {exc!r}"))
        if options.hooks is not None:
            options.hooks.submit(done)
        elif options.exec_cmd:
            run_hook(ctx, options.exec_cmd, done)
        if options.keep is not None:
            keep_newest(ctx, new, options.keep)
    return delivered


def run_hook(
    ctx: Context, command: str, done: Delivered, stop: threading.Event | None = None
) -> int | None:
    """Run `command` through the shell with the new version in its environment.

    Returns its exit code (negative: the signal that ended it), or None when it could not
    run, ran past `HOOK_TIMEOUT` seconds (it is then killed) or was left running because
    `stop` was set (the hook runs in its own session and goes on). Never raises.
    """
    env = {**os.environ, **done.environment()}
    what = f"hook for {done.version.reference}"
    try:
        proc = subprocess.Popen(  # the user's own command line, as in git hooks: a shell
            command, shell=True, env=env, start_new_session=True
        )
    except (OSError, subprocess.SubprocessError) as exc:
        ctx.emit(Event("mirror", f"{what} did not run: {exc}"))
        return None
    deadline = time.monotonic() + HOOK_TIMEOUT
    while True:
        try:
            code = proc.wait(_HOOK_TICK)
            break
        except subprocess.TimeoutExpired:
            pass
        if stop is not None and stop.is_set():
            ctx.emit(Event("mirror", f"{what} left running (pid {proc.pid}): the daemon stops"))
            return None
        if time.monotonic() > deadline:
            proc.kill()
            proc.wait()
            ctx.emit(Event("mirror", f"{what} killed after {HOOK_TIMEOUT:g}s"))
            return None
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        ctx.emit(Event("mirror", f"{what} was ended by {name}"))
    elif code != 0:
        ctx.emit(Event("mirror", f"{what} exited {code}"))
    return code


class HookRunner:
    """Runs `command` once per delivered version on a thread of its own, one at a time, in
    the order versions were delivered (spec §8.7).

    A slow hook holds up neither the mirror's polling nor a stop: `close` does not wait for
    a running hook (it goes on in its own session) and names the versions whose hook had
    not started. A hook whose snapshot is gone by its turn (`--keep` removed it for a newer
    version) is skipped with a log line; the newer version's hook follows. So a hook runs
    at most once per version; one not started when the daemon stops or dies does not run.
    """

    def __init__(self, ctx: Context, command: str) -> None:
        self.ctx = ctx
        self.command = command
        self._queue: queue.Queue[Delivered | None] = queue.Queue()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="hubless-hooks", daemon=True)
        self._thread.start()

    def submit(self, done: Delivered) -> None:
        """Queue the hook for `done`; returns at once."""
        self._queue.put(done)

    def close(self, timeout: float = 1.0) -> None:
        """Stop taking hooks: a running one is left running; queued ones are dropped, named."""
        self._stop.set()
        self._queue.put(None)
        self._thread.join(timeout)
        dropped = []
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                break
            if item is not None:
                dropped.append(str(item.version.reference))
        if dropped:
            self.ctx.emit(
                Event("mirror", f"hooks not run (the daemon stops): {', '.join(dropped)}")
            )

    def _run(self) -> None:
        while not self._stop.is_set():
            done = self._queue.get()
            if done is None or self._stop.is_set():
                if done is not None:
                    self._queue.put(done)  # named by close()
                return
            if not done.path.is_dir():
                self.ctx.emit(
                    Event(
                        "mirror",
                        f"hook for {done.version.reference} skipped: its snapshot was "
                        "removed for a newer version",
                    )
                )
                continue
            run_hook(self.ctx, self.command, done, self._stop)


def keep_newest(ctx: Context, new: NewVersion, keep: int) -> tuple[int, ...]:
    """Remove this model's complete snapshots older than the newest `keep`; their seqs.

    Blobs that no remaining snapshot uses are freed (`hubless.services.cached.remove`); a
    removal that must wait (a pull of the model runs) is tried again after the next version.
    """
    m = new.manifest.manifest
    ref = Reference(m.publisher, m.name)
    held = sorted({v.manifest.seq for v in model_versions(ctx, ref) if not v.partial})
    old = frozenset(held[: max(0, len(held) - max(1, keep))])
    if not old:
        return ()
    try:
        removal = remove(ctx, ref, seqs=old)
    except HublessError as exc:
        ctx.emit(Event("mirror", f"could not remove old versions of {m.name}: {exc.message}"))
        return ()
    ctx.emit(
        Event(
            "mirror",
            f"keeping the newest {keep} of {m.name}: removed seq "
            f"{', '.join(map(str, sorted(old)))}, freed {removal.freed:,} bytes",
        )
    )
    return tuple(sorted(old))
