"""Web seeds as users write them, and as a manifest may carry them (spec §5.8)."""

from __future__ import annotations

import pytest
from hubless.core.errors import MalformedError, UsageError
from hubless.core.webseeds import WebSeed, parse_web_seed


@pytest.mark.parametrize(
    ("text", "kind", "base"),
    [
        ("https://mirror.example/models/", "bep19", "https://mirror.example/models/"),
        ("https://mirror.example/models", "bep19", "https://mirror.example/models/"),
        ("http://127.0.0.1:8080", "bep19", "http://127.0.0.1:8080/"),
        ("path:https://bucket.example/tiny/v1/", "path", "https://bucket.example/tiny/v1/"),
        (
            "bep19:https://huggingface.co/o/r/resolve/main/",
            "bep19",
            "https://huggingface.co/o/r/resolve/main/",
        ),
        (
            "https://huggingface.co/o/r/resolve/main",
            "path",
            "https://huggingface.co/o/r/resolve/main/",
        ),
        ("https://hf.co/o/r/resolve/v1.0/sub/", "path", "https://hf.co/o/r/resolve/v1.0/sub/"),
        ("https://[::1]:8443/m/", "bep19", "https://[::1]:8443/m/"),
    ],
)
def test_how_a_user_names_a_web_seed(text: str, kind: str, base: str) -> None:
    assert parse_web_seed(text) == WebSeed(kind, base)


@pytest.mark.parametrize(
    "text",
    ["mirror.example/m/", "file:///srv/m/", "https://a.example/m/?x=1", "path:", "https://a b/"],
)
def test_what_is_not_a_web_seed_is_a_usage_error(text: str) -> None:
    with pytest.raises(UsageError):
        parse_web_seed(text)


def test_a_seed_is_checked_when_made() -> None:
    with pytest.raises(MalformedError):
        WebSeed("bep19", "https://a.example/m")  # no final '/'
    with pytest.raises(MalformedError):
        WebSeed("s3", "https://a.example/m/")


def test_file_urls_of_both_kinds() -> None:
    bep19 = WebSeed("bep19", "https://mirror.example/models/")
    path = WebSeed("path", "https://huggingface.co/o/r/resolve/main/")
    assert (
        bep19.file_url("tiny", "a b/ü.bin") == "https://mirror.example/models/tiny/a%20b/%C3%BC.bin"
    )
    assert (
        path.file_url("tiny", "config.json")
        == "https://huggingface.co/o/r/resolve/main/config.json"
    )
