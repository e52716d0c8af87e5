"""What this home follows: publishers (every model their index lists) and single models.

`follow(KEY)` watches every model the publisher's index lists, including models published
later; `follow(KEY/NAME)` one model. `following` lists both, with each one's poll state; a
model that left its publisher's index is flagged there once, then dropped (spec §8.7). The
poll round a daemon runs over these follows is `hubless.services.poll`.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any

from ..core.errors import NetworkError, UsageError
from ..core.keys import PublicKey
from ..core.refs import URI_SCHEME, Reference, parse_reference
from ..store.follows import FollowedModel, FollowedPublisher, Follows, Poll
from .catalogue import read_index
from .context import Context
from .resolve import resolve


def parse_target(text: str) -> Reference | PublicKey:
    """`KEY` (a publisher, with or without `hubless://` and a trailing `/`) or `KEY/NAME`.

    Raises `InvalidReferenceError`, and `UsageError` for `@VERSION` (a follow watches a
    model, whose versions are what it reports).
    """
    raw = text.strip()
    bare = raw[len(URI_SCHEME) :] if raw.lower().startswith(URI_SCHEME) else raw
    if "/" not in bare.rstrip("/"):
        return PublicKey.parse(bare.rstrip("/"))
    ref = parse_reference(raw)
    if ref.version is not None:
        raise UsageError(
            f"{text!r} names a version; follow the model ({ref.at(None)}) to get every "
            "version it publishes"
        )
    return ref


def _split(target: Reference | PublicKey) -> tuple[PublicKey, str | None]:
    if isinstance(target, Reference):
        if target.version is not None:
            raise UsageError("a follow watches a model, not one version")
        return target.publisher, target.name
    return target, None


@dataclass(frozen=True)
class FollowResult:
    """What `follow` did, and what a first look found (`error`: the look failed; the follow
    is kept and polled anyway)."""

    publisher: PublicKey
    name: str | None
    new: bool
    models: tuple[str, ...]  # the index's names (whole publisher) or the model
    latest: str | None  # the model's latest version, when following one model
    error: str | None = None

    def summary(self) -> dict[str, Any]:
        return {
            "publisher": self.publisher.text,
            "name": self.name,
            "new": self.new,
            "models": list(self.models),
            "latest_version": self.latest,
            "error": self.error,
        }


def follow(ctx: Context, target: Reference | PublicKey) -> FollowResult:
    """Follow a publisher (every model its index lists, now and later) or one model.

    The follow is stored first; then one look (the index, or the model's record) says what
    it found. A look that fails is reported in `error`, not raised: the publisher may be
    offline now and the poll tries again.
    """
    publisher, name = _split(target)
    follows = Follows(ctx.state)
    new = follows.follow(publisher, name, time.time())
    try:
        if name is None:
            reading = read_index(ctx, publisher)
            return FollowResult(publisher, None, new, reading.names, None)
        res = resolve(ctx, Reference(publisher, name))
        return FollowResult(publisher, name, new, (name,), res.latest.manifest.version)
    except NetworkError as exc:
        return FollowResult(publisher, name, new, (), None, exc.message)


def unfollow(ctx: Context, target: Reference | PublicKey) -> bool:
    """Stop following a publisher (every follow of it) or one model; False if not followed.

    A model followed through its publisher's index is left out from then on.
    """
    publisher, name = _split(target)
    return Follows(ctx.state).unfollow(publisher, name)


@dataclass(frozen=True)
class Following:
    """Publishers followed whole and every model followed.

    A model whose `removed_at` is set left its publisher's index: it is still followed until
    the user has seen this (`following(acknowledge=True)`), then dropped.
    """

    publishers: tuple[FollowedPublisher, ...]
    models: tuple[FollowedModel, ...]

    def summary(self) -> dict[str, Any]:
        return {
            "publishers": [_publisher_summary(p) for p in self.publishers],
            "models": [_model_summary(m) for m in self.models],
        }


def following(ctx: Context, *, acknowledge: bool = True) -> Following:
    """What this home follows; with `acknowledge`, models that left their publisher's index
    (flagged `removed_at` in this answer) stop being followed once listed here."""
    follows = Follows(ctx.state)
    result = Following(tuple(follows.publishers()), tuple(follows.models()))
    removed = [(m.publisher, m.name) for m in result.models if m.removed_at is not None]
    if acknowledge and removed:
        follows.acknowledge_removed(removed)
    return result


def _poll_summary(poll: Poll | None) -> dict[str, Any]:
    if poll is None:
        return {"next_poll": None, "last_poll": None, "failures": 0, "error": None}
    return {
        "next_poll": poll.next_poll if math.isfinite(poll.next_poll) else None,
        "last_poll": poll.last_poll,
        "failures": poll.failures,
        "error": poll.last_error,
    }


def _publisher_summary(p: FollowedPublisher) -> dict[str, Any]:
    return {
        "publisher": p.publisher.text,
        "since": p.since,
        "index_seq": p.index.seq if p.index is not None else None,
        "models": list(p.index.names) if p.index is not None else [],
        **_poll_summary(p.poll),
    }


def _model_summary(m: FollowedModel) -> dict[str, Any]:
    return {
        "reference": f"{m.publisher.text}/{m.name}",
        "publisher": m.publisher.text,
        "name": m.name,
        "explicit": m.explicit,
        "via_index": m.via_index,
        "removed_from_index_at": m.removed_at,
        "held_seq": m.poll.delivered_seq if m.poll is not None else None,
        "stopped": m.poll.stopped if m.poll is not None else None,
        **_poll_summary(m.poll),
    }
