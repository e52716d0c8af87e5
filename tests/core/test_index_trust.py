"""Reading the publisher index by the rules of records (spec §4.5, §8.1, §8.2): one attack
per test, and the chain a follower checks when it catches up on several revisions (§7.1)."""

from __future__ import annotations

import hashlib
from dataclasses import replace

import pytest
from hubless.core import canonical
from hubless.core.bep44 import RawItem, sign_item, verify_item
from hubless.core.errors import (
    BadSignatureError,
    EquivocationError,
    FutureTimestampError,
    HistoryRewriteError,
    IntegrityError,
    MalformedError,
    NotFoundError,
    RollbackError,
    UsageError,
)
from hubless.core.history import next_history
from hubless.core.index import INDEX_SALT, IndexRecord, encode_index, encode_name_list
from hubless.core.keys import SigningKey
from hubless.core.manifest import FileEntry, Manifest, VerifiedManifest, sign_manifest
from hubless.core.manifest import verify_manifest as verify
from hubless.core.trust import (
    KnownIndex,
    check_chain,
    choose_index,
    index_names,
    missed_rows,
)

KEY = SigningKey(hashlib.sha256(b"index trust: publisher").digest())
MALLORY = SigningKey(hashlib.sha256(b"index trust: mallory").digest())
NOW = 1_800_000_000


def item(
    seq: int,
    names: tuple[str, ...] = ("a", "b"),
    *,
    bep44_seq: int | None = None,
    key: SigningKey = KEY,
    at: int = NOW,
) -> RawItem:
    """An inline index with own seq `seq`, signed by `key` under the reserved salt."""
    payload = encode_index(IndexRecord(seq, at, names=names))
    return sign_item(key, INDEX_SALT, seq if bep44_seq is None else bep44_seq, payload)


def known(raw: RawItem) -> KnownIndex:
    chosen = choose_index([raw], KEY.public, now=NOW)
    return KnownIndex(chosen.index.seq, chosen.digest)


# --- choosing among the answers of one lookup -------------------------------------------------


def test_the_highest_own_seq_wins_not_the_highest_bep44_seq() -> None:
    newest = item(3, ("a", "b", "c"), bep44_seq=3)
    replayed = item(2, ("a", "b"), bep44_seq=9)  # an old item put again with a higher seq
    chosen = choose_index([replayed, newest], KEY.public, now=NOW)
    assert chosen.index.seq == 3 and index_names(chosen) == ("a", "b", "c")


def test_two_indexes_with_one_seq_in_one_lookup_are_equivocation() -> None:
    with pytest.raises(EquivocationError):
        choose_index([item(4, ("a",)), item(4, ("a", "b"), bep44_seq=5)], KEY.public, now=NOW)


def test_the_same_index_met_twice_is_not_equivocation() -> None:
    same = item(4)
    again = RawItem(same.public_key, same.salt, same.seq, same.value, same.signature)
    assert choose_index([same, again], KEY.public, now=NOW).index.seq == 4


def test_a_forged_index_is_dropped_and_the_valid_one_kept() -> None:
    good = item(2)
    forged = replace(item(7, ("evil",)), signature=bytes(64))
    assert choose_index([forged, good], KEY.public, now=NOW).index.seq == 2


def test_only_forged_indexes_is_not_found() -> None:
    forged = replace(item(7), signature=b"\x01" * 64)
    with pytest.raises(NotFoundError):
        choose_index([forged], KEY.public, now=NOW)


def test_an_index_signed_by_another_key_is_not_found() -> None:
    theirs = item(9, ("evil",), key=MALLORY)
    with pytest.raises(NotFoundError):
        choose_index([theirs], KEY.public, now=NOW)


def test_another_key_signing_for_our_key_is_dropped() -> None:
    signed = item(9, ("evil",), key=MALLORY)
    posing = replace(signed, public_key=KEY.public.raw)  # her signature, our key's slot
    with pytest.raises(BadSignatureError):
        verify_item(posing, KEY.public, INDEX_SALT)
    assert choose_index([posing, item(1)], KEY.public, now=NOW).index.seq == 1


def test_a_record_under_a_model_salt_is_not_an_index() -> None:
    wrong_salt = sign_item(KEY, b"a", 5, encode_index(IndexRecord(5, NOW, names=("a",))))
    with pytest.raises(NotFoundError):
        choose_index([wrong_salt], KEY.public, now=NOW)


def test_a_malformed_index_is_passed_over_and_raised_when_alone() -> None:
    bad = sign_item(KEY, INDEX_SALT, 8, canonical.encode({"f": 1, "s": 8}))
    with pytest.raises(MalformedError):
        choose_index([bad], KEY.public, now=NOW)
    assert choose_index([bad, item(3)], KEY.public, now=NOW).index.seq == 3


def test_an_index_from_the_future_is_refused() -> None:
    with pytest.raises(FutureTimestampError):
        choose_index([item(1, at=NOW + 86_401)], KEY.public, now=NOW)
    assert choose_index([item(1, at=NOW + 86_400)], KEY.public, now=NOW).index.seq == 1


# --- against what the client remembers ------------------------------------------------------


def test_an_older_index_than_the_one_accepted_is_rollback() -> None:
    seen = known(item(5, ("a", "b", "c")))
    with pytest.raises(RollbackError):
        choose_index([item(4, ("a",), bep44_seq=40)], KEY.public, now=NOW, known=seen)


def test_another_index_with_the_accepted_seq_is_equivocation() -> None:
    seen = known(item(5, ("a", "b")))
    with pytest.raises(EquivocationError):
        choose_index([item(5, ("a",), bep44_seq=6)], KEY.public, now=NOW, known=seen)


def test_the_accepted_index_again_and_a_newer_one_pass() -> None:
    first = item(5)
    seen = known(first)
    assert choose_index([first], KEY.public, now=NOW, known=seen).index.seq == 5
    assert choose_index([item(6, ("a",))], KEY.public, now=NOW, known=seen).index.seq == 6


# --- the list-torrent form --------------------------------------------------------------------


def list_index(names: tuple[str, ...]) -> tuple[RawItem, bytes]:
    data = encode_name_list(names)
    record = IndexRecord(
        3, NOW, list_infohash=b"\x07" * 20, list_hash=hashlib.sha256(data).digest()
    )
    return sign_item(KEY, INDEX_SALT, 3, encode_index(record)), data


def test_list_form_names_come_from_the_list_its_hash_binds() -> None:
    raw, data = list_index(("a", "b", "z"))
    chosen = choose_index([raw], KEY.public, now=NOW)
    assert index_names(chosen, data) == ("a", "b", "z")


def test_list_form_with_another_list_is_an_integrity_error() -> None:
    raw, _ = list_index(("a", "b"))
    chosen = choose_index([raw], KEY.public, now=NOW)
    with pytest.raises(IntegrityError):
        index_names(chosen, encode_name_list(("a", "b", "evil")))
    with pytest.raises(UsageError):
        index_names(chosen)


# --- a follower catching up on several revisions ----------------------------------------------

FILES = (FileEntry("model.safetensors", 10, b"\x01" * 32),)


def ih(seq: int) -> bytes:
    return hashlib.sha1(b"manifest torrent %d" % seq).digest()


def release(
    seq: int, previous: VerifiedManifest | None, *, version: str | None = None
) -> VerifiedManifest:
    manifest = Manifest(
        KEY.public,
        "a",
        version or f"v{seq}",
        seq,
        NOW + seq,
        hashlib.sha1(b"%d" % seq).digest(),
        FILES,
        history=next_history(previous, ih(previous.manifest.seq)) if previous else (),
        prev=previous.hash if previous else None,
    )
    return verify(sign_manifest(manifest, KEY), KEY.public, "a", now=NOW + 100)


def test_missed_rows_are_the_revisions_after_the_last_taken_oldest_first() -> None:
    v1 = release(1, None)
    v2 = release(2, v1)
    v3 = release(3, v2)
    v4 = release(4, v3)
    assert [r.seq for r in missed_rows(v4, 1)] == [2, 3]
    assert missed_rows(v4, 3) == () and missed_rows(v4, None) == ()


def test_a_chain_of_revisions_each_extending_the_last_passes() -> None:
    v1 = release(1, None)
    v2 = release(2, v1)
    v3 = release(3, v2)
    check_chain([(v1, ih(1)), (v2, ih(2)), (v3, ih(3))])


def test_a_missed_revision_that_forks_from_the_one_before_is_refused() -> None:
    v1 = release(1, None)
    v2 = release(2, v1)
    fork = release(3, release(2, v1, version="other"))  # seq 3 chains to another seq 2
    with pytest.raises(HistoryRewriteError):
        check_chain([(v1, ih(1)), (v2, ih(2)), (fork, ih(3))])


def test_a_missed_revision_named_by_another_torrent_is_refused() -> None:
    v1 = release(1, None)
    v2 = release(2, v1)
    with pytest.raises(HistoryRewriteError):
        check_chain([(v1, b"\x09" * 20), (v2, ih(2))])
