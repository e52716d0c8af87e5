"""Keep the records this home verified alive in the DHT: the re-put rules of spec §8.5.

DHT nodes forget items (BEP-44 asks for hourly republishing), and on a real network its
publisher is often offline. BEP-44 lets anybody put a publisher's item again verbatim: same
key, salt, seq, value and signature. So every home that verified a record and seeds its model
puts the exact signed item it kept (`hubless.store.keepalive`) again, on a timer, and:

- never an item older than the newest record this home verified (spec §8.2): the kept item
  must be the known revision itself;
- never over a newer record it finds: it first gets the record as a resolving client would
  (§8.1 step 2); a newer one is resolved in full (manifest, history) and kept instead, and
  nothing is put. That get is the KRPC client's (`Network.dht_get_direct`), which passes
  over a node silent for a second: libtorrent's lookup waits up to 15 s on each departed
  node among the closest, and under churn every check would take that long;
- not when enough of the closest nodes already hold that seq (BEP-44's republish back-off).

The key holder signs its own records again instead (`hubless.services.seed.republish`).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from ..core.bep44 import VerifiedItem, verify_item
from ..core.errors import (
    EquivocationError,
    HublessError,
    NetworkError,
    NotFoundError,
    UntrustedDataError,
    UsageError,
)
from ..core.index import INDEX_SALT, VerifiedIndex, verify_index
from ..core.keys import PublicKey
from ..core.record import VerifiedRecord, verify_record
from ..core.refs import Reference
from ..core.trust import choose_record
from ..net.contract import PutReport, RawItem
from ..store import keepalive as store
from ..store.keepalive import KeptItem
from ..store.state import State
from .context import Context
from .events import Event
from .resolve import resolve

#: Of the k = 8 nodes closest to an item, how many must already hold its seq for a re-put to
#: be skipped (BEP-44 back-off). A majority: 20% churn per interval still leaves it stored.
MIN_CURRENT = 5

#: Seconds a verbatim put may take, lookup included.
PUT_TIMEOUT = 10.0

#: Seconds the check's own lookup may take (it ends sooner: nodes get a second each).
LOOKUP_TIMEOUT = 10.0


@dataclass(frozen=True)
class Target:
    """One record this home keeps alive: a model's record, or (name None) a publisher index."""

    publisher: PublicKey
    name: str | None

    @property
    def salt(self) -> bytes:
        return INDEX_SALT if self.name is None else self.name.encode("ascii")

    @property
    def label(self) -> str:
        what = "index" if self.name is None else self.name
        return f"{self.publisher.text[:12]}…/{what}"


@dataclass(frozen=True)
class Outcome:
    """What one keep-alive check did; `outcome` as in `hubless.store.keepalive.Health`."""

    target: Target
    outcome: str
    message: str
    report: PutReport | None = None


def targets(ctx: Context, *, skip: PublicKey | None = None) -> list[Target]:
    """The records this home keeps alive: each model it seeds content of (and has verified),
    and the index of each publisher of those models. `skip`: a key whose holder re-signs."""
    return targets_in(ctx.state, skip=skip)


def targets_in(state: State, *, skip: PublicKey | None = None) -> list[Target]:
    """`targets` from a state database alone."""
    seeded = {(e.publisher, e.name) for e in state.seeds() if e.kind == "content"}
    models = sorted(
        (
            (publisher, name)
            for publisher, name in seeded
            if publisher != skip and state.known(publisher, name) is not None
        ),
        key=lambda pn: (pn[0].text, pn[1]),
    )
    found = [Target(p, n) for p, n in models]
    for publisher in sorted({p for p, _ in models}, key=lambda p: p.text):
        found.append(Target(publisher, None))
    return found


# --- after a put or a verification: keep the exact signed item ----------------------------------


def keep_verified(ctx: Context, item: VerifiedItem, own_seq: int) -> bool:
    """Keep an item the trust rules accepted (resolve, keep-alive); True if it was newer."""
    return store.keep_item(ctx.state, item.raw(), own_seq)


def keep_own_put(
    ctx: Context, publisher: PublicKey, salt: bytes, payload: bytes, own_seq: int
) -> bool:
    """Keep the item our own put just stored: libtorrent chose its BEP-44 seq and signed it,
    so read it back and take the valid item carrying exactly `payload`. False (and an
    event) when the read-back failed: the next keep-alive check adopts it from the DHT."""
    try:
        items = ctx.network.dht_get(publisher, salt, ctx.config.dht_timeout)
    except NetworkError as exc:
        ctx.emit(Event("put", f"could not read back what was put: {exc.message}"))
        return False
    ours: list[VerifiedItem] = []
    for raw in items:
        try:
            verified = verify_item(raw, publisher, salt)
        except UntrustedDataError:
            continue
        if verified.payload == payload:
            ours.append(verified)
    if not ours:
        ctx.emit(Event("put", "the item just put was not found when read back"))
        return False
    return keep_verified(ctx, max(ours, key=lambda v: v.seq), own_seq)


# --- the check ---------------------------------------------------------------------------------


def check(ctx: Context, target: Target, *, min_current: int | None = MIN_CURRENT) -> Outcome:
    """Check one kept record in the DHT and put it again verbatim when needed (module doc).

    Network failures are reported in the outcome, never raised. Writes the outcome to the
    store (`hubless status` shows it) and emits one event when something was put or went
    wrong.
    """
    try:
        if target.name is None:
            result = _check_index(ctx, target, min_current)
        else:
            result = _check_model(ctx, target, target.name, min_current)
    except NetworkError as exc:
        result = Outcome(target, "failed", exc.message)
    kept = store.kept_item(ctx.state, target.publisher, target.salt)
    before = store.health(ctx.state).get((target.publisher.text, target.salt))
    repeated = before is not None and (before.outcome, before.message) == (
        result.outcome,
        result.message,
    )
    if kept is not None:
        report = result.report
        store.record_health(
            ctx.state,
            kept.item,
            result.outcome,
            current=report.already_current if report else None,
            stored=report.stored if report else None,
            queried=report.queried if report else None,
            message=result.message,
        )
    if result.outcome != "current" and not (repeated and result.outcome != "put"):
        ctx.emit(Event("keepalive", f"{target.label}: {result.message}"))
    return result


def _check_model(ctx: Context, target: Target, name: str, min_current: int | None) -> Outcome:
    publisher, salt = target.publisher, target.salt
    known = ctx.state.known(publisher, name)
    if known is None:
        return Outcome(target, "held-back", "nothing verified here for it")
    now = int(time.time())
    items = ctx.network.dht_get_direct(publisher, salt, LOOKUP_TIMEOUT)
    try:
        found: VerifiedRecord | None = choose_record(items, publisher, name, now=now)
    except EquivocationError as exc:
        return Outcome(target, "held-back", f"not putting: {exc.message}")
    except (NotFoundError, UntrustedDataError):
        found = None  # nothing, or nothing valid: what keeping alive is for
    if found is not None and found.record.seq > known.seq:
        # A newer release is out there: verify it in full before keeping it; never put ours.
        try:
            resolve(ctx, Reference(publisher, name))
        except HublessError as exc:
            return Outcome(
                target,
                "newer",
                f"the DHT has seq {found.record.seq}, newer than seq {known.seq} here, but it "
                f"did not verify: {exc.message}; not putting",
            )
        return Outcome(
            target, "newer", f"the DHT has seq {found.record.seq}: verified and kept; not putting"
        )
    if found is not None and found.record.seq == known.seq:
        if found.record.manifest_hash != known.manifest_hash:
            return Outcome(
                target,
                "held-back",
                f"the publisher signed two records as seq {known.seq}; not putting",
            )
        keep_verified(ctx, found.item, found.record.seq)  # same record, maybe a later envelope
    kept = store.kept_item(ctx.state, publisher, salt)
    usable = _usable_record(kept, publisher, name, known.seq, known.manifest_hash, now)
    if usable is None:
        return Outcome(
            target,
            "held-back",
            f"no signed item of seq {known.seq} is kept here yet (it is kept at the next "
            "resolve that meets it)",
        )
    return _put(
        ctx, target, usable, min_current, found is not None and found.record.seq < known.seq
    )


def _usable_record(
    kept: KeptItem | None,
    publisher: PublicKey,
    name: str,
    seq: int,
    manifest_hash: bytes,
    now: int,
) -> RawItem | None:
    """The kept item, only if it still verifies and is the newest verified record itself."""
    if kept is None:
        return None
    try:
        record = verify_record(kept.item, publisher, name, now=now)
    except UntrustedDataError:
        return None
    if (record.record.seq, record.record.manifest_hash) != (seq, manifest_hash):
        return None
    return kept.item


def _check_index(ctx: Context, target: Target, min_current: int | None) -> Outcome:
    publisher = target.publisher
    now = int(time.time())
    items = ctx.network.dht_get_direct(publisher, INDEX_SALT, LOOKUP_TIMEOUT)
    best: VerifiedIndex | None = None
    for raw in items:
        try:
            index = verify_index(raw, publisher, now=now)
        except UntrustedDataError:
            continue
        if best is None or (index.index.seq, index.item.seq) > (best.index.seq, best.item.seq):
            best = index
    adopted = best is not None and keep_verified(ctx, best.item, best.index.seq)
    kept = store.kept_item(ctx.state, publisher, INDEX_SALT)
    if kept is None:
        return Outcome(target, "held-back", "no index of this publisher was found or kept")
    try:
        verify_index(kept.item, publisher, now=now)
    except UntrustedDataError as exc:
        return Outcome(target, "held-back", f"the kept index no longer verifies: {exc.message}")
    older_out_there = best is not None and best.index.seq < kept.own_seq
    outcome = _put(ctx, target, kept.item, min_current, older_out_there)
    if adopted and outcome.outcome == "current":
        return Outcome(target, "current", f"kept index seq {kept.own_seq} found in the DHT")
    return outcome


def _put(
    ctx: Context, target: Target, item: RawItem, min_current: int | None, replaces_older: bool
) -> Outcome:
    try:
        report = ctx.network.dht_put_signed(item, PUT_TIMEOUT, min_current=min_current)
    except UsageError as exc:  # this build cannot put items others signed
        return Outcome(target, "unavailable", exc.message)
    if report.newer:
        return Outcome(
            target,
            "outranked",
            f"{report.newer} node(s) hold this key's item under a higher BEP-44 seq than "
            f"seq {item.seq} kept here; only the key holder can replace it",
            report,
        )
    if report.skipped:
        return Outcome(
            target,
            "current",
            f"{report.already_current} of the closest nodes hold seq {item.seq}",
            report,
        )
    if report.stored == 0:
        return Outcome(target, "failed", f"no node stored it ({report.queried} asked)", report)
    why = " over an older record" if replaces_older else ""
    return Outcome(
        target,
        "put",
        f"put again{why}: stored on {report.stored} of {report.queried} nodes "
        f"({report.already_current} held it already)",
        report,
    )
