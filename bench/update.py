"""Bytes a pull moves, against the bytes that had to move (run: python bench/update.py).

Publisher (this process, seeding) and consumer (a separate `hubless` process) on a loopback
testnet; `downloaded_bytes` is the payload libtorrent received. Three cases (`--case`):

- `file`: change 1 of 5 shards, pull again: bytes / that shard's size (target <= 1.05).
- `small`: a model of many small files (default 2,001 of about 1 kB: tokenizer pieces,
  configs, a card folder), first pull: bytes / payload (target <= 1.1; with every file
  pad-aligned it was 16.4).
- `tensor`: one 4 MiB tensor of a 256 MiB safetensors shard rewritten in place, pull again:
  bytes / the changed bytes rounded up to whole pieces (target <= 1.1), and bytes / the
  changed bytes themselves (the raw ratio). Partial-file updates, spec §8.4.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import struct
import tempfile
from collections.abc import Callable
from pathlib import Path

from hubless.config import Config
from hubless.core.layout import piece_length_for
from hubless.lab.demo import run_cli
from hubless.lab.modelgen import make_model, write_safetensors
from hubless.net.testnet import Testnet
from hubless.services.client import Client

MIB = 1 << 20


class Bench:
    """One publisher identity in this process and one consumer home, on one testnet."""

    def __init__(self, root: Path, net: Testnet, name: str) -> None:
        self.root, self.net, self.name = root, net, name
        config = Config.resolve({"HUBLESS_BOOTSTRAP": ",".join(net.bootstrap)}, home=root / "pub")
        self.publisher = Client(config)
        key = self.publisher.keys.create("default", None)
        self.signing = self.publisher.keys.load(key.name, None)
        self.ref = f"{key.public.text}/{name}"

    def publish(self, model: Path, version: str) -> None:
        self.publisher.publish(model, self.name, version, key=self.signing)

    def pull(self) -> dict[str, int]:
        return run_cli(self.root / "consumer", self.net.bootstrap, "pull", self.ref)

    def close(self) -> None:
        self.publisher.close()


def case_file(root: Path, net: Testnet, args: argparse.Namespace) -> None:
    bench = Bench(root, net, "bench-update")
    try:
        model = root / "model"
        make_model(model, seed=11, size=5 * (args.file_mib << 20), shards=5)
        (model / "config.json").unlink()  # exactly five files, all shards
        bench.publish(model, "v1")
        first = bench.pull()
        total = sum(p.stat().st_size for p in model.iterdir())
        shard = sorted(model.glob("*.safetensors"))[2]
        data = os.urandom((shard.stat().st_size - 512) // 256 * 256)  # new weights, same shape
        write_safetensors(shard, {"layers.2.weight": ("F32", (len(data) // 256, 64), data)})
        bench.publish(model, "v2")
        second = bench.pull()
    finally:
        bench.close()
    changed = shard.stat().st_size
    print(
        f"[file] first pull: {first['downloaded_bytes']:,} bytes for a {total:,}-byte model "
        f"(ratio {first['downloaded_bytes'] / total:.3f})"
    )
    print(
        f"[file] update: fetched {second['fetched_files']} of {second['files']} files, "
        f"{second['downloaded_bytes']:,} bytes for a {changed:,}-byte file: ratio "
        f"{second['downloaded_bytes'] / changed:.3f} (target <= 1.05)"
    )


def case_small(root: Path, net: Testnet, args: argparse.Namespace) -> None:
    rng = random.Random(5)
    model = root / "small-model"
    for i in range(args.small_files):
        folder = ("tokenizer", "configs", "card")[i % 3]
        path = model / folder / f"part-{i:05d}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(rng.randbytes(rng.randint(700, 1300)))
    payload = sum(p.stat().st_size for p in model.rglob("*") if p.is_file())
    bench = Bench(root, net, "bench-small")
    try:
        bench.publish(model, "v1")
        pulled = bench.pull()
    finally:
        bench.close()
    got = pulled["downloaded_bytes"]
    print(
        f"[small] {args.small_files} files, {payload:,} bytes of payload: pulled {got:,} "
        f"bytes, ratio {got / payload:.3f} (target <= 1.1; 16.4 with every file pad-aligned)"
    )


def case_tensor(root: Path, net: Testnet, args: argparse.Namespace) -> None:
    model = root / "tensor-model"
    model.mkdir()
    (model / "config.json").write_text('{"model_type": "bench"}\n')
    shard = model / "model.safetensors"
    count = args.shard_mib // 4
    write_safetensors(
        shard,
        {
            f"layers.{i}.weight": ("F32", (4 * MIB // 256, 64), os.urandom(4 * MIB))
            for i in range(count)
        },
    )
    bench = Bench(root, net, "bench-tensor")
    try:
        bench.publish(model, "v1")
        bench.pull()
        with open(shard, "rb") as fh:
            (header_len,) = struct.unpack("<Q", fh.read(8))
            header = json.loads(fh.read(header_len))
        start, end = header[f"layers.{count // 2}.weight"]["data_offsets"]
        offset, length = 8 + header_len + start, end - start
        with open(shard, "r+b") as fh:  # new values in place: same name, shape and offset
            fh.seek(offset)
            fh.write(os.urandom(length))
        bench.publish(model, "v2")
        second = bench.pull()
    finally:
        bench.close()
    piece = piece_length_for(sum(p.stat().st_size for p in model.iterdir()))
    touched = (offset + length - 1) // piece - offset // piece + 1
    got = second["downloaded_bytes"]
    print(
        f"[tensor] {length:,} bytes changed in a {shard.stat().st_size:,}-byte shard: "
        f"{touched} pieces of {piece // 1024} KiB; pulled {got:,} bytes: ratio "
        f"{got / (touched * piece):.3f} of whole pieces (target <= 1.1), {got / length:.3f} raw"
    )


CASES: dict[str, Callable[[Path, Testnet, argparse.Namespace], None]] = {
    "file": case_file,
    "small": case_small,
    "tensor": case_tensor,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--case", choices=[*CASES, "all"], default="all")
    parser.add_argument("--file-mib", type=int, default=64, help="size of each of the 5 files")
    parser.add_argument("--small-files", type=int, default=2001)
    parser.add_argument("--shard-mib", type=int, default=256)
    args = parser.parse_args()
    chosen = list(CASES) if args.case == "all" else [args.case]
    for name in chosen:
        with tempfile.TemporaryDirectory(prefix="hubless-bench-") as scratch, Testnet(8) as net:
            CASES[name](Path(scratch), net, args)


if __name__ == "__main__":
    main()
