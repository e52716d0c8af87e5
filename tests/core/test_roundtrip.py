"""Property tests: codecs round-trip, and decoders refuse any byte flip with a typed error."""

from __future__ import annotations

import contextlib
import hashlib

from hubless.core import bencode, bep44, canonical
from hubless.core.errors import HublessError
from hubless.core.keys import SigningKey
from hubless.core.manifest import FileEntry, Manifest, sign_manifest, verify_manifest
from hubless.core.record import Record, decode_record, encode_record, verify_record
from hypothesis import given, settings
from hypothesis import strategies as st

KEY = SigningKey(hashlib.sha256(b"roundtrip").digest())
ALNUM = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
labels = st.from_regex(r"[A-Za-z0-9](?:[A-Za-z0-9._-]{0,62}[A-Za-z0-9])?", fullmatch=True).filter(
    lambda s: ".." not in s
)
uint63 = st.integers(min_value=0, max_value=2**63 - 1)
infohash = st.one_of(st.binary(min_size=20, max_size=20), st.binary(min_size=32, max_size=32))
sha = st.binary(min_size=32, max_size=32)

records = st.builds(Record, uint63, labels, infohash, sha, uint63)


@given(records)
def test_record_round_trips(record: Record) -> None:
    payload = encode_record(record)
    assert decode_record(payload) == record
    assert len(bencode.encode(payload)) <= 400


@given(records, st.data())
@settings(max_examples=60)
def test_any_byte_flip_in_a_signed_record_is_refused(record: Record, data: st.DataObject) -> None:
    item = bep44.sign_item(KEY, b"m", 1, encode_record(record))
    i = data.draw(st.integers(0, len(item.value) - 1))
    value = bytearray(item.value)
    value[i] ^= data.draw(st.integers(1, 255))
    tampered = bep44.RawItem(item.public_key, item.salt, item.seq, bytes(value), item.signature)
    try:
        verify_record(tampered, KEY.public, "m", now=2**63)
    except HublessError:
        return
    raise AssertionError("a tampered record verified")


segment = st.text(ALNUM + "-_", min_size=1, max_size=12).map(
    lambda s: "f" + s
)  # never a device name
paths = st.lists(st.lists(segment, min_size=1, max_size=3).map("/".join), min_size=1, max_size=20)


def _file_table(names: list[str]) -> tuple[FileEntry, ...]:
    unique: dict[str, str] = {}
    for name in names:
        unique.setdefault(name.lower(), name)
    chosen = sorted(unique.values())
    # Drop paths that are a folder prefix of another (a file cannot also be a folder).
    folders = {p.lower().rsplit("/", k)[0] for p in chosen for k in range(1, p.count("/") + 1)}
    kept = [p for p in chosen if p.lower() not in folders] or ["x"]
    return tuple(FileEntry(p, len(p), hashlib.sha256(p.encode()).digest()) for p in kept)


manifests = st.builds(
    lambda name, version, seq, created, content, files, desc, tags: Manifest(
        KEY.public,
        name,
        version,
        seq,
        created,
        content,
        _file_table(files),
        description=desc,
        tags=tuple(sorted(set(tags))),
    ),
    labels,
    labels,
    uint63,
    st.integers(0, 2**40),
    infohash,
    paths,
    st.one_of(
        st.none(),
        st.text(st.characters(blacklist_categories=("Cc", "Cs", "Cf")), min_size=1, max_size=50),
    ),
    st.lists(st.text(ALNUM, min_size=1, max_size=8), max_size=3),
)


@given(manifests)
@settings(max_examples=80)
def test_manifest_round_trips_and_encoding_is_canonical(manifest: Manifest) -> None:
    signed = sign_manifest(manifest, KEY)
    verified = verify_manifest(signed, KEY.public, manifest.name, now=2**41)
    assert verified.manifest == manifest
    assert sign_manifest(verified.manifest, KEY) == signed


@given(st.binary(max_size=300))
def test_decoders_raise_only_typed_errors_on_garbage(data: bytes) -> None:
    for decode in (
        lambda: decode_record(data),
        lambda: verify_manifest(data, KEY.public, "m", now=0),
        lambda: bencode.decode(data),
        lambda: canonical.decode(data, what="x", max_size=1000),
    ):
        with contextlib.suppress(HublessError):
            decode()
