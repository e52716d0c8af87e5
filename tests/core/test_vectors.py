"""Every vector in spec/vectors/ is checked against the core, and the files must not drift."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from hubless.core import bencode, bep44, errors
from hubless.core.history import check_extends
from hubless.core.index import INDEX_SALT, decode_index, verify_index
from hubless.core.keys import PublicKey, SigningKey
from hubless.core.manifest import encode_body, sign_manifest, verify_manifest
from hubless.core.record import decode_record, verify_record
from hubless.core.refs import parse_reference
from hubless.core.trust import KnownRecord, check_known

from tests import vectors

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
    verified = verify_record(item, key.public, case["salt"], now=vectors.NOW + 10**19)
    assert verified.record == record
    assert len(item.value) <= 400


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


def test_manifest_vectors_chain() -> None:
    first, second = load("manifests.json")
    key = PublicKey(bytes.fromhex(first["public_key"]))
    v1 = verify_manifest(bytes.fromhex(first["signed"]), key, "tiny-llama", now=vectors.NOW)
    v2 = verify_manifest(bytes.fromhex(second["signed"]), key, "tiny-llama", now=vectors.NOW)
    check_extends(v1, v2)
    assert v2.manifest.prev == v1.hash


@pytest.mark.parametrize("case", load("index.json"), ids=lambda c: c["description"])
def test_index_vectors(case: dict[str, Any]) -> None:
    key = SigningKey(bytes.fromhex(case["seed"]))
    verified = verify_index(raw_item(case), key.public, now=vectors.NOW)
    assert verified.index.names == tuple(case["names"])
    assert decode_index(bytes.fromhex(case["payload"])) == verified.index
    assert case["salt_text"].encode() == INDEX_SALT == bytes.fromhex(case["salt"])


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
    publisher = PublicKey(bytes.fromhex(case["expect_publisher"]))
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
