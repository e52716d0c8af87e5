"""The hash chain of a model's manifests: extension, version lookup, yanks (spec §7).

A client that holds revision N accepts revision M > N only if M's history repeats N's
history and N itself unchanged, except for yank marks. Yanking is itself a new revision.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from .errors import EquivocationError, HistoryRewriteError, RollbackError, UsageError
from .manifest import HistoryEntry, Manifest, VerifiedManifest


def entry_for(verified: VerifiedManifest, manifest_infohash: bytes) -> HistoryEntry:
    """The history row that the next revision lists for `verified`."""
    m = verified.manifest
    return HistoryEntry(m.seq, m.version, manifest_infohash, verified.hash, m.created, m.yanked)


def check_extends(
    known: VerifiedManifest, new: VerifiedManifest, known_infohash: bytes | None = None
) -> None:
    """Raise unless `new` is `known` again or a later revision that extends its history.

    `known_infohash`, the manifest torrent the client fetched `known` by, must then be the
    one `new` lists for that revision.
    """
    k, n = known.manifest, new.manifest
    if n.seq < k.seq:
        raise RollbackError(f"manifest seq {n.seq} of {n.name} is older than known seq {k.seq}")
    if n.seq == k.seq:
        if new.hash != known.hash:
            raise EquivocationError(f"two different manifests claim seq {n.seq} of {n.name}")
        return
    rows = {row.seq: row for row in n.history}
    for old in (*k.history, None):
        expected_seq = old.seq if old is not None else k.seq
        row = rows.get(expected_seq)
        if row is None:
            raise HistoryRewriteError(
                f"manifest seq {n.seq} drops revision {expected_seq} from history"
            )
        if old is not None:
            same = (old.version, old.manifest_infohash, old.manifest_hash, old.created)
            if (row.version, row.manifest_infohash, row.manifest_hash, row.created) != same:
                raise HistoryRewriteError(f"manifest seq {n.seq} rewrites revision {old.seq}")
        elif (row.version, row.manifest_hash, row.created) != (
            k.version,
            known.hash,
            k.created,
        ) or (known_infohash is not None and row.manifest_infohash != known_infohash):
            raise HistoryRewriteError(f"manifest seq {n.seq} does not chain to known seq {k.seq}")
    listed_before = sum(1 for row in n.history if row.seq <= k.seq)
    if listed_before != len(k.history) + 1:
        raise HistoryRewriteError(f"manifest seq {n.seq} inserts revisions older than seq {k.seq}")


@dataclass(frozen=True)
class VersionChoice:
    """Which revision a version request picked: the manifest itself or a history row."""

    seq: int
    version: str
    yanked: str | None
    entry: HistoryEntry | None  # None: the latest manifest itself


def choose_version(manifest: Manifest, version: str | None) -> VersionChoice:
    """The revision `version` names (the newest one with that label); None means latest.

    The yank mark reported is the chosen revision's own (spec §7.3).
    """
    if version is None or version == manifest.version:
        return VersionChoice(manifest.seq, manifest.version, manifest.yanked, None)
    for row in reversed(manifest.history):
        if row.version == version:
            return VersionChoice(row.seq, row.version, row.yanked, row)
    known = ", ".join(dict.fromkeys(r.version for r in reversed(manifest.history)))
    raise UsageError(
        f"{manifest.name} has no version {version!r}",
        hint=f"latest is {manifest.version}" + (f"; earlier: {known}" if known else ""),
    )


def next_history(previous: VerifiedManifest, previous_infohash: bytes) -> tuple[HistoryEntry, ...]:
    """History for the revision after `previous`: its history plus `previous` itself."""
    return (*previous.manifest.history, entry_for(previous, previous_infohash))


def mark_yanked(
    history: tuple[HistoryEntry, ...], version: str, reason: str
) -> tuple[HistoryEntry, ...]:
    """History with every row of `version` marked yanked for `reason`."""
    return tuple(replace(row, yanked=reason) if row.version == version else row for row in history)
