"""`pull --to` and the temporary folders next to it (spec/PROTOCOL.md §6, §8.4).

A `--to` that is a symbolic link is refused, not followed; the temporary folder a pull
builds next to the target has an unpredictable name and is created exclusively, so a link
planted at the name an attacker can guess changes nothing.
"""

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
from .fs import changes, listing

pytestmark = pytest.mark.e2e


@pytest.fixture()
def published(testnet: RunningTestnet, tmp_path: Path) -> tuple[Path, str]:
    """A home that published a small model: (home, reference)."""
    home = tmp_path / "home"
    key = cli.run(home, testnet, "key", "new", "--no-passphrase")["public_key"]
    model = tmp_path / "model"
    make_model(model, seed=4, size=1 << 20, shards=1)
    cli.run(home, testnet, "publish", model, "--name", "target", "--version", "v1")
    return home, f"{key}/target"


@pytest.mark.parametrize("exists", [True, False], ids=["link-to-empty", "link-to-missing"])
def test_a_to_that_is_a_symbolic_link_is_refused(
    testnet: RunningTestnet, tmp_path: Path, published: tuple[Path, str], exists: bool
) -> None:
    home, ref = published
    victim = tmp_path / "victim"
    if exists:
        victim.mkdir()
    out = tmp_path / "out"
    os.symlink(victim, out)
    before = listing(tmp_path, skip=[home])
    code, err = cli.run_failing(home, testnet, "pull", ref, "--to", out)
    assert code == 2, err
    assert "symbolic link" in json.loads(err.strip().splitlines()[-1])["error"]
    assert changes(before, listing(tmp_path, skip=[home])) == []


def test_a_link_planted_at_the_old_temp_name_is_not_followed(
    testnet: RunningTestnet, tmp_path: Path, published: tuple[Path, str]
) -> None:
    """The wrapper plants `.out.<its pid>.partial` and then becomes the pull (exec keeps the
    pid): the name the pull used to build its folder under, predictable before."""
    home, ref = published
    victim = tmp_path / "victim"
    victim.mkdir()
    (victim / "keep.txt").write_text("mine\n")
    out = tmp_path / "out"
    command = cli.command(home, testnet, "pull", ref, "--to", out)
    planted = os.path.join(tmp_path, ".out.{}.partial")
    plant = (
        "import os, sys\n"
        f"os.symlink({str(victim)!r}, {planted!r}.format(os.getpid()))\n"
        "os.execv(sys.executable, sys.argv[1:])\n"
    )
    before = listing(victim)
    done = subprocess.run(
        [sys.executable, "-c", plant, *command],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.strip().splitlines()[-1])["path"] == str(out)
    assert changes(before, listing(victim)) == []
    assert (out / ".hubless" / "manifest").is_file()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".out.") and not p.is_symlink()]
