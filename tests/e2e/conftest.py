"""Fixtures of the end-to-end tests."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import RunningTestnet, read_line, stop_process

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture()
def processes() -> Iterator[list[subprocess.Popen[str]]]:
    """Long-running processes a test starts; each is stopped at teardown."""
    started: list[subprocess.Popen[str]] = []
    yield started
    for proc in started:
        stop_process(proc)


@pytest.fixture()
def attacker(testnet: RunningTestnet, tmp_path: Path) -> Iterator[object]:
    """`attacker(kind)`: start `tests.e2e.hostile` of that kind; return the model's reference."""
    started: list[subprocess.Popen[str]] = []

    def start(kind: str) -> str:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tests.e2e.hostile",
                testnet.bootstrap_arg,
                str(tmp_path / "attacker"),
                kind,
            ],
            stdout=subprocess.PIPE,
            text=True,
            cwd=ROOT,
        )
        started.append(proc)
        return str(json.loads(read_line(proc, 60))["ref"])

    yield start
    for proc in started:
        stop_process(proc)


from .fs import other_fs, small_fs  # noqa: E402, F401  (fixtures for the edge tests)
