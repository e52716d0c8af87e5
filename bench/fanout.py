"""Fan-out: one origin with a capped upload, N consumers pulling one model at once.

    python bench/fanout.py [--consumers 8] [--mib 512] [--rate-mb 20] [--super-seed off]

The lab scenario: one slow outside link (the origin's upload, capped for all peers together),
N colleagues on a fast LAN. Every party is its own process with its own home and its own
loopback address (127.100.x.y), on a private testnet. For hubless the origin publishes the
model and seeds it; the consumers run the Python API's `pull` (resolve, manifest, download,
SHA-256 of every file into the cache) and keep seeding until every consumer is done, as
colleagues' machines would. For HTTP the origin is hubless's lab server with one token
bucket shared by every connection (nginx's `limit_rate` caps each connection, not the total),
and each consumer runs `curl` for every file, then `openssl dgst -sha256` of them.

For each contender, in one run: one consumer alone, then N at once (started by one signal
after every process is up). Reported: each consumer's time, the time until all are done,
all-done / one-alone, and bytes the origin sent / model size. Aim: hubless all-done within
1.5x one alone and the origin sending at most 1.3x the model; HTTP needs about Nx.
Needs curl and openssl (`apt-get install curl openssl`).

Measured at the defaults (512 MiB in 5 files, origin capped at 20 MB/s, 8 consumers) on a
shared 2-core machine, with downloads that do not announce themselves (decision 0009; they
find each other through the origin's peer exchange and their own `get_peers` lookups):

    contender               N  one alone  all done  ratio  origin sent / model
    hubless                 8     29.1 s    36.2 s   1.24                 1.27
    HTTP (curl + openssl)   8     27.4 s   217.9 s   7.97                 8.00

Another hubless run: 28.7 s, 34.8 s, 1.21, 1.21. Before downloads connected at once to the
peers they found (libtorrent's once-a-second round cost a pull about 4 s before its first
byte): 33.0 s, 40.0 s, 1.21, 1.20, and 33.5 s, 40.8 s, 1.22, 1.21. With the file bands of a
single-seed pull kept in a swarm, the origin sent 1.74x (see spec decision 0011).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from procs import read_line, spawn_self, stop

MIB = 1 << 20
VERBOSE = bool(os.environ.get("FANOUT_VERBOSE"))
ORIGIN_HOST = "127.100.0.2"
NAME = "fanout"


def consumer_host(run: int, index: int) -> str:
    return f"127.100.{run + 1}.{index + 10}"


# --- roles run in child processes ----------------------------------------------------------


def _cpu() -> float:
    """CPU seconds this process has used (user + system, all threads)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _experiment(session: Any, variable: str) -> None:
    """Apply libtorrent settings given as JSON in `variable`, to try a change before it
    goes into the local profile (hubless.net.profile)."""
    extra = os.environ.get(variable)
    if extra:
        session._ses.apply_settings(json.loads(extra))


def role_origin(bootstrap: str, home: str, model: str, rate: str, super_seed: str) -> None:
    """Publish the model and seed it with the upload capped at `rate` bytes/s in total."""
    from hubless.config import Config
    from hubless.services.client import Client

    config = Config.resolve(
        {"HUBLESS_BOOTSTRAP": bootstrap}, home=home, listen=ORIGIN_HOST, upload_limit=int(rate)
    )
    with Client(config) as client:
        key = client.keys.create("default", None)
        result = client.publish(model, NAME, "v1", key=client.keys.load(key.name, None))
        session: Any = client.network
        _experiment(session, "FANOUT_ORIGIN_SETTINGS")
        ih = result.content_infohash
        if super_seed == "on":
            session.set_super_seeding(ih, True)
        print(json.dumps({"ref": f"{key.public.text}/{NAME}", "infohash": ih.hex()}), flush=True)
        for line in sys.stdin:  # "stats": bytes sent so far
            if line.strip() == "stats":
                print(json.dumps({"uploaded": session.payload_uploaded(ih)}), flush=True)


def role_consumer(bootstrap: str, home: str, host: str, ref: str) -> None:
    """Join the DHT, say ready, pull on "go", report, and seed until told to stop."""
    from hubless.config import Config
    from hubless.services.client import Client
    from hubless.services.events import Event

    config = Config.resolve({"HUBLESS_BOOTSTRAP": bootstrap}, home=home, listen=host)
    stages: dict[str, float] = {}  # when each step began, for FANOUT_VERBOSE
    timeline: list[tuple[float, int]] = []  # (seconds, bytes of the model done)
    start = time.perf_counter()

    def on_event(event: Event) -> None:
        elapsed = round(time.perf_counter() - start, 1)
        stages.setdefault(event.message.split(" ")[0], elapsed)
        if (
            event.stage == "download"
            and event.total
            and (not timeline or elapsed - timeline[-1][0] >= 2)
        ):
            timeline.append((elapsed, event.done))

    with Client(config, on_event=on_event) as client:
        _experiment(client.network, "FANOUT_CONSUMER_SETTINGS")  # also joins the DHT
        print("ready", flush=True)
        sys.stdin.readline()
        start, cpu = time.perf_counter(), _cpu()
        stages.clear()
        result = client.pull(ref)
        seconds = time.perf_counter() - start
        report = {
            "seconds": seconds,
            "downloaded": result.downloaded_bytes,
            "stages": stages,
            "timeline": timeline,
            "cpu": _cpu() - cpu,
        }
        print(json.dumps(report), flush=True)
        sys.stdin.readline()  # keep seeding for the others until the parent says stop


# --- the contenders --------------------------------------------------------------------------


def generate(folder: Path, mib: int, files: int) -> int:
    """`files` shards of random bytes, `mib` MiB in all, and a config.json; returns bytes."""
    folder.mkdir(parents=True)
    each = (mib * MIB) // files
    for i in range(files):
        with open(folder / f"model-{i + 1:05d}-of-{files:05d}.safetensors", "wb") as out:
            left = each
            while left:
                chunk = min(left, 16 * MIB)
                out.write(os.urandom(chunk))
                left -= chunk
    (folder / "config.json").write_text(json.dumps({"model_type": "fanout", "files": files}))
    return sum(p.stat().st_size for p in folder.iterdir())


def run_hubless(
    bootstrap: str, origin: Any, ref: str, work: Path, run: int, count: int
) -> tuple[list[float], float, int]:
    """(each consumer's seconds, all-done seconds, origin bytes sent) for `count` at once."""
    origin.stdin.write("stats\n")
    origin.stdin.flush()
    before = int(json.loads(read_line(origin))["uploaded"])
    consumers = [
        spawn_self(
            __file__,
            "--role",
            "consumer",
            bootstrap,
            str(work / f"run{run}-consumer{i}"),
            consumer_host(run, i),
            ref,
        )
        for i in range(count)
    ]
    try:
        for proc in consumers:
            assert read_line(proc) == "ready"
        start = time.perf_counter()
        for proc in consumers:
            assert proc.stdin is not None
            proc.stdin.write("go\n")
            proc.stdin.flush()
        reports = [json.loads(read_line(proc)) for proc in consumers]
        all_done = time.perf_counter() - start
        if VERBOSE:
            for i, r in enumerate(reports):
                steps = [(t, b >> 20) for t, b in r["timeline"]]
                print(f"    consumer {i}: {r['seconds']:.1f} s; steps began at {r['stages']}")
                print(f"      (s, MiB done) {steps}")
    finally:
        for proc in consumers:
            stop(proc)
    origin.stdin.write("stats\n")
    origin.stdin.flush()
    sent = int(json.loads(read_line(origin))["uploaded"]) - before
    return [float(r["seconds"]) for r in reports], all_done, sent


def hubless_run(
    work: Path, model: Path, rate: int, super_seed: str, run: int, count: int
) -> tuple[list[float], float, int]:
    """Testnet, origin and `count` consumers of one run; everything stopped afterwards."""
    from hubless.net.testnet import spawn_testnet

    testnet, bootstrap_list = spawn_testnet(8)
    bootstrap = ",".join(bootstrap_list)
    origin = None
    try:
        origin = spawn_self(
            __file__,
            "--role",
            "origin",
            bootstrap,
            str(work / f"run{run}-origin"),
            str(model),
            str(rate),
            super_seed,
        )
        ref = json.loads(read_line(origin))["ref"]
        return run_hubless(bootstrap, origin, ref, work, run, count)
    finally:
        if origin is not None:
            stop(origin)
        testnet.terminate()
        testnet.wait(30)


def run_http(
    server: Any, model: Path, work: Path, run: int, count: int
) -> tuple[list[float], float, int]:
    """N curl + openssl consumers started together against the capped server."""
    names = sorted(p.name for p in model.iterdir())
    before = server.sent
    times: list[float] = [0.0] * count
    start = time.perf_counter()

    def fetch(i: int) -> None:
        dst = work / f"http-run{run}-{i}"
        dst.mkdir(parents=True)
        args = ["curl", "-s", "--fail", "--interface", consumer_host(run, i)]
        for name in names:
            args += ["-o", str(dst / name), f"{server.base_url}{model.name}/{name}"]
        subprocess.run(args, check=True)
        subprocess.run(
            ["openssl", "dgst", "-sha256", *(str(dst / n) for n in names)],
            check=True,
            stdout=subprocess.DEVNULL,
        )
        times[i] = time.perf_counter() - start
        shutil.rmtree(dst, ignore_errors=True)

    threads = [threading.Thread(target=fetch, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return times, time.perf_counter() - start, server.sent - before


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--consumers", type=int, default=8)
    parser.add_argument("--mib", type=int, default=512, help="model size in MiB")
    parser.add_argument("--files", type=int, default=4, help="shards the model is split into")
    parser.add_argument("--rate-mb", type=float, default=20.0, help="origin upload cap, MB/s")
    parser.add_argument(
        "--super-seed", choices=["on", "off"], default="off", help="BEP-16 on the origin"
    )
    parser.add_argument("--contenders", default="hubless,http")
    parser.add_argument("--dir", default=None, help="parent of the temp folder (default: /tmp)")
    args = parser.parse_args()
    missing = [tool for tool in ("curl", "openssl") if shutil.which(tool) is None]
    if missing and "http" in args.contenders:
        sys.exit(f"bench/fanout.py needs {', '.join(missing)}: apt-get install {' '.join(missing)}")
    rate = int(args.rate_mb * 1_000_000)
    contenders = args.contenders.split(",")

    from hubless.lab.webserver import StaticServer

    work = Path(tempfile.mkdtemp(prefix="hubless-fanout-", dir=args.dir))
    rows: list[tuple[str, int, float, float, float, list[float]]] = []
    try:
        model = work / "www" / NAME
        size = generate(model, args.mib, args.files)
        print(
            f"model: {size / MIB:.0f} MiB in {args.files + 1} files; origin upload cap "
            f"{rate / 1e6:g} MB/s in total; {args.consumers} consumers",
            flush=True,
        )
        if "hubless" in contenders:
            # A fresh private DHT and origin for each run: a consumer that exited stays in the
            # DHT nodes' tables, and lookups near it would wait 15 s on it (decision 0007).
            alone, _, alone_sent = hubless_run(work, model, rate, args.super_seed, 0, 1)
            print(f"  hubless, 1 consumer: {alone[0]:.1f} s, origin sent {alone_sent / size:.2f}x")
            each, done, sent = hubless_run(work, model, rate, args.super_seed, 1, args.consumers)
            rows.append(("hubless", args.consumers, alone[0], done, sent / size, each))
            print(f"  hubless, {args.consumers} consumers: all done {done:.1f} s", flush=True)
        if "http" in contenders:
            with StaticServer(work / "www", rate=rate) as server:
                alone, _, _ = run_http(server, model, work, 2, 1)
                print(f"  HTTP, 1 consumer: {alone[0]:.1f} s", flush=True)
                each, done, sent = run_http(server, model, work, 3, args.consumers)
            rows.append(
                ("HTTP (curl + openssl)", args.consumers, alone[0], done, sent / size, each)
            )
            print(f"  HTTP, {args.consumers} consumers: all done {done:.1f} s", flush=True)
        print(
            f"\n{'contender':24s} {'N':>3s} {'one alone':>10s} {'all done':>9s} {'ratio':>6s} "
            f"{'origin sent / model':>20s}"
        )
        for label, n, one, done, sent_ratio, _ in rows:
            print(
                f"{label:24s} {n:3d} {one:9.1f}s {done:8.1f}s {done / one:6.2f} {sent_ratio:20.2f}"
            )
        for label, _, _, _, _, each in rows:
            print(
                f"{label} per consumer (s): "
                + ", ".join(f"{t:.1f}" for t in sorted(each))
                + f"  (median {statistics.median(each):.1f})"
            )
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[1] == "--role":
        role, rest = sys.argv[2], sys.argv[3:]
        {"origin": role_origin, "consumer": role_consumer}[role](*rest)
    else:
        main()
