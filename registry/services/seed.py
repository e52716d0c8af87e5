"""The key holder keeps its own records alive by signing them again (spec §8.5).

Anybody who verified a record can put it again verbatim (`hubless.services.keepalive`); the
key holder can do better than repeat an item: it signs the same record payload again under a
new BEP-44 seq, which also replaces any older item of its key that nodes still hold. It never
puts over a newer release of its own key that was published from another machine.
"""

from __future__ import annotations

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
from ..store import keepalive as store
from .context import Context
from .events import Event
from .keepalive import keep_own_put
from .publish import put_index, record_for


def republish_model(ctx: Context, key: SigningKey, name: str) -> bool:
    """Sign and put the latest record of `key`'s model `name` known here again; True if put.

    A model whose DHT record is newer than this machine's (published from another machine)
    is left alone: putting ours would push an older release over it.
    """
    known = ctx.state.known(key.public, name)
    if known is None or _dht_is_ahead(ctx, key, name, known.seq):
        return False
    verified = verify_manifest(known.manifest, key.public, name, now=int(time.time()))
    payload = encode_record(record_for(verified, known.manifest_infohash))
    try:
        nodes = ctx.network.dht_put(key, name.encode(), payload, ctx.config.dht_timeout)
    except HublessError as exc:
        ctx.emit(Event("seed", f"republishing {name} failed: {exc.message}"))
        return False
    keep_own_put(ctx, key.public, name.encode(), payload, known.seq)
    kept = store.kept_item(ctx.state, key.public, name.encode())
    if kept is not None and kept.own_seq == known.seq:
        store.record_health(
            ctx.state, kept.item, "put", stored=nodes, message="signed again by the key holder"
        )
    ctx.emit(Event("seed", f"republished {name} seq {known.seq}: stored on {nodes} nodes"))
    return True


def republish(ctx: Context, key: SigningKey) -> int:
    """Republish every model of `key` known here, then its index if any was put; return
    how many records were put."""
    count = sum(republish_model(ctx, key, model.name) for model in ctx.state.models(key.public))
    if count:
        try:
            put_index(ctx, key)
        except HublessError as exc:
            ctx.emit(Event("seed", f"republishing the publisher index failed: {exc.message}"))
    ctx.emit(Event("seed", f"republished {count} records"))
    return count


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
