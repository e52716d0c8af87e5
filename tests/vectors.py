"""Generate spec/vectors/*.json from fixed seeds; the test suite fails if they drift.

Run `python -m tests.vectors --write` after a deliberate format change.
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path
from typing import Any

from hubless.core import bencode, bep44, canonical
from hubless.core.history import next_history
from hubless.core.index import INDEX_SALT, IndexRecord, encode_index
from hubless.core.keys import SigningKey
from hubless.core.manifest import (
    FileEntry,
    HistoryEntry,
    Manifest,
    encode_body,
    sign_manifest,
    signing_message,
    verify_manifest,
)
from hubless.core.paths import fold
from hubless.core.record import MAX_CLOCK_SKEW, Record, encode_record
from hubless.core.refs import parse_reference
from hubless.core.webseeds import WebSeed

from tests.vector_torrents import (
    content_torrent_case,
    content_torrent_info,
    infohash,
    invalid_torrents,
    manifest_torrent_info,
    mixed_files,
    piece_lengths,
)

VECTORS = Path(__file__).resolve().parent.parent / "spec" / "vectors"
NOW = 1_767_225_600  # 2026-01-01T00:00:00Z: the `now` of every vector that names no other
MAX_INT = 2**63 - 1
NAME = "tiny-llama"

# The files of the two revisions in manifests.json; torrents.json holds their content torrents.
# The paths show "path order" (§5.6): '-' < '.' < '/' in code point order.
V1_FILES = {
    "config.json": b'{"model_type": "tiny"}\n',
    "empty.txt": b"",
    "model.safetensors": hashlib.sha256(b"weights v1").digest() * 4,
    "sub-x/y.txt": b"y\n",
    "sub.txt": b"sub\n",
    "sub/z.txt": b"zz\n",
}
V2_FILES = {**V1_FILES, "model.safetensors": hashlib.sha256(b"weights v2").digest() * 4}

# The second manifest's web seeds (§5.8): one of each kind, sorted by kind then URL.
WEB_SEEDS = (
    WebSeed("bep19", "https://mirror.example/models/"),
    WebSeed("path", "https://huggingface.co/example/tiny-llama/resolve/main/"),
)

SEEDS = [bytes(range(32)), hashlib.sha256(b"hubless vector key 1").digest(), b"\x00" * 32]
ALICE = SigningKey(SEEDS[1])
MALLORY = SigningKey(hashlib.sha256(b"hubless vector key mallory").digest())


def sha(label: str) -> bytes:
    return hashlib.sha256(label.encode()).digest()


def keys() -> list[dict[str, Any]]:
    return [
        {
            "seed": seed.hex(),
            "public_key": SigningKey(seed).public.raw.hex(),
            "public_key_text": SigningKey(seed).public.text,
            "libtorrent_expanded_secret": SigningKey(seed).expanded_secret.hex(),
        }
        for seed in SEEDS
    ]


def _record_case(
    description: str, key: SigningKey, name: str, dht_seq: int, r: Record, now: int
) -> dict[str, Any]:
    payload = encode_record(r)
    value = bencode.encode(payload)
    message = bep44.signing_message(name.encode(), dht_seq, value)
    return {
        "description": description,
        "seed": key.seed.hex(),
        "public_key": key.public.raw.hex(),
        "salt": name,
        "dht_seq": dht_seq,
        "now": now,
        "record": {
            "f": 1,
            "s": r.seq,
            "v": r.version,
            "m": r.manifest_infohash.hex(),
            "h": r.manifest_hash.hex(),
            "t": r.published_at,
        },
        "payload": payload.hex(),
        "value_bencoded": value.hex(),
        "signing_message": message.hex(),
        "signature": key.sign(message).hex(),
    }


def records(first: dict[str, Any]) -> list[dict[str, Any]]:
    """The record that names the first manifest of manifests.json, and the largest record."""
    typical = Record(
        first["manifest"]["seq"],
        first["manifest"]["version"],
        bytes.fromhex(first["manifest_infohash"]),
        bytes.fromhex(first["manifest_hash"]),
        first["manifest"]["created"],
    )
    largest = Record(MAX_INT, "9" * 64, b"\xff" * 32, b"\xff" * 32, MAX_INT)
    return [
        _record_case(
            "typical record: names the first manifest of manifests.json",
            ALICE,
            NAME,
            1,
            typical,
            NOW,
        ),
        _record_case(
            "largest possible record, longest name; `now` is the earliest at which its t "
            "(2^63-1) is not in the future",
            ALICE,
            "m" * 64,
            7,
            largest,
            MAX_INT - MAX_CLOCK_SKEW,
        ),
    ]


def _files(contents: dict[str, bytes]) -> tuple[FileEntry, ...]:
    return tuple(
        FileEntry(path, len(data), hashlib.sha256(data).digest())
        for path, data in sorted(contents.items())
    )


def manifests() -> tuple[list[dict[str, Any]], list[bytes]]:
    """Two revisions chained by history and `prev`; the second's history row names the
    first's real manifest torrent (§5.6), and each `content` is its real content torrent."""
    first = Manifest(
        ALICE.public,
        NAME,
        "v1",
        1,
        NOW - 3600,
        infohash(content_torrent_info(NAME, V1_FILES)),
        _files(V1_FILES),
        description="a generated test model",
        license="apache-2.0",
        tags=("test",),
    )
    first_signed = sign_manifest(first, ALICE)
    first_verified = verify_manifest(first_signed, ALICE.public, NAME, now=NOW)
    second = Manifest(
        ALICE.public,
        NAME,
        "v2",
        2,
        NOW - 60,
        infohash(content_torrent_info(NAME, V2_FILES)),
        _files(V2_FILES),
        history=next_history(first_verified, infohash(manifest_torrent_info(first_signed))),
        prev=first_verified.hash,
        web_seeds=WEB_SEEDS,
    )
    cases = []
    signed_all = []
    for description, m in (
        ("first version", first),
        ("second version chaining to the first; names web seeds, so it is format 2", second),
    ):
        body = encode_body(m)
        signed = sign_manifest(m, ALICE)
        signed_all.append(signed)
        info = manifest_torrent_info(signed)
        cases.append(
            {
                "description": description,
                "seed": ALICE.seed.hex(),
                "public_key": ALICE.public.raw.hex(),
                "manifest": _manifest_json(m),
                "body": body.hex(),
                "signing_message_prefix": signing_message(b"").hex(),
                "signature": canonical.decode(signed, what="m", max_size=1 << 20)[
                    "signature"
                ].hex(),
                "signed": signed.hex(),
                "manifest_hash": hashlib.sha256(signed).hexdigest(),
                "manifest_torrent_name": hashlib.sha256(signed).hexdigest() + ".hubless-manifest",
                "manifest_torrent_info": info.hex(),
                "manifest_infohash": infohash(info).hex(),
            }
        )
    return cases, signed_all


def _manifest_json(m: Manifest) -> dict[str, Any]:
    out: dict[str, Any] = {
        "format": m.format,
        "publisher": m.publisher.raw.hex(),
        "name": m.name,
        "version": m.version,
        "seq": m.seq,
        "created": m.created,
        "content": m.content_infohash.hex(),
        "files": [[f.path, f.size, f.sha256.hex()] for f in m.files],
        "history": [_history_json(h) for h in m.history],
    }
    for key, value in (
        ("prev", m.prev.hex() if m.prev else None),
        ("yanked", m.yanked),
        ("description", m.description),
        ("license", m.license),
        ("tags", list(m.tags) or None),
        ("web_seeds", [[w.kind, w.base] for w in m.web_seeds] or None),
    ):
        if value is not None:
            out[key] = value
    return out


def _history_json(h: HistoryEntry) -> list[Any]:
    return [h.seq, h.version, h.manifest_infohash.hex(), h.manifest_hash.hex(), h.created, h.yanked]


def _raw(item: bep44.RawItem) -> dict[str, Any]:
    return {
        "public_key": item.public_key.hex(),
        "salt": item.salt.hex(),
        "dht_seq": item.seq,
        "value_bencoded": item.value.hex(),
        "signature": item.signature.hex(),
    }


def _forged_manifest(body_fields: dict[str, Any], key: SigningKey) -> bytes:
    body = canonical.encode(body_fields)
    return canonical.encode({"manifest": body, "signature": key.sign(signing_message(body))})


# Paths added to the first manifest's files, each set refused by §6 (HostilePathError).
HOSTILE_PATH_SETS: list[tuple[str, list[str]]] = [
    ("path inside the reserved folder .hubless/", [".hubless/manifest"]),
    ("path inside .HUBLESS/ (the reserved folder, folded)", [".HUBLESS/weights.bin"]),
    ("path inside .hubleXs/, X = U+017F long s, which folds to s", [".huble\u017fs/x"]),
    ("a file named .hubless", [".hubless"]),
    (
        "U+A7DC: unassigned in 14.0.0, capital of U+019B in later versions",
        ["\u019b.txt", "\ua7dc.txt"],
    ),
    ("U+0378, unassigned", ["a\u0378.txt"]),
    ("U+FDD0, a noncharacter (category Cn)", ["a\ufdd0.txt"]),
    ("U+31350, assigned only from Unicode 15.0", ["\U00031350.txt"]),
    ("full case folding: U+00DF sharp s folds to ss", ["STRASSE.txt", "stra\u00dfe.txt"]),
    ("full case folding: the ligature U+FB01 folds to fi", ["file.txt", "\ufb01le.txt"]),
    ("Kelvin sign U+212A folds to k", ["k.txt", "\u212a.txt"]),
    ("final sigma folds to sigma", ["\u03c3.txt", "\u03c2.txt"]),
    ("capital I with dot above folds to i + U+0307", ["i\u0307.txt", "\u0130.txt"]),
    ("a Unicode 14.0 case pair: U+2C2F folds to U+2C5F", ["\u2c2f.txt", "\u2c5f.txt"]),
    ("Angstrom sign U+212B as a file, a + ring above as its folder", ["\u212b", "a\u030a/x"]),
]

# Web seed lists a manifest must not carry (§5.8), each refused with MalformedError.
INVALID_WEB_SEEDS: list[tuple[str, list[Any]]] = [
    ("URL with a user name", [["bep19", "https://user@mirror.example/m/"]]),
    ("URL with a query", [["path", "https://mirror.example/m/?token=1/"]]),
    ("URL with a fragment", [["path", "https://mirror.example/m/#x/"]]),
    ("URL without the final '/'", [["bep19", "https://mirror.example/models"]]),
    ("ftp URL", [["bep19", "ftp://mirror.example/models/"]]),
    ("URL with an upper-case scheme", [["bep19", "HTTPS://mirror.example/models/"]]),
    ("URL with a space", [["bep19", "https://mirror.example/my models/"]]),
    ("URL with a '..' segment", [["bep19", "https://mirror.example/a/../models/"]]),
    ("URL with port 0", [["bep19", "http://127.0.0.1:0/models/"]]),
    ("unknown kind", [["s3", "https://mirror.example/models/"]]),
    ("entry of three elements", [["bep19", "https://mirror.example/models/", 1]]),
    (
        "list not sorted",
        [["path", "https://b.example/"], ["bep19", "https://a.example/"]],
    ),
    ("the same seed twice", [["bep19", "https://a.example/"], ["bep19", "https://a.example/"]]),
    ("list of 17 seeds", [["bep19", f"https://m{i:02d}.example/"] for i in range(17)]),
]

# Characters some runtimes' trim() removes that a reference keeps (§3: ASCII whitespace only).
NOT_TRIMMED = ["\x0b", "\x1c", "\x85", "\xa0", "\ufeff"]


def largest_inline_index() -> IndexRecord:
    """An inline index whose bencoded value is exactly 1000 bytes (§4.5: the whole value)."""
    names = [f"model-{i:03d}" for i in range(100)]
    while len(wrap_length(names)) < 996:
        names.append(f"model-{len(names):03d}")
    while len(wrap_length(names)) > 996:
        names.pop()
    names[-1] += "z" * (996 - len(wrap_length(names)))
    index = IndexRecord(3, NOW - 5, names=tuple(names))
    assert len(bencode.encode(encode_index(index))) == 1000
    return index


def wrap_length(names: list[str]) -> bytes:
    return canonical.encode({"f": 1, "n": names, "s": 3, "t": NOW - 5})


def invalid_indexes() -> list[dict[str, Any]]:
    """One name more than the largest inline index: 1001 bytes, refused (§4.2 step 3)."""
    index = largest_inline_index()
    assert index.names is not None
    payload = canonical.encode(
        {"f": 1, "n": [*index.names[:-1], index.names[-1] + "z"], "s": 3, "t": NOW - 5}
    )
    value = bencode.encode(payload)
    item = bep44.RawItem(
        ALICE.public.raw,
        INDEX_SALT,
        3,
        value,
        ALICE.sign(bep44.signing_message(INDEX_SALT, 3, value)),
    )
    return [
        {
            "kind": "index",
            "description": "inline index whose bencoded value is 1001 bytes",
            "error": "OversizedError",
            "expect_publisher": ALICE.public.raw.hex(),
            "now": NOW,
            "item": _raw(item),
        }
    ]


# Path sets §6 accepts, with each path's fold: what a second implementation must reproduce.
SAFE_PATH_SETS: list[tuple[str, list[str]]] = [
    ("ASCII, folded to lower case", ["Config.JSON", "tokenizer/Vocab.txt"]),
    ("dotless i is not i (no Turkic folding)", ["\u0131.txt", "i.txt"]),
    ("superscript two is not 2 (no compatibility folding)", ["x\u00b2.txt", "x2.txt"]),
    ("composed U+00E9 folds to e + U+0301", ["caf\u00e9.txt"]),
    ("a character new in Unicode 14.0 (U+0870)", ["\u0870.txt"]),
    ("private use is assigned", ["\ue000.bin"]),
    (
        ".hubless below the top folder, and names that only begin like it",
        ["a/.hubless/manifest", ".hubless-old/x", ".hublessx"],
    ),
    ("U+01C4 folds to U+01C6; U+2126 ohm sign to U+03C9 omega", ["\u01c4.txt", "\u2126.txt"]),
]


def paths() -> list[dict[str, Any]]:
    return [
        {"description": description, "paths": sorted(ps), "folds": [fold(p) for p in sorted(ps)]}
        for description, ps in SAFE_PATH_SETS
    ]


def references() -> list[dict[str, Any]]:
    """References §3 accepts, with what they parse to."""
    text, hexkey = ALICE.public.text, ALICE.public.raw.hex()
    cases = []
    for description, ref in (
        ("plain", f"{text}/{NAME}"),
        ("URI form with a version and a trailing slash", f"hubless://{text}/{NAME}@v1/"),
        ("surrounded by the ASCII whitespace that is stripped", f" \t\r\n\f{text}/{NAME} \n"),
        ("scheme and key in upper case", f"HUBLESS://{text.upper()}/{NAME}@2.0.1+cpu"),
        ("hex key", f"{hexkey.upper()}/Llama-3.1-8B"),
        ("space between key and '/': the key text is stripped as in §2", f"{text} \t/{NAME}"),
    ):
        parsed = parse_reference(ref)
        cases.append(
            {
                "description": description,
                "text": ref,
                "public_key": parsed.publisher.raw.hex(),
                "name": parsed.name,
                "version": parsed.version,
                "canonical": str(parsed),
            }
        )
    return cases


def invalid(signed_manifests: list[bytes]) -> list[dict[str, Any]]:
    """Inputs that must be refused, each with the error class a verifier raises."""
    good = Record(3, "v3", sha("mt")[:20], sha("mb"), NOW - 10)
    good_payload = encode_record(good)
    item = bep44.sign_item(ALICE, b"tiny-llama", 3, good_payload)
    cases: list[dict[str, Any]] = []

    def record_case(
        description: str, error: str, raw: bep44.RawItem, now: int = NOW, **extra: Any
    ) -> None:
        cases.append(
            {
                "kind": "record",
                "description": description,
                "error": error,
                "expect_publisher": ALICE.public.raw.hex(),
                "expect_name": "tiny-llama",
                "now": now,
                "item": _raw(raw),
                **extra,
            }
        )

    flipped = bytearray(item.signature)
    flipped[0] ^= 1
    record_case(
        "signature with one bit flipped",
        "BadSignatureError",
        bep44.RawItem(item.public_key, item.salt, item.seq, item.value, bytes(flipped)),
    )
    record_case(
        "valid record signed by another key, served for the publisher",
        "WrongPublisherError",
        bep44.sign_item(MALLORY, b"tiny-llama", 3, good_payload),
    )
    forged = bep44.sign_item(MALLORY, b"tiny-llama", 3, good_payload)
    record_case(
        "another key's signature presented under the publisher's key",
        "BadSignatureError",
        bep44.RawItem(ALICE.public.raw, forged.salt, forged.seq, forged.value, forged.signature),
    )
    record_case(
        "record for another model name",
        "WrongNameError",
        bep44.sign_item(ALICE, b"other-model", 3, good_payload),
    )
    record_case(
        "seq older than one already seen",
        "RollbackError",
        item,
        known={"seq": 4, "manifest_hash": sha("newer").hex()},
    )
    record_case(
        "same seq as seen before, different manifest",
        "EquivocationError",
        item,
        known={"seq": 3, "manifest_hash": sha("other").hex()},
    )
    future = encode_record(Record(3, "v3", sha("mt")[:20], sha("mb"), NOW + 2 * 86400))
    record_case(
        "record dated two days ahead",
        "FutureTimestampError",
        bep44.sign_item(ALICE, b"tiny-llama", 3, future),
    )
    v2 = canonical.encode(
        {"f": 2, "s": 3, "v": "v3", "m": sha("mt")[:20], "h": sha("mb"), "t": NOW}
    )
    record_case(
        "record format 2", "UnsupportedFormatError", bep44.sign_item(ALICE, b"tiny-llama", 3, v2)
    )
    unsorted = b"\x86" + b"".join(
        canonical.encode(k) + canonical.encode(v)
        for k, v in (
            ("s", 3),
            ("f", 1),
            ("v", "v3"),
            ("m", sha("mt")[:20]),
            ("h", sha("mb")),
            ("t", NOW),
        )
    )
    record_case(
        "record map with keys out of canonical order",
        "MalformedError",
        bep44.sign_item(ALICE, b"tiny-llama", 3, unsorted),
    )
    short_ih = canonical.encode(
        {"f": 1, "s": 3, "v": "v3", "m": b"\x01" * 19, "h": sha("mb"), "t": NOW}
    )
    record_case(
        "manifest infohash of 19 bytes",
        "MalformedError",
        bep44.sign_item(ALICE, b"tiny-llama", 3, short_ih),
    )
    extra_field = canonical.encode(
        {"f": 1, "s": 3, "v": "v3", "m": sha("mt")[:20], "h": sha("mb"), "t": NOW, "z": 1}
    )
    record_case(
        "record with an unknown field",
        "MalformedError",
        bep44.sign_item(ALICE, b"tiny-llama", 3, extra_field),
    )
    big_value = b"%d:" % 998 + b"\x00" * 998
    record_case(
        "bencoded value of 1002 bytes",
        "OversizedError",
        bep44.RawItem(ALICE.public.raw, b"tiny-llama", 3, big_value, b"\x00" * 64),
    )
    largest = encode_record(Record(MAX_INT, "9" * 64, b"\xff" * 32, b"\xff" * 32, MAX_INT))
    record_case(
        "largest record one second before its t (2^63-1) is within 24 hours of now",
        "FutureTimestampError",
        bep44.sign_item(ALICE, b"tiny-llama", 7, largest),
        now=MAX_INT - MAX_CLOCK_SKEW - 1,
    )
    not_bytes = b"i42e"
    record_case(
        "value that is a bencoded integer, not a byte string",
        "MalformedError",
        bep44.RawItem(
            ALICE.public.raw,
            b"tiny-llama",
            3,
            not_bytes,
            ALICE.sign(bep44.signing_message(b"tiny-llama", 3, not_bytes)),
        ),
    )

    def manifest_case(description: str, error: str, data: bytes, **extra: Any) -> None:
        cases.append(
            {
                "kind": "manifest",
                "description": description,
                "error": error,
                "expect_publisher": ALICE.public.raw.hex(),
                "expect_name": "tiny-llama",
                "now": NOW,
                "signed": data.hex(),
                **extra,
            }
        )

    body = canonical.decode(
        canonical.decode(signed_manifests[0], what="m", max_size=1 << 20)["manifest"],
        what="b",
        max_size=1 << 20,
    )

    def with_(**changes: Any) -> dict[str, Any]:
        out = dict(body)
        out.update(changes)
        return out

    env = canonical.decode(signed_manifests[0], what="m", max_size=1 << 20)
    bad_sig = bytearray(env["signature"])
    bad_sig[5] ^= 0x80
    manifest_case(
        "manifest signature with one bit flipped",
        "BadSignatureError",
        canonical.encode({"manifest": env["manifest"], "signature": bytes(bad_sig)}),
    )
    manifest_case(
        "manifest signed by another key", "BadSignatureError", _forged_manifest(body, MALLORY)
    )
    manifest_case(
        "manifest naming another publisher, signed by that publisher",
        "BadSignatureError",
        _forged_manifest(with_(publisher=MALLORY.public.raw), MALLORY),
    )
    manifest_case(
        "manifest for another model name",
        "WrongNameError",
        _forged_manifest(with_(name="other-model"), ALICE),
    )
    manifest_case(
        "manifest bytes that do not match the record's hash",
        "IntegrityError",
        signed_manifests[0],
        expected_hash=sha("something else").hex(),
    )
    for description, path in (
        ("file path with '..'", "../../.bashrc"),
        ("absolute file path", "/etc/passwd"),
        ("file path with a backslash", "weights\\model.bin"),
        ("file path with a NUL byte", "model\x00.bin"),
        ("file path with a control character", "model\x1b[2J.bin"),
        ("file path with an empty segment", "a//b.bin"),
    ):
        manifest_case(
            description,
            "HostilePathError",
            _forged_manifest(with_(files=sorted([*body["files"], [path, 1, sha("x")]])), ALICE),
        )
    manifest_case(
        "two paths that differ only in case",
        "HostilePathError",
        _forged_manifest(
            with_(files=sorted([*body["files"], ["Config.json", 1, sha("x")]])), ALICE
        ),
    )
    manifest_case(
        "two paths equal after Unicode NFC normalisation",
        "HostilePathError",
        _forged_manifest(
            with_(
                files=sorted(
                    [
                        *body["files"],
                        ["caf\u00e9.txt", 1, sha("x")],
                        ["cafe\u0301.txt", 1, sha("y")],
                    ]
                )
            ),
            ALICE,
        ),
    )
    manifest_case(
        "the same path twice",
        "HostilePathError",
        _forged_manifest(with_(files=sorted([*body["files"], body["files"][0]])), ALICE),
    )
    manifest_case(
        "a path that is both a file and a folder",
        "HostilePathError",
        _forged_manifest(
            with_(files=sorted([*body["files"], ["config.json/x", 1, sha("x")]])), ALICE
        ),
    )
    manifest_case(
        "manifest format 3", "UnsupportedFormatError", _forged_manifest(with_(format=3), ALICE)
    )
    seed_pair = [["bep19", "https://mirror.example/models/"]]
    for description, fields in (
        ("format 2 that names no web seeds (must be format 1)", with_(format=2)),
        ("format 1 with web seeds (a field format 1 does not have)", with_(web_seeds=seed_pair)),
        ("web seeds present but empty", with_(format=2, web_seeds=[])),
        *(
            (f"web seed {description}", with_(format=2, web_seeds=seeds))
            for description, seeds in INVALID_WEB_SEEDS
        ),
    ):
        manifest_case(f"manifest {description}", "MalformedError", _forged_manifest(fields, ALICE))
    manifest_case(
        "negative file size",
        "MalformedError",
        _forged_manifest(
            with_(files=[[body["files"][0][0], -1, body["files"][0][2]], *body["files"][1:]]), ALICE
        ),
    )
    manifest_case(
        "history whose last hash is not 'prev'",
        "MalformedError",
        _forged_manifest(
            with_(
                seq=2,
                history=[[1, "v0", sha("ih")[:20], sha("h"), NOW - 7200, None]],
                prev=sha("other"),
            ),
            ALICE,
        ),
    )
    manifest_case(
        "manifest created two days ahead",
        "FutureTimestampError",
        _forged_manifest(with_(created=NOW + 2 * 86400), ALICE),
    )
    manifest_case(
        "trailing byte after the envelope", "MalformedError", signed_manifests[0] + b"\x00"
    )
    manifest_case(
        "600 nested arrays instead of an envelope", "MalformedError", b"\x91" * 600 + b"\x00"
    )
    manifest_case(
        "optional field present as nil",
        "MalformedError",
        _forged_manifest(with_(license=None), ALICE),
    )
    manifest_case(
        "file path with a right-to-left override",
        "HostilePathError",
        _forged_manifest(
            with_(files=sorted([*body["files"], ["model\u202egnp.exe", 1, sha("x")]])), ALICE
        ),
    )

    first = signed_manifests[0]
    rewritten = dict(with_(seq=3, version="v3"))
    rewritten["history"] = [
        [
            1,
            "v1-renamed",
            infohash(manifest_torrent_info(first)),
            hashlib.sha256(first).digest(),
            body["created"],
            None,
        ]
    ]
    rewritten["prev"] = hashlib.sha256(first).digest()
    manifest_case(
        "later manifest that renames a version the client already holds",
        "HistoryRewriteError",
        _forged_manifest(rewritten, ALICE),
        known_signed=first.hex(),
    )
    dropped = dict(
        with_(
            seq=3,
            version="v3",
            history=[[2, "v2", sha("ih2")[:20], sha("h2"), NOW - 100, None]],
            prev=sha("h2"),
        )
    )
    manifest_case(
        "later manifest whose history drops the version the client holds",
        "HistoryRewriteError",
        _forged_manifest(dropped, ALICE),
        known_signed=first.hex(),
    )

    for description, paths in HOSTILE_PATH_SETS:
        manifest_case(
            description,
            "HostilePathError",
            _forged_manifest(
                with_(files=sorted([*body["files"], *([p, 1, sha(p)] for p in paths)])), ALICE
            ),
        )
    cases += invalid_torrents() + invalid_indexes()
    for text, error in (
        ("not-a-key/model", "InvalidReferenceError"),
        (f"{ALICE.public.text}/-bad-name", "InvalidReferenceError"),
        (f"{ALICE.public.text}/{'a' * 65}", "InvalidReferenceError"),
        (f"{ALICE.public.text}/model@", "InvalidReferenceError"),
        (f"{ALICE.public.text}/mo..del", "InvalidReferenceError"),
        *((f"{space}{ALICE.public.text}/model", "InvalidReferenceError") for space in NOT_TRIMMED),
        (f"{ALICE.public.text}/model\u3000", "InvalidReferenceError"),
    ):
        cases.append(
            {
                "kind": "reference",
                "description": f"reference {text[:70]!r}",
                "error": error,
                "text": text,
            }
        )
    return cases


def index_vectors() -> list[dict[str, Any]]:
    cases = []
    for description, index in (
        ("inline publisher index", IndexRecord(2, NOW - 5, names=("tiny-llama", "tiny-mistral"))),
        (
            "largest inline index: its bencoded value is exactly 1000 bytes (§4.5)",
            largest_inline_index(),
        ),
    ):
        assert index.names is not None
        payload = encode_index(index)
        item = bep44.sign_item(ALICE, INDEX_SALT, index.seq, payload)
        cases.append(
            {
                "description": description,
                "seed": ALICE.seed.hex(),
                "salt_text": INDEX_SALT.decode(),
                "names": list(index.names),
                "index_seq": index.seq,
                "published_at": index.published_at,
                "payload": payload.hex(),
                **_raw(item),
            }
        )
    return cases


def web_seed_urls() -> list[dict[str, Any]]:
    """How a file's URL is formed from a web seed (§5.8), percent-encoding included."""
    cases = []
    for seed in (*WEB_SEEDS, WebSeed("bep19", "http://127.0.0.1:8080/")):
        for path in ("config.json", "sub/z.txt", "tokenizer/vocab 2%#\u00fc~.txt"):
            cases.append(
                {
                    "description": f"{seed.kind} seed, {path!r}",
                    "kind": seed.kind,
                    "base": seed.base,
                    "name": NAME,
                    "path": path,
                    "url": seed.file_url(NAME, path),
                }
            )
    return cases


def build() -> dict[str, Any]:
    manifest_cases, signed = manifests()
    return {
        "keys.json": keys(),
        "records.json": records(manifest_cases[0]),
        "manifests.json": manifest_cases,
        "torrents.json": [
            content_torrent_case(
                "content torrent of the first manifest of manifests.json", NAME, V1_FILES
            ),
            content_torrent_case(
                "content torrent of the second manifest: only model.safetensors changed",
                NAME,
                V2_FILES,
            ),
            content_torrent_case(
                "a torrent of one file: no pad entry after it",
                "one-file",
                {"weights.bin": b"\x00\x01"},
            ),
            content_torrent_case(
                "small files packed; files of a piece or more start and end on a boundary",
                "mixed",
                mixed_files(),
            ),
        ],
        "piece_lengths.json": piece_lengths(),
        "web_seeds.json": web_seed_urls(),
        "index.json": index_vectors(),
        "paths.json": paths(),
        "references.json": references(),
        "invalid.json": invalid(signed),
    }


def render(obj: Any) -> str:
    return json.dumps(obj, indent=1, ensure_ascii=True) + "\n"


def main() -> int:
    files = build()
    if "--write" in sys.argv:
        VECTORS.mkdir(parents=True, exist_ok=True)
        for name, obj in files.items():
            (VECTORS / name).write_text(render(obj))
        print(f"wrote {len(files)} files to {VECTORS}")
        return 0
    stale = [
        name
        for name, obj in files.items()
        if not (VECTORS / name).exists() or (VECTORS / name).read_text() != render(obj)
    ]
    print("stale: " + ", ".join(stale) if stale else "vectors up to date")
    return 1 if stale else 0


if __name__ == "__main__":
    raise SystemExit(main())
