"""Fetching torrent metadata from a hostile publisher writes nothing outside the home (§5.7).

Every command that fetches metadata from peers (`resolve`, `history` and `pull` for a manifest
torrent; `pull` and `export` for a content torrent) runs as its own process against a
publisher that serves torrents listing a BEP-47 symbolic link, a thousand extra files, or a
multi-file manifest torrent. The system temp folder (TMPDIR of the child) holds a link that
another local user planted at the torrent's name. Each command must fail with its typed error
and leave the temp folder, the planted link's target and every folder outside its home
exactly as they were.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tests.conftest import RunningTestnet

from . import cli
from .fs import changes, listing
from .hostile import NAME

pytestmark = pytest.mark.e2e


def run_each(
    testnet: RunningTestnet, tmp_path: Path, ref: str, commands: list[tuple[str, ...]]
) -> list[tuple[int, str]]:
    """Run each command from a fresh home with a planted temp folder; return (code, error)."""
    systmp = tmp_path / "systmp"
    target = tmp_path / "planted-target"
    systmp.mkdir(exist_ok=True)
    target.mkdir(exist_ok=True)
    for name in (NAME, "evil"):
        if not (systmp / name).is_symlink():
            os.symlink(target, systmp / name)
    results = []
    for i, args in enumerate(commands):
        home = tmp_path / f"consumer-{i}"
        homes = [tmp_path / f"consumer-{j}" for j in range(len(commands))]
        skip = [*homes, tmp_path / "attacker"]
        before = listing(tmp_path, skip=skip)
        code, err = cli.run_failing(
            home, testnet, *args[:1], ref, *args[1:], env={"TMPDIR": str(systmp)}
        )
        assert "Traceback" not in err, err
        after = listing(tmp_path, skip=skip)
        assert changes(before, after) == [], f"hubless {args[0]} wrote outside its home"
        assert not list(target.iterdir())
        partial = home / "cache" / "partial"
        assert not partial.exists() or not list(partial.iterdir()), "a fetch left its folder"
        results.append((code, json.loads(err.strip().splitlines()[-1])["error"]))
    return results


def test_a_content_torrent_with_a_symbolic_link(
    testnet: RunningTestnet, tmp_path: Path, attacker: object
) -> None:
    ref = attacker("content-symlink")  # type: ignore[operator]
    out = tmp_path / "exported.torrent"
    results = run_each(testnet, tmp_path, ref, [("pull",), ("export", "--torrent", str(out))])
    for code, error in results:
        assert code == 1 and "symbolic link" in error, error
    assert not out.exists()


def test_a_content_torrent_with_a_thousand_extra_files(
    testnet: RunningTestnet, tmp_path: Path, attacker: object
) -> None:
    ref = attacker("content-extra")  # type: ignore[operator]
    out = tmp_path / "exported.torrent"
    results = run_each(testnet, tmp_path, ref, [("pull",), ("export", "--torrent", str(out))])
    for code, error in results:
        assert code == 1 and "files differ" in error, error
    assert not out.exists()


def test_a_manifest_torrent_of_many_files(
    testnet: RunningTestnet, tmp_path: Path, attacker: object
) -> None:
    ref = attacker("manifest-multi")  # type: ignore[operator]
    results = run_each(testnet, tmp_path, ref, [("resolve",), ("history",), ("pull",)])
    for code, error in results:
        assert code == 1 and "single-file" in error, error
