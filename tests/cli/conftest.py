"""Run `hubless` in-process with click's runner: the real exit path, a fresh `App` per call.

`hubless(*args)` returns the exit code, stdout, stderr and the `App` the command saw. Every
call runs with a clean environment (no HUBLESS_* of the machine) and HUBLESS_HOME under the
test's tmp_path; `app=App(network=swarm.node())` puts the command on the in-memory network.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import pytest
from click.testing import CliRunner
from hubless.cli.app import App
from hubless.cli.main import cli


@dataclass(frozen=True)
class Invocation:
    code: int
    stdout: str
    stderr: str
    app: App


class Hubless(Protocol):
    def __call__(
        self,
        *args: str | Path,
        env: dict[str, str] | None = None,
        app: App | None = None,
        input: str | None = None,
    ) -> Invocation: ...


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return tmp_path / "home"


@pytest.fixture
def hubless(home: Path) -> Hubless:
    def run(
        *args: str | Path,
        env: dict[str, str] | None = None,
        app: App | None = None,
        input: str | None = None,
    ) -> Invocation:
        app = app or App()
        clean: dict[str, str | None] = {k: None for k in os.environ if k.startswith("HUBLESS_")}
        result = CliRunner().invoke(
            cli,
            [str(a) for a in args],
            obj=app,
            env={**clean, "HUBLESS_HOME": str(home), **(env or {})},
            input=input,
            catch_exceptions=False,
        )
        return Invocation(result.exit_code, result.stdout, result.stderr, app)

    return run


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    """--debug configures the root logger (on the runner's stderr): undo it after each test."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
