"""The reference grammar and name rules (spec/PROTOCOL.md §3)."""

from __future__ import annotations

import pytest
from hubless.core.errors import InvalidReferenceError
from hubless.core.keys import PublicKey, SigningKey
from hubless.core.refs import Reference, check_name, check_version, parse_reference

KEY = SigningKey(bytes(range(32))).public


@pytest.mark.parametrize(
    "name", ["a", "tiny-llama", "Llama-3.1-8B", "x_y.z", "0", "m" * 64, "a-b_c.d"]
)
def test_good_names(name: str) -> None:
    assert check_name(name) == name


BAD_NAMES = {
    "empty": "",
    "too long": "m" * 65,
    "leading dash": "-a",
    "trailing dot": "a.",
    "double dot": "a..b",
    "slash": "a/b",
    "at": "a@b",
    "colon (reserved salts)": "hubless:index",
    "space": "a b",
    "unicode": "modèle",
    "not text": 5,
    "windows device": "nul",
    "windows device with extension": "aux.v1",
}


@pytest.mark.parametrize("name", BAD_NAMES.values(), ids=BAD_NAMES.keys())
def test_bad_names(name: str) -> None:
    with pytest.raises(InvalidReferenceError):
        check_name(name)


@pytest.mark.parametrize("label", ["v1", "1.0.0", "1.0.0-rc.1", "2026.11.22", "v1+cu121"])
def test_good_versions(label: str) -> None:
    assert check_version(label) == label


@pytest.mark.parametrize("label", ["", "v" * 65, "-v1", "v1.", "v..1", "v 1", "v/1", "v@1"])
def test_bad_versions(label: str) -> None:
    with pytest.raises(InvalidReferenceError):
        check_version(label)


def test_reference_forms_round_trip() -> None:
    for text in (f"{KEY.text}/m", f"{KEY.text}/m@v1"):
        ref = parse_reference(text)
        assert str(ref) == text
        assert parse_reference(ref.uri) == ref
    assert parse_reference(f"{KEY.raw.hex()}/m@v2") == Reference(KEY, "m", "v2")
    assert parse_reference(f"  HUBLESS://{KEY.text.upper()}/m/ ") == Reference(KEY, "m")


BAD_REFERENCES = {
    "no slash": KEY.text,
    "no name": f"{KEY.text}/",
    "empty version": f"{KEY.text}/m@",
    "short key": "abc/m",
    "key not base32": "1" * 52 + "/m",
    "non-canonical base32 tail": KEY.text[:-1] + "b/m",
    "bad name": f"{KEY.text}/../etc",
    "bad version": f"{KEY.text}/m@-x",
}


@pytest.mark.parametrize("text", BAD_REFERENCES.values(), ids=BAD_REFERENCES.keys())
def test_bad_references(text: str) -> None:
    with pytest.raises(InvalidReferenceError):
        parse_reference(text)


def test_public_key_text_is_52_lowercase_chars() -> None:
    assert len(KEY.text) == 52 and KEY.text == KEY.text.lower()
    assert PublicKey.parse(KEY.text) == KEY


@pytest.mark.parametrize("space", ["\t", "\n", "\f", "\r", " "])
def test_ascii_whitespace_around_a_reference_or_key_is_ignored(space: str) -> None:
    assert parse_reference(f"{space}{KEY.text}/m{space}") == Reference(KEY, "m")
    assert PublicKey.parse(f"{space}{KEY.raw.hex()}{space}") == KEY


@pytest.mark.parametrize(
    "space", ["\x0b", "\x1c", "\x1f", "\x85", "\xa0", "\u2028", "\u3000", "\ufeff"]
)
def test_other_whitespace_is_part_of_the_text(space: str) -> None:
    """§2/§3: only ASCII whitespace is stripped, whatever a runtime's trim() would remove."""
    for text in (f"{space}{KEY.text}/m", f"{KEY.text}/m{space}"):
        with pytest.raises(InvalidReferenceError):
            parse_reference(text)
    with pytest.raises(InvalidReferenceError):
        PublicKey.parse(f"{KEY.text}{space}")
