"""Where hubless meets files it does not own: other filesystems, full disks, killed processes.

Every test runs the `hubless` command as separate processes on a loopback testnet and
checks the typed error a user would see and that nothing was written outside the folders
the command was allowed to write (its home and the target).
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from hubless.lab.modelgen import make_model

from tests.conftest import RunningTestnet

from . import cli
from .fs import changes, listing

pytestmark = pytest.mark.e2e


def digests(folder: Path) -> dict[str, str]:
    return {
        p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file() and ".hubless" not in p.parts
    }


def test_publish_and_pull_across_filesystems(
    testnet: RunningTestnet, tmp_path: Path, other_fs: Path
) -> None:
    """A model folder and a --to folder on another disk than the home (kernel EXDEV)."""
    model = other_fs / "model"
    make_model(model, seed=9, size=2 << 20, shards=2)
    home = tmp_path / "home"
    key = cli.run(home, testnet, "key", "new", "--no-passphrase")["public_key"]
    outside = listing(tmp_path, skip=[home])
    published = cli.run(home, testnet, "publish", model, "--name", "xdev", "--version", "v1")
    assert published["files"] == 3 and not published["unchanged"]
    copy = other_fs / "copy"
    pulled = cli.run(home, testnet, "pull", f"{key}/xdev", "--to", copy)
    assert pulled["path"] == str(copy)
    assert digests(copy) == digests(model)
    assert cli.run(home, testnet, "verify", copy)["ok"]
    assert changes(outside, listing(tmp_path, skip=[home])) == []
    assert sorted(p.name for p in other_fs.iterdir()) == ["copy", "model"]
