"""One poll round over what this home follows, for a daemon to drive (spec §8.7).

`poll_follows(ctx, now)` polls what is due (the index of each publisher followed whole,
then each followed model), resolves with every trust rule and returns the revisions the
follower has not had yet, oldest first. The follower fetches each (`fetch_version`) and only
then marks it held (`deliver`): a crash in between hands the same revision out again at the
next poll, never skips it. Schedules, failures and the revisions held live in the store
(`hubless.store.follows`), so a restart goes on where the last process stopped.

A model whose publisher rewrote its history (or signed two revisions for one seq) stops
being polled, with the error kept for `following` to show; other models go on. A lookup
that fails is tried again after an exponential back-off, with jitter.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field
from typing import Any

from ..core.errors import (
    EquivocationError,
    HistoryRewriteError,
    HublessError,
    NetTimeoutError,
    StoppedError,
    UsageError,
)
from ..core.keys import PublicKey
from ..core.manifest import VerifiedManifest
from ..core.refs import Reference
from ..core.trust import check_chain, missed_rows, verify_row
from ..store.follows import INDEX_TARGET, FollowedModel, Follows
from .catalogue import read_index
from .context import Context
from .events import Event
from .pull import Fetched, fetch_release
from .resolve import Resolution, fetch_manifest, resolve, seed_manifest

#: Errors that stop polling a model until the user follows it again: the publisher's own
#: signatures contradict what this home holds, which no later poll can mend.
STOPPING = (HistoryRewriteError, EquivocationError)


@dataclass(frozen=True)
class PollPolicy:
    """How often to poll: `interval` seconds after a success, doubling after each failure in
    a row up to `max_backoff`; every wait is spread by ± `jitter` (a fraction) so that many
    followers of one publisher do not ask at the same moment."""

    interval: float = 600.0
    max_backoff: float = 6 * 3600.0
    jitter: float = 0.1

    def __post_init__(self) -> None:
        if not (self.interval > 0 and self.max_backoff > 0 and 0 <= self.jitter < 1):
            raise UsageError("poll interval and back-off must be positive, jitter in [0, 1)")

    def wait(self, failures: int, rng: random.Random) -> float:
        """Seconds until the next poll after `failures` failed polls in a row (0: success)."""
        base = self.interval
        if failures:
            base = min(max(self.max_backoff, self.interval), self.interval * 2.0**failures)
        return base * (1.0 + rng.uniform(-self.jitter, self.jitter))


DEFAULT_POLICY = PollPolicy()
DUE_AT_ONCE = 0.0  # a next poll time (Unix seconds) that every clock has passed


@dataclass(frozen=True)
class NewVersion:
    """A revision of a followed model the follower does not hold yet, every rule passed.

    `reference` names it by label (`KEY/NAME@VERSION`); labels can repeat (§7.3), so the
    revision is `seq`, and `manifest` is its verified manifest. `yanked` is its yank mark as
    the newest manifest tells it; `latest` is True for the newest revision.
    """

    reference: Reference
    seq: int
    manifest: VerifiedManifest = field(repr=False)
    manifest_infohash: bytes = field(repr=False)
    yanked: str | None
    latest: bool

    def summary(self) -> dict[str, Any]:
        m = self.manifest.manifest
        return {
            "reference": str(self.reference),
            "publisher": m.publisher.text,
            "name": m.name,
            "version": m.version,
            "seq": m.seq,
            "published_at": m.created,
            "manifest_infohash": self.manifest_infohash.hex(),
            "manifest_hash": self.manifest.hash.hex(),
            "content_infohash": m.content_infohash.hex(),
            "files": len(m.files),
            "size": m.total_size,
            "yanked": self.yanked,
            "latest": self.latest,
        }


def poll_follows(
    ctx: Context,
    now: float,
    *,
    policy: PollPolicy = DEFAULT_POLICY,
    rng: random.Random | None = None,
) -> list[NewVersion]:
    """Poll every follow due at `now` (Unix seconds); return the revisions not held yet.

    First the index of each publisher followed whole (new names become followed models,
    due at once), then each followed model: its record is resolved with every rule of §8.1
    (no manifest fetch when the record still names the known manifest). For a model the
    follower holds revision H of, the result lists every later revision in order, each
    verified against the newest manifest's history and checked to extend the one before
    (§7.1); for a model it holds nothing of yet, only the latest. Each target's next poll
    is stored: `policy.interval` after a success, an exponential back-off after a failure;
    a rewritten history stops that model (`STOPPING`). Nothing raises for one target's
    failure; events report each one.
    """
    rng = rng or random.Random()
    follows = Follows(ctx.state)
    for followed in follows.publishers():
        poll = followed.poll
        if ctx.cancel.is_set():
            return []  # what was not polled stays due
        if poll is None or poll.next_poll <= now:
            _poll_index(ctx, follows, followed.publisher, now, policy, rng)
    found: list[NewVersion] = []
    for model in follows.models():
        poll = model.poll
        if poll is not None and (poll.stopped is not None or poll.next_poll > now):
            continue
        if ctx.cancel.is_set():
            break
        found += _poll_model(ctx, follows, model, now, policy, rng)
    return found


def next_poll_due(ctx: Context) -> float | None:
    """The earliest next poll (Unix seconds) of any follow, or None when nothing is followed.

    A target never polled yet is due now (0.0): a daemon sleeps until then, or its own tick.
    """
    return Follows(ctx.state).next_due()


def fetch_version(ctx: Context, new: NewVersion) -> Fetched:
    """Download the files of `new` not in the cache, verify each, build and seed its snapshot.

    No lookup: `new.manifest` passed every rule already. While it runs, the model is due at
    once: a process killed meanwhile goes on with the download at its next start, not a
    poll interval later. The schedule comes back when it returns or fails; a stop
    (`StoppedError`) leaves it due. Raises what `fetch_release` raises; call `deliver` only
    after this returned.
    """
    m = new.manifest.manifest
    follows = Follows(ctx.state)
    poll = follows.poll(m.publisher, m.name)
    follows.due(m.publisher, m.name, DUE_AT_ONCE)
    try:
        fetched = fetch_release(ctx, new.manifest)
    except StoppedError:
        raise
    except HublessError:
        if poll is not None:
            follows.due(m.publisher, m.name, poll.next_poll)
        raise
    if poll is not None:
        follows.due(m.publisher, m.name, poll.next_poll)
    return fetched


def deliver(ctx: Context, new: NewVersion) -> None:
    """Mark `new` as held by the follower: later polls list only revisions after it."""
    m = new.manifest.manifest
    Follows(ctx.state).deliver(m.publisher, m.name, m.seq)


def fetch_stopped(ctx: Context, new: NewVersion) -> None:
    """`new` was left unfetched by a process that stops: poll its model again as soon as a
    process runs (the next start goes on with it at once, not an interval later)."""
    m = new.manifest.manifest
    Follows(ctx.state).due(m.publisher, m.name, DUE_AT_ONCE)


def fetch_failed(ctx: Context, new: NewVersion, error: str) -> None:
    """Keep why `new` could not be fetched where `following` shows it; the next poll hands
    it out again (and clears the error once a poll succeeds)."""
    m = new.manifest.manifest
    Follows(ctx.state).fetch_failed(m.publisher, m.name, f"could not fetch {m.version}: {error}")


def _poll_index(
    ctx: Context,
    follows: Follows,
    publisher: PublicKey,
    now: float,
    policy: PollPolicy,
    rng: random.Random,
) -> None:
    poll = follows.poll(publisher, INDEX_TARGET)
    failures = poll.failures if poll is not None else 0
    try:
        reading = read_index(ctx, publisher)
        if reading.stale:
            raise NetTimeoutError("no answer from the DHT for the publisher index")
    except HublessError as exc:
        if isinstance(exc, UsageError):
            raise
        wait = policy.wait(failures + 1, rng)
        follows.schedule(
            publisher, INDEX_TARGET, next_poll=now + wait, polled_at=now, error=exc.message
        )
        ctx.emit(
            Event(
                "follow",
                f"{publisher.text[:12]}…: index lookup failed ({exc.message}); "
                f"next try in {wait:.0f} s",
            )
        )
        return
    follows.schedule(publisher, INDEX_TARGET, next_poll=now + policy.wait(0, rng), polled_at=now)
    change = reading.change
    if change.added:
        ctx.emit(Event("follow", f"{publisher.text[:12]}… added {', '.join(change.added)}"))
    if change.removed:
        ctx.emit(
            Event(
                "follow",
                f"{publisher.text[:12]}… removed {', '.join(change.removed)} from its index; "
                "still followed until `hubless following` has shown it",
            )
        )


def _poll_model(
    ctx: Context,
    follows: Follows,
    model: FollowedModel,
    now: float,
    policy: PollPolicy,
    rng: random.Random,
) -> list[NewVersion]:
    ref = Reference(model.publisher, model.name)
    poll = model.poll
    held = poll.delivered_seq if poll is not None else None
    failures = poll.failures if poll is not None else 0
    try:
        res = resolve(ctx, ref)
        if res.stale:
            raise NetTimeoutError(f"no answer from the DHT for {model.name}")
        found = _missed(ctx, ref, res, held, int(now))
    except STOPPING as exc:
        follows.schedule(
            model.publisher,
            model.name,
            next_poll=math.inf,
            polled_at=now,
            error=exc.message,
            stopped=exc.message,
        )
        ctx.emit(Event("follow", f"stopped following {ref}: {exc.message}"))
        return []
    except HublessError as exc:
        if isinstance(exc, UsageError):
            raise
        wait = policy.wait(failures + 1, rng)
        follows.schedule(
            model.publisher, model.name, next_poll=now + wait, polled_at=now, error=exc.message
        )
        ctx.emit(Event("follow", f"{ref}: {exc.message}; next try in {wait:.0f} s"))
        return []
    follows.schedule(
        model.publisher, model.name, next_poll=now + policy.wait(0, rng), polled_at=now
    )
    for new in found:
        ctx.emit(Event("follow", f"new version {new.reference} (seq {new.seq})"))
    return found


def _missed(
    ctx: Context, ref: Reference, res: Resolution, held: int | None, now: int
) -> list[NewVersion]:
    """The revisions after `held` up to the latest, each verified and chained (§7.1).

    The chain starts at the held revision's manifest when the cache still has it, so the
    first missed revision is checked against what the follower holds as well.
    """
    latest = res.latest
    if held is not None and latest.manifest.seq <= held:
        return []
    chain: list[tuple[VerifiedManifest, bytes, str | None]] = []
    rows = {row.seq: row for row in latest.manifest.history}
    start = rows.get(held) if held is not None else None
    if start is not None and not ctx.cache.manifest_path(start.manifest_hash).exists():
        start = None  # the chain then starts at the first missed revision: never block on it
    for row in ((start,) if start is not None else ()) + missed_rows(latest, held):
        data = fetch_manifest(ctx, ref, row.manifest_infohash, row.manifest_hash, now)
        verified = verify_row(ref.publisher, ref.name, row, data, now=now)
        seed_manifest(ctx, verified, row.manifest_infohash)  # every manifest stays served
        chain.append((verified, row.manifest_infohash, row.yanked))
    chain.append((latest, res.latest_infohash, latest.manifest.yanked))
    check_chain([(m, ih) for m, ih, _ in chain])
    return [
        NewVersion(ref.at(m.manifest.version), m.manifest.seq, m, ih, yanked, m is latest)
        for m, ih, yanked in chain
        if held is None or m.manifest.seq > held
    ]
