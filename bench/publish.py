"""Publish latency against the hashing floor (run: python bench/publish.py [--size-mib 2048]).

Publishes a generated model of several files on a loopback testnet, timed until the DHT
acknowledges the record put, and compares it with `openssl dgst -sha256` over the same
files (page cache warm for both), interleaved, median of 3. Also times `hubless --help`
against a bare `python -c pass`. Prints ratios; target: publish / openssl <= 1.3.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from hubless.config import Config
from hubless.lab.modelgen import make_model
from hubless.net.testnet import Testnet
from hubless.services.client import Client
from hubless.services.events import Event


def openssl_seconds(files: list[Path]) -> float:
    start = time.perf_counter()
    subprocess.run(
        ["openssl", "dgst", "-sha256", *map(str, files)], check=True, stdout=subprocess.DEVNULL
    )
    return time.perf_counter() - start


def publish_seconds(model: Path, bootstrap: list[str], home: Path) -> float:
    stored: list[float] = []

    def on_event(event: Event) -> None:
        if event.stage == "stored":
            stored.append(time.perf_counter())

    config = Config.resolve({"HUBLESS_BOOTSTRAP": ",".join(bootstrap)}, home=home)
    with Client(config, on_event=on_event) as client:
        client.network  # start and join the DHT before the clock starts  # noqa: B018
        key = client.keys.create("default", None)
        signing = client.keys.load(key.name, None)
        start = time.perf_counter()
        client.publish(model, "bench-model", "v1", key=signing)
    shutil.rmtree(home)
    return stored[0] - start


def median_command(argv: list[str], runs: int = 7) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(argv, check=True, stdout=subprocess.DEVNULL)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--size-mib", type=int, default=2048)
    parser.add_argument("--files", type=int, default=8)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="hubless-bench-") as scratch, Testnet(8) as net:
        root = Path(scratch)
        model = root / "model"
        print(f"generating {args.size_mib} MiB in {args.files} shards ...", flush=True)
        make_model(model, seed=7, size=args.size_mib << 20, shards=args.files)
        files = sorted(p for p in model.rglob("*") if p.is_file())
        total = sum(p.stat().st_size for p in files)
        openssl_seconds(files)  # warm the page cache for both
        ours, theirs = [], []
        for run in range(args.runs):
            theirs.append(openssl_seconds(files))
            ours.append(publish_seconds(model, net.bootstrap, root / f"home{run}"))
            print(
                f"run {run + 1}: publish {ours[-1]:.3f} s, openssl {theirs[-1]:.3f} s", flush=True
            )
        p, o = statistics.median(ours), statistics.median(theirs)
        print(
            f"publish {total / p / 1e6:.0f} MB/s, openssl dgst -sha256 {total / o / 1e6:.0f} MB/s"
        )
        print(f"ratio publish / openssl = {p / o:.2f} (target <= 1.3)")
    hubless = [sys.executable, "-m", "hubless.cli", "--help"]
    bare = [sys.executable, "-c", "pass"]
    h, b = median_command(hubless), median_command(bare)
    print(f"hubless --help {h * 1000:.0f} ms, python -c pass {b * 1000:.0f} ms, ratio {h / b:.1f}")


if __name__ == "__main__":
    main()
