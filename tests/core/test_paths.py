"""Path safety: one named row per attack (spec/PROTOCOL.md §6)."""

from __future__ import annotations

import unicodedata

import pytest
from hubless.core.errors import HostilePathError
from hubless.core.paths import check_path, check_paths, fold
from hubless.core.unicode14 import UNICODE_VERSION, assigned_ranges

SAFE = [
    "config.json",
    "model.safetensors",
    "tokenizer/vocab.txt",
    "a/b/c/d.bin",
    "model-00001-of-00002.safetensors",
    "ünïcödé/名前.txt",
    ".gitattributes",
    "x" * 255,
]

HOSTILE = {
    "empty": "",
    "absolute": "/etc/passwd",
    "parent": "../outside",
    "parent inside": "a/../../b",
    "dot segment": "a/./b",
    "dot alone": ".",
    "backslash": "a\\b",
    "windows drive": "C:/x",
    "NUL": "a\x00b",
    "newline": "a\nb",
    "escape sequence": "a\x1b[2Jb",
    "DEL": "a\x7fb",
    "C1 control": "a\x85b",
    "empty segment": "a//b",
    "trailing slash": "a/",
    "trailing dot": "a/b.",
    "trailing space": "a/b ",
    "reserved device": "nul.txt",
    "reserved device in folder": "x/COM1",
    "wildcard": "a*b",
    "pipe": "a|b",
    "segment too long": "x" * 256,
    "path too long": "/".join(["x" * 200] * 6),
    "lone surrogate": "a\ud800b",
    "right-to-left override": "model\u202egnp.exe",
    "zero-width space": "mo\u200bdel.bin",
    "console device": "CONIN$",
    "superscript port": "com\u00b9.txt",
}


@pytest.mark.parametrize("path", SAFE)
def test_safe_paths_pass(path: str) -> None:
    assert check_path(path) == path


@pytest.mark.parametrize("path", HOSTILE.values(), ids=HOSTILE.keys())
def test_hostile_paths_are_refused(path: str) -> None:
    with pytest.raises(HostilePathError):
        check_path(path)


COLLIDING = {
    "duplicate": ["a.bin", "a.bin"],
    "case": ["Model.bin", "model.bin"],
    "unicode normal forms": ["caf\u00e9", "cafe\u0301"],
    "german sharp s casefold": ["stra\u00dfe", "STRASSE"],
    "decomposed capital": ["\u00c5", "a\u030a"],
    "file and folder": ["a", "a/b"],
    "file and folder by case": ["A", "a/b"],
}


@pytest.mark.parametrize("paths", COLLIDING.values(), ids=COLLIDING.keys())
def test_colliding_path_sets_are_refused(paths: list[str]) -> None:
    with pytest.raises(HostilePathError):
        check_paths(paths)


def test_distinct_paths_pass() -> None:
    check_paths(["a/b", "a/c", "b", "ab/c"])


def test_non_text_path_is_refused() -> None:
    with pytest.raises(HostilePathError):
        check_path(b"bytes")  # type: ignore[arg-type]


RESERVED = [
    ".hubless/manifest",
    ".hubless",
    ".Hubless/x",
    ".HUBLESS/a/b",
    ".huble\u017fs/x",  # long s folds to s
]


@pytest.mark.parametrize("path", RESERVED)
def test_the_reserved_folder_is_refused(path: str) -> None:
    """§6 rule 14: every pulled folder keeps its own `.hubless/manifest`."""
    with pytest.raises(HostilePathError, match=r"\.hubless/"):
        check_path(path)


@pytest.mark.parametrize("path", ["a/.hubless/manifest", ".hubless-old/x", ".hublessx", "hubless"])
def test_names_that_only_look_reserved_pass(path: str) -> None:
    assert check_path(path) == path


@pytest.mark.parametrize(
    "ch", ["\u0378", "\ua7dc", "\ufdd0", "\uffff", "\U0001fffe", "\U00031350", "\U000e0080"]
)
def test_code_points_unassigned_in_unicode_14_are_refused(ch: str) -> None:
    with pytest.raises(HostilePathError, match=r"Unicode 14\.0\.0"):
        check_path(f"a{ch}.txt")


@pytest.mark.parametrize("ch", ["\u0870", "\u2c2f", "\ue000", "\U000f0000", "\U0001faf6"])
def test_code_points_assigned_in_unicode_14_pass(ch: str) -> None:
    assert check_path(f"a{ch}.txt")


def test_the_unicode_14_table_is_this_pythons_or_a_subset_of_it() -> None:
    """The table equals Unicode 14.0.0's (on Python 3.11); later versions only add."""
    table = assigned_ranges()
    if unicodedata.unidata_version == UNICODE_VERSION:
        runs: list[tuple[int, int]] = []
        for cp in range(0x110000):
            if unicodedata.category(chr(cp)) != "Cn":
                if runs and runs[-1][1] == cp - 1:
                    runs[-1] = (runs[-1][0], cp)
                else:
                    runs.append((cp, cp))
        assert table == tuple(runs)
    else:
        assert all(unicodedata.category(chr(a)) != "Cn" for a, b in table)
        assert all(unicodedata.category(chr(b)) != "Cn" for a, b in table)


def test_folding_is_full_case_folding_without_turkic_rules() -> None:
    assert fold("STRASSE") == fold("stra\u00dfe") == "strasse"
    assert fold("\ufb01") == "fi"
    assert fold("\u0130") == "i\u0307"
    assert fold("\u0131") == "\u0131"
    assert fold("x\u00b2") == "x\u00b2"  # no compatibility mapping
