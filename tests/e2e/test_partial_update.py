"""Partial-file updates (spec §8.4): one tensor of a 256 MiB shard changes in place, and a
consumer holding the old version downloads only the pieces that tensor touches.

Publisher and consumer are separate processes on the loopback testnet, as in the main job.
"""

from __future__ import annotations

import hashlib
import json
import os
import struct
import subprocess
from pathlib import Path

import pytest
from hubless.core.layout import piece_length_for
from hubless.lab.modelgen import write_safetensors

from tests.conftest import RunningTestnet, read_line

from . import cli

pytestmark = pytest.mark.e2e

MIB = 1 << 20
TENSORS = 64
TENSOR = 4 * MIB  # 64 tensors of 4 MiB: a 256 MiB shard


def make_shard(path: Path) -> None:
    tensors = {
        f"layers.{i}.weight": ("F32", (TENSOR // 256, 64), os.urandom(TENSOR))
        for i in range(TENSORS)
    }
    write_safetensors(path, tensors)


def tensor_span(path: Path, name: str) -> tuple[int, int]:
    """(offset in the file, length) of one tensor's bytes, from the safetensors header."""
    with open(path, "rb") as fh:
        (header_len,) = struct.unpack("<Q", fh.read(8))
        header = json.loads(fh.read(header_len))
    start, end = header[name]["data_offsets"]
    return 8 + header_len + start, end - start


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_one_changed_tensor_moves_only_its_pieces(
    testnet: RunningTestnet, tmp_path: Path, processes: list[subprocess.Popen[str]]
) -> None:
    model = tmp_path / "model"
    model.mkdir()
    (model / "config.json").write_text('{"model_type": "tiny-test"}\n')
    shard = model / "model.safetensors"
    make_shard(shard)
    publisher, consumer = tmp_path / "publisher", tmp_path / "consumer"
    key = cli.run(publisher, testnet, "key", "new", "--no-passphrase")["public_key"]
    ref = f"{key}/tiny"

    def publish(version: str) -> None:
        proc = cli.spawn(
            publisher, testnet, "publish", model, "--name", "tiny", "--version", version, "--seed"
        )
        processes.append(proc)
        json.loads(read_line(proc, 180))

    publish("v1")
    v1 = cli.run(consumer, testnet, "pull", ref)
    assert v1["fetched_files"] == 2

    # One tensor gets new values in place: same name, shape and offset; the file keeps its size.
    offset, length = tensor_span(shard, "layers.37.weight")
    with open(shard, "r+b") as fh:
        fh.seek(offset)
        fh.write(os.urandom(length))
    publish("v2")
    v2 = cli.run(consumer, testnet, "pull", ref)
    assert (v2["fetched_files"], v2["reused_files"]) == (1, 1)
    assert digest(Path(v2["path"]) / shard.name) == digest(shard)

    # The shard is large, so it starts on a piece boundary (§5.6): pieces are file offsets / P.
    piece = piece_length_for(sum(p.stat().st_size for p in model.iterdir()))
    touched = (offset + length - 1) // piece - offset // piece + 1
    downloaded = v2["downloaded_bytes"]
    ratio = downloaded / (touched * piece)
    print(
        f"changed {length:,} bytes = {touched} pieces of {piece // 1024} KiB; downloaded "
        f"{downloaded:,}: {ratio:.3f} x the touched pieces, {downloaded / length:.3f} x raw"
    )
    assert length <= downloaded
    assert ratio <= 1.1, (downloaded, touched, piece)
