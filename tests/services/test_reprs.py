"""Results print keys in text form and summarise bytes: a repr is for people."""

from __future__ import annotations

from pathlib import Path

from hubless.services.client import Client

from .conftest import NAME, PUBLISHER, REF, V1_FILES, write_model


def test_results_print_short_and_readable(
    publisher: Client, consumer: Client, tmp_path: Path
) -> None:
    published = publisher.publish(write_model(tmp_path / "m", V1_FILES), NAME, "v1", key=PUBLISHER)
    pulled = consumer.pull(REF)
    resolution = consumer.resolve(REF)
    for value in (published, pulled, resolution, REF):
        text = repr(value)
        assert PUBLISHER.public.text in text, text
        assert "raw=b" not in text and "\\x" not in text, text
        assert len(text) < 400, text
    assert repr(PUBLISHER.public) == f"PublicKey({PUBLISHER.public.text!r})"
