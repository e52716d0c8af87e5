"""Path safety: one named row per attack (spec/PROTOCOL.md §6)."""

from __future__ import annotations

import pytest
from hubless.core.errors import HostilePathError
from hubless.core.paths import check_path, check_paths

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
