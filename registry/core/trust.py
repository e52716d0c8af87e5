"""The resolving rules of spec/PROTOCOL.md §8.1 steps 2-8 and §8.2, as one pure object.

`ModelTrust` is fed what the network returned (raw DHT items, manifest bytes) with an explicit
`now` and what this client remembered, and hands back only verified objects. Files, sockets
and the clock are not handled here: `hubless.services.resolve` fetches the bytes and stores
the result. Every rule of resolving lives in this module and nowhere else, so later rules
(key succession, revocation, freshness) have one place to go. The publisher index (§4.5)
is read by the same rules (`choose_index`), and a follower catching up on several
revisions checks them as one chain (`check_chain`).

A failed step raises an `UntrustedDataError` (or `NotFoundError` when no item was valid)
and leaves the object as it was; nothing it holds is written anywhere until the caller asks
for `to_remember` after the steps passed (§8.2: state only moves forward).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from itertools import pairwise

from .bep44 import RawItem, VerifiedItem, verify_item, verify_signature
from .errors import (
    EquivocationError,
    NotFoundError,
    RollbackError,
    UntrustedDataError,
    UsageError,
)
from .history import VersionChoice, check_extends, choose_version
from .index import INDEX_SALT, VerifiedIndex, check_index, decode_name_list
from .keys import PublicKey
from .manifest import HistoryEntry, VerifiedManifest, check_matches_record, verify_manifest
from .record import VerifiedRecord, check_record
from .refs import check_name


@dataclass(frozen=True)
class KnownRecord:
    """The highest record seq a client accepted for a model and the manifest hash at it."""

    seq: int
    manifest_hash: bytes


@dataclass(frozen=True)
class KnownState:
    """What a client remembers for one (publisher, name) (spec §8.2), as stored bytes."""

    seq: int
    version: str
    manifest_hash: bytes
    manifest_infohash: bytes
    manifest: bytes  # the exact signed manifest at `seq`

    @property
    def record(self) -> KnownRecord:
        return KnownRecord(self.seq, self.manifest_hash)


def check_known(
    seq: int, manifest_hash: bytes, known: KnownRecord, name: str, *, what: str = "record"
) -> None:
    """Spec §4.3 step 9: refuse an older seq (`RollbackError`) or another manifest for the
    same seq (`EquivocationError`) than one already accepted."""
    if seq < known.seq:
        raise RollbackError(f"{what} for {name} has version seq {seq}; seq {known.seq} was seen")
    if seq == known.seq and manifest_hash != known.manifest_hash:
        raise EquivocationError(f"publisher signed two different manifests as seq {seq} of {name}")


def choose_record(
    items: Sequence[RawItem],
    publisher: PublicKey,
    name: str,
    *,
    now: int,
    known: KnownRecord | None = None,
) -> VerifiedRecord:
    """Spec §8.1 step 2: the record with the highest own seq among the items a lookup met.

    Items that fail `verify_item` (§4.2: key, salt, size, signature) are dropped; if none
    is left, `NotFoundError`. The rest must pass `check_record` (§4.3 steps 2-8); failing
    ones are passed over, and if all fail the first failure (in descending BEP-44 seq) is
    raised. Nodes may hold different items: an old one replayed with a higher BEP-44 seq
    must not shadow the newest release (§4.1). Two valid records for one seq are
    equivocation. Only the chosen record is checked against `known` (§4.3 step 9).

    Raises `NotFoundError`, `EquivocationError`, `RollbackError` or a record's failure.
    """
    check_name(name)
    salt = name.encode("ascii")
    signed: list[VerifiedItem] = []
    first_error: UntrustedDataError | None = None
    for item in sorted(items, key=lambda i: i.seq, reverse=True):
        try:
            verify_signature(item, publisher, salt)
        except UntrustedDataError:
            continue  # libtorrent's "found nothing" answer lands here too (§8.1 step 2)
        try:
            signed.append(verify_item(item, publisher, salt))
        except UntrustedDataError as exc:  # signed by the publisher, yet no byte string
            first_error = first_error or exc
    if not signed and first_error is None:
        raise NotFoundError(f"no valid DHT record for model {name!r} under key {publisher.text}")
    valid: list[VerifiedRecord] = []
    for verified in signed:
        try:
            valid.append(check_record(verified, name, now=now))
        except UntrustedDataError as exc:
            first_error = first_error or exc
    if not valid:
        assert first_error is not None
        raise first_error
    best = max(valid, key=lambda v: v.record.seq)
    chosen = KnownRecord(best.record.seq, best.record.manifest_hash)
    for other in valid:  # the same rule as against known state, applied among the answers
        if other.record.seq == chosen.seq:
            check_known(other.record.seq, other.record.manifest_hash, chosen, name)
    if known is not None:
        check_known(best.record.seq, best.record.manifest_hash, known, name)
    return best


class ModelTrust:
    """Resolve one model, step by step, from untrusted bytes (spec §8.1 steps 2-8).

    Use in order: `update_record(items)`; then `update_latest(data)` with the manifest
    the record names (or `None` when `needs_manifest` is False: the held one is the latest);
    then `choose(version)` and, for a history row, `update_target(row, data)`. With no answer
    from the DHT, `offline()` gives the known manifest instead (the caller marks it stale).
    """

    def __init__(
        self, publisher: PublicKey, name: str, *, now: int, known: KnownState | None
    ) -> None:
        check_name(name)
        self.publisher = publisher
        self.name = name
        self.now = now
        self.known = known
        self.record: VerifiedRecord | None = None
        self.latest: VerifiedManifest | None = None
        self.latest_infohash: bytes | None = None
        self._accepted_new = False

    # --- step 2 -------------------------------------------------------------------------------

    def update_record(self, items: Sequence[RawItem]) -> VerifiedRecord:
        """Verify and choose the record among `items` (§8.1 step 2, §4.3 step 9)."""
        known = self.known.record if self.known is not None else None
        self.record = choose_record(items, self.publisher, self.name, now=self.now, known=known)
        return self.record

    @property
    def needs_manifest(self) -> bool:
        """Step 3: whether the record names a manifest other than the one held."""
        record = self._record()
        return self.known is None or self.known.manifest_hash != record.record.manifest_hash

    # --- steps 3-7 ----------------------------------------------------------------------------

    def update_latest(self, data: bytes | None) -> VerifiedManifest:
        """Verify the manifest the record names (`data`; None: the held one), steps 3-6.

        Raises what `verify_manifest` raises (§5.5), `MalformedError` when it disagrees with
        the record (step 5), `RollbackError`/`EquivocationError`/`HistoryRewriteError` when it
        does not extend the held one (step 6, §7.1).
        """
        record = self._record().record
        if data is None:
            if self.needs_manifest or self.known is None:
                raise UsageError("the record names a manifest this client does not hold")
            latest = self._held()
        else:
            latest = verify_manifest(
                data, self.publisher, self.name, now=self.now, expected_hash=record.manifest_hash
            )
        # Also for a manifest held already: a record may name it under a newer seq (step 5).
        check_matches_record(latest, record.seq, record.version)
        if self.needs_manifest and self.known is not None:
            check_extends(self._held(), latest, known_infohash=self.known.manifest_infohash)
        self.latest, self.latest_infohash = latest, record.manifest_infohash
        self._accepted_new = self.needs_manifest
        return latest

    def offline(self) -> VerifiedManifest:
        """The known manifest, verified again without an expected hash (§8.1 fallback).

        Raises `NotFoundError` when nothing is known.
        """
        if self.known is None:
            raise NotFoundError(f"nothing is known here about {self.name!r}")
        self.latest, self.latest_infohash = self._held(), self.known.manifest_infohash
        self._accepted_new = False
        return self.latest

    @property
    def to_remember(self) -> KnownState | None:
        """Step 7: the new known state once steps 2-6 passed, or None when nothing changed."""
        if not self._accepted_new or self.latest is None or self.latest_infohash is None:
            return None
        m = self.latest.manifest
        return KnownState(
            m.seq, m.version, self.latest.hash, self.latest_infohash, self.latest.data
        )

    # --- step 8 -------------------------------------------------------------------------------

    def choose(self, version: str | None) -> VersionChoice:
        """The revision `version` names in the latest manifest (§7.2; `UsageError` if none)."""
        return choose_version(self._latest().manifest, version)

    def update_target(self, row: HistoryEntry, data: bytes) -> VerifiedManifest:
        """Verify an older revision's manifest against the history row naming it (step 8)."""
        return verify_row(self.publisher, self.name, row, data, now=self.now)

    # --- helpers ------------------------------------------------------------------------------

    def _record(self) -> VerifiedRecord:
        if self.record is None:
            raise UsageError("update_record must come first (spec §8.1 step 2)")
        return self.record

    def _latest(self) -> VerifiedManifest:
        if self.latest is None:
            raise UsageError("update_latest or offline must come first (spec §8.1 steps 3-6)")
        return self.latest

    def _held(self) -> VerifiedManifest:
        assert self.known is not None
        return verify_manifest(self.known.manifest, self.publisher, self.name, now=self.now)


def verify_row(
    publisher: PublicKey, name: str, row: HistoryEntry, data: bytes, *, now: int
) -> VerifiedManifest:
    """An older revision's manifest, verified against the history row naming it (§7.2).

    Raises what `verify_manifest` raises (§5.5, with `expected_hash` = the row's hash), and
    `MalformedError` when its seq or version is not the row's.
    """
    target = verify_manifest(data, publisher, name, now=now, expected_hash=row.manifest_hash)
    check_matches_record(target, row.seq, row.version, what="a history row")
    return target


# --- the publisher index (spec §4.5, §8.1, §8.2) ----------------------------------------------


@dataclass(frozen=True)
class KnownIndex:
    """The highest index seq a client accepted for a publisher, and SHA-256 of its payload."""

    seq: int
    digest: bytes


def check_known_index(index: VerifiedIndex, known: KnownIndex) -> None:
    """Refuse an index older than the one accepted (`RollbackError`) or another index with
    the same seq (`EquivocationError`): §4.3 step 9's rule, applied to §4.5."""
    seq = index.index.seq
    if seq < known.seq:
        raise RollbackError(
            f"publisher index has seq {seq}; seq {known.seq} was seen (key {index.publisher.text})"
        )
    if seq == known.seq and index.digest != known.digest:
        raise EquivocationError(
            f"publisher signed two different indexes as seq {seq} (key {index.publisher.text})"
        )


def choose_index(
    items: Sequence[RawItem],
    publisher: PublicKey,
    *,
    now: int,
    known: KnownIndex | None = None,
) -> VerifiedIndex:
    """The publisher index with the highest own seq among the items a lookup met (§4.5, §8.1).

    The rules of `choose_record` for salt `hubless:index`: items failing `verify_item` (§4.2)
    are dropped (none left: `NotFoundError`); the rest must pass `check_index` (schema, a
    time at most 86400 s ahead), failing ones are passed over and, if all fail, the first
    failure (in descending BEP-44 seq) is raised. The index with the highest `s` wins, not
    the highest BEP-44 seq; another passing index with that `s` and a different payload is
    `EquivocationError`. Only the chosen index is checked against `known`
    (`check_known_index`: `RollbackError`, `EquivocationError`).
    """
    signed: list[VerifiedItem] = []
    for item in sorted(items, key=lambda i: i.seq, reverse=True):
        try:
            signed.append(verify_item(item, publisher, INDEX_SALT))
        except UntrustedDataError:
            continue
    if not signed:
        raise NotFoundError(f"no valid publisher index in the DHT under key {publisher.text}")
    valid: list[VerifiedIndex] = []
    first_error: UntrustedDataError | None = None
    for verified in signed:
        try:
            valid.append(check_index(verified, now=now))
        except UntrustedDataError as exc:
            first_error = first_error or exc
    if not valid:
        assert first_error is not None
        raise first_error
    best = max(valid, key=lambda v: v.index.seq)
    chosen = KnownIndex(best.index.seq, best.digest)
    for other in valid:  # the rule against known state, applied among the answers
        if other.index.seq == chosen.seq:
            check_known_index(other, chosen)
    if known is not None:
        check_known_index(best, known)
    return best


def index_names(index: VerifiedIndex, list_data: bytes | None = None) -> tuple[str, ...]:
    """The model names an accepted index lists: inline, or read from its list file (§4.5).

    `list_data` is the list torrent's file for the list form (`UsageError` if missing);
    `decode_name_list` raises `OversizedError`, `IntegrityError` or `MalformedError`.
    """
    record = index.index
    if record.names is not None:
        return record.names
    if list_data is None or record.list_hash is None:
        raise UsageError("this index lists its names in a list torrent: fetch it first")
    return decode_name_list(list_data, record.list_hash)


# --- catching up on several revisions (spec §7.1, §8.1 step 6) --------------------------------


def missed_rows(latest: VerifiedManifest, after_seq: int | None) -> tuple[HistoryEntry, ...]:
    """The history rows of `latest` newer than `after_seq`, oldest first (None: no rows).

    What a follower that last took revision `after_seq` has not had yet, besides `latest`
    itself; with no earlier revision taken it starts at the latest alone.
    """
    if after_seq is None:
        return ()
    return tuple(row for row in latest.manifest.history if row.seq > after_seq)


def check_chain(chain: Sequence[tuple[VerifiedManifest, bytes]]) -> None:
    """Each (manifest, manifest-torrent infohash) extends the one before it (§7.1).

    For a follower that missed several revisions: each must extend the history the previous
    one holds, not only the latest the one held. Raises `HistoryRewriteError`,
    `RollbackError` or `EquivocationError` at the first revision that does not.
    """
    for (previous, previous_infohash), (new, _) in pairwise(chain):
        check_extends(previous, new, known_infohash=previous_infohash)
