"""Fixtures of the end-to-end tests."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator

import pytest

from tests.conftest import stop_process


@pytest.fixture()
def processes() -> Iterator[list[subprocess.Popen[str]]]:
    """Long-running processes a test starts; each is stopped at teardown."""
    started: list[subprocess.Popen[str]] = []
    yield started
    for proc in started:
        stop_process(proc)


from .fs import other_fs, small_fs  # noqa: E402, F401  (fixtures for the edge tests)
