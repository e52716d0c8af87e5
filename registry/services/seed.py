"""The key holder keeps its own records alive by signing them again (spec §8.5).

Anybody who verified a record can put it again verbatim (`hubless.services.keepalive`); the
key holder can do better than repeat an item: it signs the same record payload again under a
new BEP-44 seq, which also replaces any older item of its key that nodes still hold. It never
puts over a newer release of its own key that was published from another machine, nor over
a record under its key that this machine did not sign (the key may have leaked: spec §8.5,
`hubless.services.own_records`).
"""

from __future__ import annotations

import time

from ..core.errors import HublessError
from ..core.keys import SigningKey
from ..core.manifest import verify_manifest
from ..core.record import encode_record
from ..store import keepalive as store
from ..store.state import SeedEntry
from .context import Context
from .events import Event
from .keepalive import keep_own_put
from .own_records import OwnRecordCheck, check_own_record
from .publish import INDEX_LIST_NAME, put_index, record_for


def unrecorded_manifest(ctx: Context, entry: SeedEntry) -> bool:
    """A manifest above the seq known for its model: signed, never recorded (spec §8.3).

    Serving it would hand out a release its publisher never put; the daemon drops it."""
    if entry.kind != "manifest" or entry.name == INDEX_LIST_NAME:
        return False
    known = ctx.state.known(entry.publisher, entry.name)
    return known is None or entry.seq > known.seq


def republish_model(ctx: Context, key: SigningKey, name: str) -> bool:
    """Sign and put the latest record of `key`'s model `name` known here again; True if put."""
    return _republish_checked(ctx, key, name)[0]


def _republish_checked(ctx: Context, key: SigningKey, name: str) -> tuple[bool, OwnRecordCheck]:
    """`republish_model`, after `check_own_record`: a record newer than this machine's (the
    key used elsewhere) or one this machine did not sign (the key may have leaked) is left
    alone and reported, never overwritten."""
    check = check_own_record(ctx, key.public, name)
    if check.status == "unreachable":
        ctx.emit(Event("seed", f"not republishing {name}: {check.detail}"))
    known = ctx.state.known(key.public, name)
    if known is None or not check.may_republish:
        return False, check
    verified = verify_manifest(known.manifest, key.public, name, now=int(time.time()))
    payload = encode_record(record_for(verified, known.manifest_infohash))
    try:
        nodes = ctx.network.dht_put(key, name.encode(), payload, ctx.config.dht_timeout)
    except HublessError as exc:
        ctx.emit(Event("seed", f"republishing {name} failed: {exc.message}"))
        return False, check
    keep_own_put(ctx, key.public, name.encode(), payload, known.seq)
    kept = store.kept_item(ctx.state, key.public, name.encode())
    if kept is not None and kept.own_seq == known.seq:
        store.record_health(
            ctx.state, kept.item, "put", stored=nodes, message="signed again by the key holder"
        )
    ctx.emit(Event("seed", f"republished {name} seq {known.seq}: stored on {nodes} nodes"))
    return True, check


def republish(ctx: Context, key: SigningKey) -> int:
    """Republish every model of `key` known here, then its index if any was put; return
    how many records were put."""
    return republish_once(ctx, key)[0]


def republish_once(ctx: Context, key: SigningKey) -> tuple[int, list[OwnRecordCheck]]:
    """`republish`, also returning the check of every model (for a one-shot command that
    exits with `own_records.leak_error(checks)`)."""
    count = 0
    checks: list[OwnRecordCheck] = []
    for model in ctx.state.models(key.public):
        put, check = _republish_checked(ctx, key, model.name)
        count += put
        checks.append(check)
    if count:
        try:
            put_index(ctx, key)
        except HublessError as exc:
            ctx.emit(Event("seed", f"republishing the publisher index failed: {exc.message}"))
    ctx.emit(Event("seed", f"republished {count} records"))
    return count, checks
