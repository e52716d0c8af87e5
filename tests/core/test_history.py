"""History extension, version lookup and yanks (spec/PROTOCOL.md §7): one attack per test."""

from __future__ import annotations

import hashlib
from dataclasses import replace

import pytest
from hubless.core.errors import (
    EquivocationError,
    HistoryRewriteError,
    RollbackError,
    UsageError,
)
from hubless.core.history import check_extends, choose_version, mark_yanked, next_history
from hubless.core.keys import SigningKey
from hubless.core.manifest import (
    FileEntry,
    HistoryEntry,
    Manifest,
    VerifiedManifest,
    sign_manifest,
    verify_manifest,
)

KEY = SigningKey(hashlib.sha256(b"history").digest())
NOW = 1_800_000_000
FILES = (FileEntry("model.safetensors", 10, b"\x01" * 32),)


def ih(seq: int) -> bytes:
    return hashlib.sha1(b"manifest torrent %d" % seq).digest()


def publish(
    version: str, seq: int, previous: VerifiedManifest | None, **changes: object
) -> VerifiedManifest:
    history = next_history(previous, ih(previous.manifest.seq)) if previous else ()
    manifest = Manifest(
        KEY.public,
        "m",
        version,
        seq,
        NOW + seq,
        hashlib.sha1(version.encode()).digest(),
        FILES,
        history=history,
        prev=previous.hash if previous else None,
    )
    manifest = replace(manifest, **changes) if changes else manifest
    return verify_manifest(sign_manifest(manifest, KEY), KEY.public, "m", now=NOW + 100)


@pytest.fixture()
def chain() -> list[VerifiedManifest]:
    v1 = publish("v1", 1, None)
    v2 = publish("v2", 2, v1)
    v3 = publish("v3", 5, v2)
    return [v1, v2, v3]


def test_a_later_revision_extends_every_earlier_one(chain: list[VerifiedManifest]) -> None:
    for i, known in enumerate(chain):
        for later in chain[i:]:
            check_extends(known, later)


def test_rollback_to_an_older_revision_is_refused(chain: list[VerifiedManifest]) -> None:
    with pytest.raises(RollbackError):
        check_extends(chain[2], chain[0])


def test_two_manifests_for_one_seq_are_equivocation(chain: list[VerifiedManifest]) -> None:
    fork = publish("v2-fork", 2, chain[0])
    with pytest.raises(EquivocationError):
        check_extends(chain[1], fork)


def test_a_fork_that_skips_the_known_revision_is_refused(chain: list[VerifiedManifest]) -> None:
    fork = publish("v3-fork", 6, chain[0])  # chains to v1, leaving out v2 which the client holds
    with pytest.raises(HistoryRewriteError):
        check_extends(chain[1], fork)


def test_renaming_an_old_version_is_a_rewrite(chain: list[VerifiedManifest]) -> None:
    v2 = chain[1]
    history = (replace(v2.manifest.history[0], version="v0"),)
    tampered = Manifest(
        KEY.public,
        "m",
        "v4",
        7,
        NOW,
        b"\x02" * 20,
        FILES,
        history=(*history, HistoryEntry(2, "v2", ih(2), v2.hash, v2.manifest.created)),
        prev=v2.hash,
    )
    signed = verify_manifest(sign_manifest(tampered, KEY), KEY.public, "m", now=NOW + 100)
    with pytest.raises(HistoryRewriteError):
        check_extends(v2, signed)


def test_inserting_a_revision_into_the_past_is_a_rewrite(chain: list[VerifiedManifest]) -> None:
    v2 = chain[1]
    inserted = HistoryEntry(0, "v0", ih(0), b"\x00" * 32, NOW)
    tampered = Manifest(
        KEY.public,
        "m",
        "v4",
        7,
        NOW,
        b"\x02" * 20,
        FILES,
        history=(inserted, *next_history(v2, ih(2))),
        prev=v2.hash,
    )
    signed = verify_manifest(sign_manifest(tampered, KEY), KEY.public, "m", now=NOW + 100)
    with pytest.raises(HistoryRewriteError):
        check_extends(v2, signed)


def test_yank_marks_may_change_without_a_rewrite(chain: list[VerifiedManifest]) -> None:
    v3 = chain[2]
    history = mark_yanked(next_history(v3, ih(5)), "v2", "broken tokenizer")
    yank = Manifest(
        KEY.public,
        "m",
        "v3",
        6,
        NOW,
        v3.manifest.content_infohash,
        FILES,
        history=history,
        prev=v3.hash,
    )
    signed = verify_manifest(sign_manifest(yank, KEY), KEY.public, "m", now=NOW + 100)
    check_extends(v3, signed)
    assert choose_version(signed.manifest, "v2").yanked == "broken tokenizer"
    assert choose_version(signed.manifest, None).yanked is None


def test_choose_version_picks_the_newest_revision_of_a_label(chain: list[VerifiedManifest]) -> None:
    m = chain[2].manifest
    assert choose_version(m, None).seq == 5
    assert choose_version(m, "v3").entry is None
    choice = choose_version(m, "v1")
    assert choice.seq == 1 and choice.entry is not None and choice.entry.manifest_infohash == ih(1)
    with pytest.raises(UsageError, match="no version 'v9'"):
        choose_version(m, "v9")


def test_the_known_manifest_must_be_listed_under_the_infohash_it_came_by(
    chain: list[VerifiedManifest],
) -> None:
    check_extends(chain[0], chain[1], known_infohash=ih(1))
    with pytest.raises(HistoryRewriteError):
        check_extends(chain[0], chain[1], known_infohash=b"\x09" * 20)


def test_yank_mark_reported_is_the_chosen_revisions_own(chain: list[VerifiedManifest]) -> None:
    v3 = chain[2]
    rerelease = Manifest(
        KEY.public,
        "m",
        "v2",
        6,
        NOW,
        b"\x02" * 20,
        FILES,
        history=mark_yanked(next_history(v3, ih(5)), "v2", "bad"),
        prev=v3.hash,
    )
    assert choose_version(rerelease, "v2").yanked is None  # the newest v2 is this one, not yanked
    assert choose_version(rerelease, None).yanked is None


def test_a_record_and_its_manifest_must_agree(chain: list[VerifiedManifest]) -> None:
    from hubless.core.errors import MalformedError
    from hubless.core.manifest import check_matches_record

    check_matches_record(chain[1], 2, "v2")
    with pytest.raises(MalformedError):
        check_matches_record(chain[1], 3, "v2")
    with pytest.raises(MalformedError):
        check_matches_record(chain[1], 2, "v3")
