"""`hubless verify` on a folder it did not make (spec/PROTOCOL.md §8.6).

The folder may hold a manifest that is a link to `/dev/zero`, a FIFO, a huge file, or model
files replaced by FIFOs and links: every case ends with a typed error or a report, never a
hang (opening a FIFO to read it blocks for good), an untyped `MemoryError`, or a read
outside the folder.
"""

from __future__ import annotations

import hashlib
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import pytest
from hubless.core.keys import SigningKey
from hubless.core.manifest import FileEntry, Manifest, sign_manifest

KEY = SigningKey(hashlib.sha256(b"verify untrusted folders").digest())
FILES = {"config.json": b"{}\n", "weights/model.bin": bytes(range(256)) * 64}


def verify(folder: Path, timeout: float = 60.0) -> tuple[int, dict[str, object]]:
    """Run `hubless --json verify FOLDER` with 1 GiB of address space; exit code and JSON.
    `timeout` (s) is a hang guard: a verify that opened a FIFO to read it would never end."""

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))

    try:
        done = subprocess.run(
            [sys.executable, "-m", "hubless.cli", "--json", "verify", str(folder)],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            preexec_fn=limit,
        )
    except subprocess.TimeoutExpired:
        raise AssertionError(f"verify {folder} did not end in {timeout:g}s") from None
    assert "Traceback" not in done.stderr, done.stderr[-2000:]
    out = done.stdout if done.returncode == 0 or done.stdout.strip() else done.stderr
    return done.returncode, json.loads(out.strip().splitlines()[-1])


def pulled_folder(root: Path) -> Path:
    """A folder as `pull --to` leaves it: the files and the signed manifest."""
    for rel, data in FILES.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(data)
    entries = tuple(
        FileEntry(rel, len(data), hashlib.sha256(data).digest())
        for rel, data in sorted(FILES.items())
    )
    manifest = Manifest(KEY.public, "m", "v1", 1, int(time.time()), bytes(20), entries)
    (root / ".hubless").mkdir()
    (root / ".hubless" / "manifest").write_bytes(sign_manifest(manifest, KEY))
    return root


def test_a_pulled_folder_verifies(tmp_path: Path) -> None:
    code, report = verify(pulled_folder(tmp_path / "m"))
    assert code == 0 and report["ok"] and report["ok_files"] == 2


@pytest.mark.parametrize(
    "plant",
    [
        lambda p: os.symlink("/dev/zero", p),
        lambda p: os.mkfifo(p),
        lambda p: os.symlink(p.with_name("elsewhere"), p),
    ],
    ids=["link-to-dev-zero", "fifo", "link"],
)
def test_a_manifest_that_is_no_regular_file_is_refused(tmp_path: Path, plant: object) -> None:
    folder = pulled_folder(tmp_path / "m")
    manifest = folder / ".hubless" / "manifest"
    manifest.rename(folder / ".hubless" / "elsewhere")
    plant(manifest)  # type: ignore[operator]
    code, error = verify(folder)
    assert code == 2, error
    assert "not a regular file" in str(error["error"])


def test_a_manifest_folder_that_is_a_link_is_refused(tmp_path: Path) -> None:
    folder = pulled_folder(tmp_path / "m")
    (folder / ".hubless").rename(tmp_path / "meta")
    os.symlink(tmp_path / "meta", folder / ".hubless")
    code, error = verify(folder)
    assert code == 2 and "not a regular file" in str(error["error"])


def test_an_oversized_manifest_is_refused_before_reading(tmp_path: Path) -> None:
    folder = pulled_folder(tmp_path / "m")
    with open(folder / ".hubless" / "manifest", "r+b") as f:
        f.truncate(64 << 30)  # sparse: 64 GiB that would not fit in the address space
    code, error = verify(folder)
    assert code == 1 and "larger than a manifest may be" in str(error["error"])


def test_model_files_replaced_by_fifos_or_links_are_modified_not_read(tmp_path: Path) -> None:
    folder = pulled_folder(tmp_path / "m")
    outside = tmp_path / "outside.bin"
    outside.write_bytes(FILES["weights/model.bin"])  # the right bytes, but not in the folder
    os.unlink(folder / "weights" / "model.bin")
    os.symlink(outside, folder / "weights" / "model.bin")
    os.unlink(folder / "config.json")
    os.mkfifo(folder / "config.json")
    code, report = verify(folder)
    assert code == 1 and not report["ok"]
    # Neither was read: the FIFO would have blocked, the link would have matched its hash.
    assert report["modified"] == ["config.json", "weights/model.bin"]


def test_a_model_folder_below_a_link_is_not_followed(tmp_path: Path) -> None:
    folder = pulled_folder(tmp_path / "m")
    (folder / "weights").rename(tmp_path / "weights")
    os.symlink(tmp_path / "weights", folder / "weights")
    code, report = verify(folder)
    assert code == 1 and report["modified"] == ["weights/model.bin"]
