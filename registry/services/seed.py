"""Serve everything this machine published or pulled, and keep its own records alive.

DHT nodes forget items (BEP-44 asks for hourly republishing), so a running seeder puts
its publisher's latest records again on a timer. Only the key holder can do that here:
libtorrent's Python binding signs every put itself.
"""

from __future__ import annotations

import threading
import time

from ..core.errors import HublessError
from ..core.keys import SigningKey
from ..core.manifest import verify_manifest
from ..core.record import encode_record
from ..store.state import SeedEntry
from .context import Context
from .events import Event
from .own_records import OwnRecordCheck, check_own_record
from .publish import INDEX_LIST_NAME, put_index, record_for

REPUBLISH_EVERY = 30 * 60.0


def seed_all(ctx: Context) -> int:
    """Start serving every torrent in the seeds table; return how many."""
    entries = ctx.state.seeds()
    started = 0
    for entry in entries:
        if _unrecorded_manifest(ctx, entry):
            ctx.state.remove_seed(entry.infohash)
            ctx.emit(
                Event(
                    "seed",
                    f"not serving manifest seq {entry.seq} of {entry.name}: it was signed but "
                    "never recorded (a publish was interrupted); dropped",
                )
            )
            continue
        if not entry.save_path.exists():
            ctx.emit(
                Event("seed", f"skipping {entry.name} seq {entry.seq}: {entry.save_path} is gone")
            )
            continue
        ctx.seed_torrent(entry, remember=False)
        started += 1
    ctx.emit(Event("seed", f"seeding {started} torrents"))
    return started


def _unrecorded_manifest(ctx: Context, entry: SeedEntry) -> bool:
    """A manifest above the seq known for its model: signed, never recorded (spec §8.3)."""
    if entry.kind != "manifest" or entry.name == INDEX_LIST_NAME:
        return False
    known = ctx.state.known(entry.publisher, entry.name)
    return known is None or entry.seq > known.seq


def republish(ctx: Context, key: SigningKey) -> int:
    """Put the latest record of every model of `key` known here again; return how many.

    Each model's record is checked first (`check_own_record`, spec §8.5): one newer than
    this machine's (the key used elsewhere) or one this machine did not sign (the key may
    have leaked) is left alone and reported, never overwritten.
    """
    return republish_once(ctx, key)[0]


def republish_once(ctx: Context, key: SigningKey) -> tuple[int, list[OwnRecordCheck]]:
    """`republish`, also returning the check of every model (for a one-shot command that
    exits with `leak_error(checks)`)."""
    count = 0
    checks: list[OwnRecordCheck] = []
    for model in ctx.state.models(key.public):
        check = check_own_record(ctx, key.public, model.name)
        checks.append(check)
        if check.status == "unreachable":
            ctx.emit(Event("seed", f"not republishing {model.name}: {check.detail}"))
        known = ctx.state.known(key.public, model.name)
        if known is None or not check.may_republish:
            continue
        verified = verify_manifest(known.manifest, key.public, model.name, now=int(time.time()))
        record = record_for(verified, known.manifest_infohash)
        try:
            ctx.network.dht_put(
                key, model.name.encode(), encode_record(record), ctx.config.dht_timeout
            )
            count += 1
        except HublessError as exc:
            ctx.emit(Event("seed", f"republishing {model.name} failed: {exc.message}"))
    if count:
        put_index(ctx, key)
    ctx.emit(Event("seed", f"republished {count} records"))
    return count, checks


def run(
    ctx: Context,
    *,
    key: SigningKey | None,
    stop: threading.Event,
    republish_every: float = REPUBLISH_EVERY,
) -> None:
    """Seed until `stop` is set, republishing `key`'s records every `republish_every` s."""
    seed_all(ctx)
    next_put = time.monotonic()
    while not stop.is_set():
        if key is not None and time.monotonic() >= next_put:
            republish(ctx, key)
            next_put = time.monotonic() + republish_every
        stop.wait(1.0)
