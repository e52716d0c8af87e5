"""Every vector in spec/vectors/ is checked against the core, and the files must not drift."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import warnings
from pathlib import Path
from typing import Any

import libtorrent as lt
import pytest
from hubless.core import bencode, bep44, errors
from hubless.core.history import check_extends
from hubless.core.index import INDEX_SALT, decode_index, verify_index
from hubless.core.keys import PublicKey, SigningKey
from hubless.core.layout import content_entries
from hubless.core.manifest import MAX_MANIFEST_SIZE, encode_body, sign_manifest, verify_manifest
from hubless.core.metainfo import check_blob_metainfo, check_matches_manifest, parse_metainfo
from hubless.core.paths import check_paths, fold
from hubless.core.record import decode_record, verify_record
from hubless.core.refs import parse_reference
from hubless.core.trust import KnownRecord, check_known
from hubless.core.webseeds import WebSeed
from hubless.net.torrents import create_blob_torrent, create_content_torrent, piece_length_for

from tests import vectors
from tests.vector_torrents import file_bytes

VECTORS = Path(__file__).resolve().parents[2] / "spec" / "vectors"


def load(name: str) -> list[dict[str, Any]]:
    return json.loads((VECTORS / name).read_text())  # type: ignore[no-any-return]


def raw_item(obj: dict[str, Any]) -> bep44.RawItem:
    return bep44.RawItem(
        bytes.fromhex(obj["public_key"]),
        bytes.fromhex(obj["salt"]),
        obj["dht_seq"],
        bytes.fromhex(obj["value_bencoded"]),
        bytes.fromhex(obj["signature"]),
    )


def test_vector_files_match_the_generator() -> None:
    for name, obj in vectors.build().items():
        assert (VECTORS / name).read_text() == vectors.render(obj), f"{name} drifted: regenerate"


@pytest.mark.parametrize("case", load("keys.json"), ids=lambda c: c["public_key_text"][:8])
def test_key_vectors(case: dict[str, Any]) -> None:
    key = SigningKey(bytes.fromhex(case["seed"]))
    assert key.public.raw.hex() == case["public_key"]
    assert key.public.text == case["public_key_text"]
    assert PublicKey.parse(case["public_key_text"]) == key.public
    assert PublicKey.parse(case["public_key"]) == key.public
    assert key.expanded_secret.hex() == case["libtorrent_expanded_secret"]


@pytest.mark.parametrize("case", load("records.json"), ids=lambda c: c["description"])
def test_record_vectors(case: dict[str, Any]) -> None:
    key = SigningKey(bytes.fromhex(case["seed"]))
    payload = bytes.fromhex(case["payload"])
    record = decode_record(payload)
    assert record.seq == case["record"]["s"]
    assert record.manifest_hash.hex() == case["record"]["h"]
    item = bep44.sign_item(key, case["salt"].encode(), case["dht_seq"], payload)
    assert item.value.hex() == case["value_bencoded"]
    assert bep44.signing_message(item.salt, item.seq, item.value).hex() == case["signing_message"]
    assert item.signature.hex() == case["signature"]
    verified = verify_record(item, key.public, case["salt"], now=case["now"])
    assert verified.record == record
    assert len(item.value) <= 400


def test_the_typical_record_names_the_first_manifest() -> None:
    record, first = load("records.json")[0]["record"], load("manifests.json")[0]
    assert (record["s"], record["v"], record["t"]) == (
        first["manifest"]["seq"],
        first["manifest"]["version"],
        first["manifest"]["created"],
    )
    assert (record["m"], record["h"]) == (first["manifest_infohash"], first["manifest_hash"])


@pytest.mark.parametrize("case", load("manifests.json"), ids=lambda c: c["description"])
def test_manifest_vectors(case: dict[str, Any]) -> None:
    key = SigningKey(bytes.fromhex(case["seed"]))
    signed = bytes.fromhex(case["signed"])
    verified = verify_manifest(
        signed,
        key.public,
        case["manifest"]["name"],
        now=vectors.NOW,
        expected_hash=bytes.fromhex(case["manifest_hash"]),
    )
    assert encode_body(verified.manifest).hex() == case["body"]
    assert sign_manifest(verified.manifest, key) == signed
    assert verified.manifest.seq == case["manifest"]["seq"]
    assert [f.path for f in verified.manifest.files] == [f[0] for f in case["manifest"]["files"]]


@pytest.mark.parametrize("case", load("manifests.json"), ids=lambda c: c["description"])
def test_manifest_torrent_vectors_are_what_the_product_builds(case: dict[str, Any]) -> None:
    """The §5.6 manifest torrent, built by hand in the generator, equals libtorrent's."""
    signed = bytes.fromhex(case["signed"])
    torrent, ih = create_blob_torrent(case["manifest_torrent_name"], signed)
    assert torrent == b"d4:info" + bytes.fromhex(case["manifest_torrent_info"]) + b"e"
    assert ih.hex() == case["manifest_infohash"]
    meta = parse_metainfo(torrent)
    check_blob_metainfo(meta, MAX_MANIFEST_SIZE, "manifest torrent")
    assert meta.name == case["manifest_torrent_name"] == case["manifest_hash"] + ".hubless-manifest"


def test_manifest_vectors_chain() -> None:
    first, second = load("manifests.json")
    key = PublicKey(bytes.fromhex(first["public_key"]))
    v1 = verify_manifest(bytes.fromhex(first["signed"]), key, "tiny-llama", now=vectors.NOW)
    v2 = verify_manifest(bytes.fromhex(second["signed"]), key, "tiny-llama", now=vectors.NOW)
    check_extends(v1, v2, bytes.fromhex(first["manifest_infohash"]))
    assert v2.manifest.prev == v1.hash
    assert v2.manifest.history[0].manifest_infohash.hex() == first["manifest_infohash"]


TORRENTS = load("torrents.json")


@pytest.mark.parametrize("case", TORRENTS, ids=lambda c: c["description"])
def test_content_torrent_vectors_are_what_the_product_builds(
    case: dict[str, Any], tmp_path: Path
) -> None:
    """The §5.6 content torrent, built by hand in the generator, equals libtorrent's."""
    files = {entry[0]: file_bytes(entry) for entry in case["files"]}
    for path, data in files.items():
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / path).write_bytes(data)
    made = create_content_torrent(tmp_path, list(reversed(files)), name=case["name"])
    assert made.torrent_bytes == b"d4:info" + bytes.fromhex(case["info"]) + b"e"
    assert made.infohash_v1.hex() == case["infohash"]
    assert made.piece_length == case["piece_length"]
    assert dict(made.file_sha256) == {p: hashlib.sha256(d).digest() for p, d in files.items()}
    meta = parse_metainfo(made.torrent_bytes)
    assert [
        {"length": f.size, "path": f.path.split("/"), **({"attr": "p"} if f.pad else {})}
        for f in meta.files
    ] == case["entries"]


@pytest.mark.parametrize("index", [0, 1])
def test_content_torrent_vectors_match_their_manifests(index: int) -> None:
    manifest_case = load("manifests.json")[index]
    verified = verify_manifest(
        bytes.fromhex(manifest_case["signed"]),
        PublicKey(bytes.fromhex(manifest_case["public_key"])),
        manifest_case["manifest"]["name"],
        now=vectors.NOW,
    )
    case = TORRENTS[index]
    check_matches_manifest(
        parse_metainfo(b"d4:info" + bytes.fromhex(case["info"]) + b"e"), verified.manifest
    )
    assert [
        [entry[0], len(file_bytes(entry)), hashlib.sha256(file_bytes(entry)).hexdigest()]
        for entry in case["files"]
    ] == manifest_case["manifest"]["files"]


@pytest.mark.parametrize("case", load("piece_lengths.json"), ids=lambda c: c["description"])
def test_piece_length_vectors(case: dict[str, Any]) -> None:
    """One rule (§5.6): the product's function, the text's formula and libtorrent's layout."""
    total = case["total_size"]
    assert piece_length_for(total) == case["piece_length"]
    rule = [p for p in (1 << n for n in range(18, 25)) if total <= 4096 * p]
    assert case["piece_length"] == (rule[0] if rule else 1 << 24)
    sizes = [size for size, count in case["file_sizes"] for _ in range(count)]
    storage = lt.file_storage()  # libtorrent counts the pieces of the layout we lay out
    for entry in content_entries(
        [(f"f{i:05d}", size) for i, size in enumerate(sizes)], case["piece_length"]
    ):
        flags = lt.file_storage.flag_pad_file if entry.pad else 0
        storage.add_file(f"m/{entry.path}", entry.size, flags)
    with warnings.catch_warnings():  # the file_storage constructor is deprecated in 2.1
        warnings.simplefilter("ignore", DeprecationWarning)
        made = lt.create_torrent(storage, case["piece_length"], lt.create_torrent.v1_only)
    assert made.num_pieces() == case["pieces"]


@pytest.mark.parametrize("case", load("web_seeds.json"), ids=lambda c: c["description"])
def test_web_seed_url_vectors(case: dict[str, Any]) -> None:
    seed = WebSeed(case["kind"], case["base"])
    assert seed.file_url(case["name"], case["path"]) == case["url"]


def test_the_second_manifest_names_web_seeds_in_format_2() -> None:
    first, second = load("manifests.json")
    assert (first["manifest"]["format"], second["manifest"]["format"]) == (1, 2)
    key = PublicKey(bytes.fromhex(second["public_key"]))
    verified = verify_manifest(bytes.fromhex(second["signed"]), key, "tiny-llama", now=vectors.NOW)
    assert [[w.kind, w.base] for w in verified.manifest.web_seeds] == second["manifest"][
        "web_seeds"
    ]


@pytest.mark.parametrize("case", load("paths.json"), ids=lambda c: c["description"])
def test_path_vectors(case: dict[str, Any]) -> None:
    check_paths(case["paths"])
    assert [fold(p) for p in case["paths"]] == case["folds"]


@pytest.mark.parametrize("case", load("references.json"), ids=lambda c: c["description"])
def test_reference_vectors(case: dict[str, Any]) -> None:
    ref = parse_reference(case["text"])
    assert (ref.publisher.raw.hex(), ref.name, ref.version, str(ref)) == (
        case["public_key"],
        case["name"],
        case["version"],
        case["canonical"],
    )


@pytest.mark.parametrize("case", load("index.json"), ids=lambda c: c["description"])
def test_index_vectors(case: dict[str, Any]) -> None:
    key = SigningKey(bytes.fromhex(case["seed"]))
    verified = verify_index(raw_item(case), key.public, now=vectors.NOW)
    assert verified.index.names == tuple(case["names"])
    assert decode_index(bytes.fromhex(case["payload"])) == verified.index
    assert case["salt_text"].encode() == INDEX_SALT == bytes.fromhex(case["salt"])
    assert len(bytes.fromhex(case["value_bencoded"])) <= 1000


INVALID = load("invalid.json")


def test_there_are_enough_invalid_vectors() -> None:
    assert len(INVALID) >= 15
    assert len({case["error"] for case in INVALID}) >= 10


@pytest.mark.parametrize("case", INVALID, ids=lambda c: f"{c['kind']}: {c['description']}")
def test_invalid_vectors_raise_their_error(case: dict[str, Any]) -> None:
    error = getattr(errors, case["error"])
    assert issubclass(error, errors.HublessError)
    with pytest.raises(error) as caught:
        check_invalid(case)
    assert type(caught.value) is error, f"raised {type(caught.value).__name__}: {caught.value}"


def check_invalid(case: dict[str, Any]) -> None:
    if case["kind"] == "reference":
        parse_reference(case["text"])
        return
    if case["kind"] == "torrent":
        meta = parse_metainfo(bytes.fromhex(case["torrent"]))
        if case["manifest_torrent"]:
            check_blob_metainfo(meta, MAX_MANIFEST_SIZE, "manifest torrent")
        return
    publisher = PublicKey(bytes.fromhex(case["expect_publisher"]))
    if case["kind"] == "index":
        verify_index(raw_item(case["item"]), publisher, now=case["now"])
        return
    if case["kind"] == "record":
        known = case.get("known")
        verified = verify_record(
            raw_item(case["item"]), publisher, case["expect_name"], now=case["now"]
        )
        if known:
            r = verified.record
            check_known(
                r.seq,
                r.manifest_hash,
                KnownRecord(known["seq"], bytes.fromhex(known["manifest_hash"])),
                case["expect_name"],
            )
        return
    expected = case.get("expected_hash")
    new = verify_manifest(
        bytes.fromhex(case["signed"]),
        publisher,
        case["expect_name"],
        now=case["now"],
        expected_hash=bytes.fromhex(expected) if expected else None,
    )
    if "known_signed" in case:
        known_manifest = verify_manifest(
            bytes.fromhex(case["known_signed"]), publisher, case["expect_name"], now=case["now"]
        )
        check_extends(known_manifest, new)


def test_record_value_is_a_bencoded_byte_string() -> None:
    case = load("records.json")[0]
    assert bencode.decode(bytes.fromhex(case["value_bencoded"])) == bytes.fromhex(case["payload"])


def test_vectors_verify_with_plain_pynacl() -> None:
    """The standalone checker quoted in spec/PROTOCOL.md §12 passes on the vectors."""
    script = VECTORS / "check_with_pynacl.py"
    if not script.exists():
        pytest.fail("spec/vectors/check_with_pynacl.py is missing")
    done = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_spec_quotes_the_pynacl_checker_verbatim() -> None:
    spec = (VECTORS.parent / "PROTOCOL.md").read_text()
    marker = "<!-- pynacl-check -->"
    assert marker in spec
    block = spec.split(marker, 1)[1].split("```python\n", 1)[1].split("```", 1)[0]
    assert block.strip() == (VECTORS / "check_with_pynacl.py").read_text().strip()
