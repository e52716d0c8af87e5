"""Serve everything this machine published or pulled, and keep its own records alive.

DHT nodes forget items (BEP-44 asks for hourly republishing), so a running seeder puts
its publisher's latest records again on a timer. Only the key holder can do that here:
libtorrent's Python binding signs every put itself.
"""

from __future__ import annotations

import threading
import time

from ..core.errors import (
    EquivocationError,
    HublessError,
    NetworkError,
    NotFoundError,
    UntrustedDataError,
)
from ..core.keys import SigningKey
from ..core.manifest import verify_manifest
from ..core.record import encode_record
from ..core.trust import choose_record
from .context import Context
from .events import Event
from .publish import put_index, record_for

REPUBLISH_EVERY = 30 * 60.0


def seed_all(ctx: Context) -> int:
    """Start serving every torrent in the seeds table; return how many."""
    entries = ctx.state.seeds()
    started = 0
    for entry in entries:
        if not entry.save_path.exists():
            ctx.emit(
                Event("seed", f"skipping {entry.name} seq {entry.seq}: {entry.save_path} is gone")
            )
            continue
        ctx.seed_torrent(entry, remember=False, start=True)
        started += 1
    ctx.emit(Event("seed", f"seeding {started} torrents"))
    return started


def republish(ctx: Context, key: SigningKey) -> int:
    """Put the latest record of every model of `key` known here again; return how many.

    A model whose DHT record is newer than this machine's (published from another machine)
    is left alone: putting ours would push an older release over it.
    """
    count = 0
    for model in ctx.state.models(key.public):
        known = ctx.state.known(key.public, model.name)
        if known is None or _dht_is_ahead(ctx, key, model.name, known.seq):
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
    return count


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


def _dht_is_ahead(ctx: Context, key: SigningKey, name: str, ours: int) -> bool:
    try:
        items = ctx.network.dht_get(key.public, name.encode(), ctx.config.dht_timeout)
        theirs = choose_record(items, key.public, name, now=int(time.time())).record.seq
    except NotFoundError:
        return False  # forgotten: exactly what republishing is for
    except EquivocationError as exc:
        # Our own key signed two records for one seq: two machines publish, or the key leaked.
        ctx.emit(Event("seed", f"not republishing {name}: {exc.message}; check who holds this key"))
        return True
    except UntrustedDataError:
        return False  # junk under our key and salt: our signed record replaces it
    except NetworkError as exc:
        ctx.emit(Event("seed", f"not republishing {name}: {exc.message}"))
        return True
    if theirs > ours:
        ctx.emit(
            Event(
                "seed",
                f"the DHT has seq {theirs} of {name}, newer than seq {ours} "
                "known here (published elsewhere?): not republishing it",
            )
        )
        return True
    return False
