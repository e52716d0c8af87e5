"""Is the record under our own key one this machine signed? (spec/PROTOCOL.md §8.5, §10)

A record under the publisher's key that the publisher's machine did not sign is the one
signal that the key has leaked: a different manifest at a seq this machine signed, an
older seq naming a manifest it never signed, or a value signed with the key that is no
valid record. Republishing must then stop for that model, never overwrite the record, and
say loudly that the key may have leaked. A *newer* seq may be the same key used on another
machine (allowed, §8.5): it is left alone with a warning that names both explanations.

`check_own_record` is what the seeder and a daemon call before putting a record again;
the outcome is also kept in the state database (`State.key_alerts`) for a status view.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from ..core.bep44 import verify_item, verify_signature
from ..core.errors import KeyLeakError, NetworkError, UntrustedDataError
from ..core.keys import PublicKey
from ..core.manifest import verify_manifest
from ..core.record import check_record
from .context import Context
from .events import Event

Status = Literal["ours", "absent", "newer", "forged", "unreachable"]


@dataclass(frozen=True)
class OwnRecordCheck:
    """What the DHT holds for one model under our key, compared with what we signed.

    `ours`: only records this machine signed (or older ones of its history); `absent`:
    nothing signed with the key; `newer`: a higher seq signed elsewhere; `forged`: a record
    this machine did not sign at or below its own seq, or a signed value that is no record;
    `unreachable`: the lookup did not finish.
    """

    publisher: PublicKey
    name: str
    status: Status
    detail: str = ""

    @property
    def may_republish(self) -> bool:
        """Whether putting our record again is safe: it overwrites nothing we did not sign."""
        return self.status in ("ours", "absent")

    def summary(self) -> dict[str, Any]:
        return {"name": self.name, "status": self.status, "detail": self.detail}


def check_own_record(ctx: Context, publisher: PublicKey, name: str) -> OwnRecordCheck:
    """Look the model's record up and compare every item signed with our key to what this
    machine signed (its known revision and that revision's history). Never raises for
    network trouble (`unreachable`); records alerts in the state database and emits a
    warning event for `newer` and `forged`."""
    salt = name.encode("ascii")
    try:
        items = ctx.network.dht_get(publisher, salt, ctx.config.dht_timeout)
    except NetworkError as exc:
        return OwnRecordCheck(publisher, name, "unreachable", exc.message)
    check = classify(ctx, publisher, name, items)
    if check.status in ("newer", "forged"):
        ctx.state.set_key_alert(publisher, name, check.status, check.detail)
        ctx.emit(Event("seed", f"not republishing {name}: {check.detail}"))
    elif check.status in ("ours", "absent"):
        ctx.state.clear_key_alert(publisher, name)
    return check


def classify(ctx: Context, publisher: PublicKey, name: str, items: Sequence[Any]) -> OwnRecordCheck:
    """The comparison of `check_own_record`, for items already fetched (no network)."""
    now = int(time.time())
    salt = name.encode("ascii")
    known = ctx.state.known(publisher, name)
    signed_here: dict[int, bytes] = {}
    known_seq = -1
    if known is not None:
        known_seq = known.seq
        held = verify_manifest(known.manifest, publisher, name, now=now)
        signed_here = {row.seq: row.manifest_hash for row in held.manifest.history}
        signed_here[known.seq] = known.manifest_hash
    forged: list[str] = []
    newer: list[str] = []
    found_ours = False
    for item in items:
        try:
            verify_signature(item, publisher, salt)
        except UntrustedDataError:
            continue  # not signed with the key: anyone can send those, and they are dropped
        try:
            record = check_record(verify_item(item, publisher, salt), name, now=now).record
        except UntrustedDataError as exc:
            forged.append(f"a value signed with this key that is no valid record ({exc.message})")
            continue
        if signed_here.get(record.seq) == record.manifest_hash:
            found_ours = True
        elif record.seq > known_seq:
            newer.append(f"seq {record.seq} ({record.version})")
        else:
            forged.append(
                f"seq {record.seq} ({record.version}) naming manifest "
                f"{record.manifest_hash.hex()[:16]}…, which this machine did not sign"
            )
    if forged:
        return OwnRecordCheck(
            publisher,
            name,
            "forged",
            f"the DHT holds a record under this key that this machine did not sign: "
            f"{'; '.join(sorted(set(forged)))}; your key may have leaked",
        )
    if newer:
        return OwnRecordCheck(
            publisher,
            name,
            "newer",
            f"the DHT has {', '.join(sorted(set(newer)))}, newer than seq {known_seq} signed "
            f"here: expected if you publish {name} from another machine with this key; "
            "otherwise your key has leaked",
        )
    return OwnRecordCheck(publisher, name, "ours" if found_ours else "absent")


def leak_error(checks: Sequence[OwnRecordCheck]) -> KeyLeakError | None:
    """The error a one-shot command ends with when any record was forged (exit code 3)."""
    forged = [c for c in checks if c.status == "forged"]
    if not forged:
        return None
    names = ", ".join(c.name for c in forged)
    return KeyLeakError(
        f"records under key {forged[0].publisher.text} that this machine did not sign: "
        f"{names} ({forged[0].detail})"
    )
