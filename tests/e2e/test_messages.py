"""Errors a user meets say what and which: no empty texts, the model named, weak keys refused."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from hubless.lab.modelgen import make_model

from tests.conftest import RunningTestnet

from . import cli

pytestmark = pytest.mark.e2e


def last_error(stderr: str) -> dict[str, str]:
    return json.loads(stderr.strip().splitlines()[-1])  # type: ignore[no-any-return]


def test_a_manifest_that_is_no_msgpack_says_why(tmp_path: Path) -> None:
    (tmp_path / "m" / ".hubless").mkdir(parents=True)
    (tmp_path / "m" / ".hubless" / "manifest").write_bytes(b"\xc1")  # a reserved type byte
    done = subprocess.run(
        [sys.executable, "-m", "hubless.cli", "--json", "verify", str(tmp_path / "m")],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    error = last_error(done.stderr)["error"]
    assert done.returncode == 1 and error.startswith("manifest is not valid msgpack: ")
    detail = error.removeprefix("manifest is not valid msgpack: ")
    assert detail.strip() and "0xc1" in detail, error


def test_a_short_passphrase_is_refused_for_a_new_key(
    tmp_path: Path, testnet: RunningTestnet
) -> None:
    home = tmp_path / "home"
    env = {**os.environ, "HUBLESS_PASSPHRASE": "a"}
    done = subprocess.run(
        cli.command(home, testnet, "key", "new"),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env=env,
    )
    assert done.returncode == 2, done.stderr
    assert "at least 8 characters" in last_error(done.stderr)["error"]
    assert not (home / "data" / "keys" / "default.key").exists()


@pytest.mark.slow  # waits out a lookup timeout; the cheaper tests cover the rule
def test_no_peer_for_a_manifest_names_the_model(tmp_path: Path, testnet: RunningTestnet) -> None:
    """The publisher published and left: the record is out, nobody serves its manifest."""
    model = tmp_path / "model"
    make_model(model, seed=51, size=1 << 20, shards=1)
    publisher = tmp_path / "publisher"
    key = cli.run(publisher, testnet, "key", "new", "--no-passphrase")["public_key"]
    cli.run(publisher, testnet, "publish", model, "--name", "lonely", "--version", "v1")
    code, err = cli.run_failing(tmp_path / "consumer", testnet, "resolve", f"{key}/lonely")
    error = last_error(err)["error"]
    assert code == 1 and "lonely" in error and "v1" in error and "manifest" in error, error
