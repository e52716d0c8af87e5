"""Bytes an update costs: change 1 of 5 files, pull again, divide by that file's size.

Publisher (this process, seeding) and consumer (a separate `hubless` process) on a loopback
testnet. Prints downloaded bytes / changed file size; target <= 1.05. The first pull's
ratio (bytes / model size) is printed as the peer measured in the same run.
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

from hubless.config import Config
from hubless.lab.demo import run_cli
from hubless.lab.modelgen import make_model, write_safetensors
from hubless.net.testnet import Testnet
from hubless.services.client import Client


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--file-mib", type=int, default=64, help="size of each of the 5 files")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="hubless-bench-") as scratch, Testnet(8) as net:
        root = Path(scratch)
        model = root / "model"
        make_model(model, seed=11, size=5 * (args.file_mib << 20), shards=5)
        (model / "config.json").unlink()  # exactly five files, all shards
        config = Config.resolve({"HUBLESS_BOOTSTRAP": ",".join(net.bootstrap)}, home=root / "pub")
        with Client(config) as publisher:
            key = publisher.keys.create("default", None)
            signing = publisher.keys.load(key.name, None)
            publisher.publish(model, "bench-update", "v1", key=signing)
            ref = f"{key.public.text}/bench-update"
            first = run_cli(root / "consumer", net.bootstrap, "pull", ref)
            total = sum(p.stat().st_size for p in model.iterdir())
            shard = sorted(model.glob("*.safetensors"))[2]
            data = os.urandom((shard.stat().st_size - 512) // 256 * 256)  # new weights, same shape
            write_safetensors(shard, {"layers.2.weight": ("F32", (len(data) // 256, 64), data)})
            publisher.publish(model, "bench-update", "v2", key=signing)
            second = run_cli(root / "consumer", net.bootstrap, "pull", ref)
        changed = shard.stat().st_size
        print(
            f"first pull: {first['downloaded_bytes']:,} bytes for a {total:,}-byte model "
            f"(ratio {first['downloaded_bytes'] / total:.3f})"
        )
        print(
            f"update: fetched {second['fetched_files']} of {second['files']} files, "
            f"{second['downloaded_bytes']:,} bytes for a {changed:,}-byte file"
        )
        print(
            f"ratio update bytes / changed file = {second['downloaded_bytes'] / changed:.3f} "
            "(target <= 1.05)"
        )


if __name__ == "__main__":
    main()
