"""A mirror (a daemon with follows): how soon it seeds a new release, and what it costs at rest.

    python bench/mirror.py [--part a|b|both] [--mib 512] [--reps 5] [--poll-interval 10]
                           [--publishers 50] [--models 4] [--nodes 32] [--idle 300]

(a) Time to a new release. A publisher publishes a `--mib` MiB model (4 files of random
    bytes) under key Q, and a consumer that already runs pulls it (`Client.pull`, a plain
    pull); then the same folder is published under key P, which a mirror follows
    (`hubless.Daemon` with `--poll-interval`), and the time from `publish` returning to the
    mirror's new-version event (downloaded, verified, seeded) is taken. Each is the only
    downloader while it runs; every rep uses fresh bytes. Aim: mirror time at most pull time
    plus one poll interval plus 2 s.
(b) At rest. One mirror follows `--publishers` keys of `--models` tiny models each on a
    `--nodes` node testnet. Once it holds every model and has checked every record once, it
    is left alone for `--idle` seconds (polling every `--poll-interval-b` seconds, re-putting
    every 1800 s): resident memory, CPU and DHT datagrams per minute (libtorrent's session
    counters plus the KRPC client's tallies), against a daemon on an empty home measured at
    the same time.

Every process is a local-profile client of a loopback testnet (`hubless.net.testnet`).
Timestamps compare across processes through CLOCK_MONOTONIC, which is system-wide.

Results, one run of the defaults (2 shared cores with other work running, load average
1.5-2.6; 24 GB of memory; (a) on a 16-node testnet, (b) on a 32-node one; 10 minutes):

    (a) 512 MiB model, mirror polling every 10s
    rep publish s  pull s  mirror s  ratio  aim: <=      poll wait mirror fetch fetch/pull
      1       0.9     8.8       8.4   0.95     20.8 met         2.1          6.2       0.71
      2       1.1     8.9      15.7   1.77     20.9 met         8.1          7.6       0.86
      3       0.7     8.5      16.3   1.92     20.5 met         8.9          7.4       0.87
      4       1.6     8.5      13.7   1.61     20.5 met         7.4          6.2       0.73
      5       1.0     6.7       7.6   1.13     18.7 met         1.3          6.3       0.94
    median: pull 8.5s (63 MB/s), mirror 13.7s (ratio 1.61), of which the mirror's own
    fetch 6.3s (ratio 0.74); aim met 5 of 5.

The aim holds: the mirror seeds a new release within the plain pull's time plus the wait
for its next poll. Its own fetch (from the poll's lookup of the new model to seeding)
took 0.71-0.94 of a plain pull (0.72-1.03 in an earlier run; why it is not slower than a
pull was not looked into); the rest is the poll wait, uniform up to the interval plus 10%
jitter plus the daemon's 1 s tick. That worst case (12 s) uses up the aim's 2 s margin exactly,
so the aim holds as long as the mirror's fetch is no slower than a pull.

    (b) 50 publishers x 4 models on a 32-node testnet, at rest for 300s, polls every 60s
                                    RSS MiB   CPU %  DHT pkts/min  (libtorrent  KRPC)
    mirror, 200 models followed        65.5    3.73          5485         5485      0
    daemon, empty home (peer)          44.6    0.31            24           24      0
    ratio                              1.47   12.03        228.55

The mirror's traffic is its polling: 2267 BEP-44 get queries a minute, 9.1 per follow
and poll (one lookup asks ~9 nodes), for 250 follows (200 records and 50 indexes), plus
262 get_peers and 213 announce_peer a minute for seeding its 400 torrents; the daemon ran
137 poll rounds in the window. No keep-alive check fell in it (re-put every 1800 s).
Traffic scales with the poll rate: at the default interval of 600 s the polling is a
tenth of this. Before this run, the same bench measured 7.83% CPU (ratio 26; RSS and
traffic as here): a profile showed most of it in bookkeeping, not the DHT (the
once-a-second next-poll check built every followed model, and each poll-schedule write
made the daemon re-read all 400 seeds); `Follows.next_due` and the seeds digest
(`State.seeds_version`) halved it.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from homes import QUERIES, client, publish_tiny, pull_all, traffic, usage
from procs import read_line, spawn_self, stop

MIB = 1024 * 1024
_print_lock = threading.Lock()


def _say(obj: dict[str, Any]) -> None:
    with _print_lock:
        print(json.dumps(obj), flush=True)


# --- child processes --------------------------------------------------------------------------


def role_publisher(home: str, bootstrap: str) -> None:
    """Commands: `key LABEL` (create; answers its public key), `make FOLDER MIB` (4 files of
    random bytes), `publish LABEL FOLDER NAME` (answers when `publish` returned), `tiny
    LABEL COUNT` (COUNT 2 KiB models under a new key LABEL)."""
    me = client(Path(home), bootstrap)
    keys: dict[str, Any] = {}
    for line in sys.stdin:
        command, *args = line.split()
        if command == "key":
            info = me.keys.create(args[0], None)
            keys[args[0]] = me.keys.load(args[0], None)
            _say({"public": info.public.text})
        elif command == "make":
            folder, size = Path(args[0]), int(args[1]) * MIB
            folder.mkdir(parents=True)
            for i in range(4):
                with open(folder / f"model-{i:05d}-of-00004.safetensors", "wb") as f:
                    left = size // 4
                    while left:
                        chunk = min(left, 8 * MIB)
                        f.write(os.urandom(chunk))
                        left -= chunk
            (folder / "config.json").write_text('{"bench": true}\n')
            _say({})
        elif command == "publish":
            label, folder, name = args
            started = time.monotonic()
            me.publish(Path(folder), name, "v1", key=keys[label])
            _say({"returned": time.monotonic(), "seconds": time.monotonic() - started})
        elif command == "tiny":
            refs = publish_tiny(me, args[0], int(args[1]), Path(home) / "models")
            _say({"refs": refs})
    me.close()


def role_consumer(home: str, bootstrap: str) -> None:
    """`pull REF`: a plain pull in this running process (one-shot: it does not serve)."""
    me = client(Path(home), bootstrap, serve=False)
    for line in sys.stdin:
        _, ref = line.split()
        started = time.monotonic()
        result = me.pull(ref)
        done = time.monotonic()
        _say({"done": done, "seconds": done - started, "bytes": result.downloaded_bytes})
    me.close()


def role_mirror(
    home: str, bootstrap: str, poll: str, follow_json: str, prefetch: str, trace: str = ""
) -> None:
    """Follow each key of `follow_json` and run the daemon, polling every `poll` seconds.
    Prints one line per new version (`at`: monotonic time of the event), with `trace` one
    per resolve event too, and answers `sample` (usage, DHT traffic, keep-alive checks and
    mirror rounds so far)."""
    from hubless.services import daemon as daemon_module
    from hubless.services import keepalive
    from hubless.services.daemon import Daemon
    from hubless.services.mirror import MirrorOptions
    from hubless.services.poll import PollPolicy

    me = client(Path(home), bootstrap)
    follows = json.loads(follow_json)
    counts = {"checks": 0, "rounds": 0, "held": 0}
    lock = threading.Lock()
    check, mirror_round = keepalive.check, daemon_module.mirror_round

    def counted_check(ctx: Any, target: Any, **kwargs: Any) -> Any:
        result = check(ctx, target, **kwargs)
        with lock:
            counts["checks"] += 1
        return result

    def counted_round(ctx: Any, options: Any, now: float | None = None) -> int:
        with lock:
            counts["rounds"] += 1
        return int(mirror_round(ctx, options, now))

    keepalive.check = counted_check
    daemon_module.mirror_round = counted_round  # type: ignore[assignment]

    def on_new(done: Any) -> None:
        with lock:
            counts["held"] += 1
        _say({"reference": str(done.version.reference), "at": time.monotonic()})

    started = time.monotonic()
    if prefetch and follows:
        pull_all(me, json.loads(prefetch), threads=16)
    for key in follows:
        me.follow(key)
    options = MirrorOptions(policy=PollPolicy(interval=float(poll)), on_new_version=on_new)

    def on_event(event: Any) -> None:
        if event.stage == "resolve":
            _say({"event": event.message, "at": time.monotonic()})

    daemon = Daemon(me, mirror=options, on_event=on_event if trace else None).start()
    _say({"ready": time.monotonic() - started})
    for line in sys.stdin:
        if line.strip() == "sample":
            with lock:
                _say({**usage(), **traffic(me), **counts})
    daemon.close()
    me.close()


# --- (a) time to a new release ----------------------------------------------------------------


def _ask(proc: Any, command: str) -> dict[str, Any]:
    proc.stdin.write(command + "\n")
    proc.stdin.flush()
    answer: dict[str, Any] = json.loads(read_line(proc))
    return answer


def part_a(args: argparse.Namespace, bootstrap: str, root: Path, children: list[Any]) -> None:
    publisher = spawn_self(__file__, "--role", "publisher", str(root / "pub-a"), bootstrap)
    children.append(publisher)
    p_key = _ask(publisher, "key p")["public"]
    q_key = _ask(publisher, "key q")["public"]
    consumer = spawn_self(__file__, "--role", "consumer", str(root / "consumer"), bootstrap)
    children.append(consumer)
    # Warm up: the index of P exists before the mirror follows it; both clients have joined.
    _ask(publisher, f"make {root / 'warm'} 4")
    for label in ("p", "q"):
        _ask(publisher, f"publish {label} {root / 'warm'} warm")
    _ask(consumer, f"pull {q_key}/warm")
    mirror = spawn_self(
        __file__, "--role", "mirror", str(root / "mirror-a"), bootstrap,
        str(args.poll_interval), json.dumps([p_key]), "", "trace",
    )  # fmt: skip
    children.append(mirror)
    while "reference" not in json.loads(read_line(mirror)):
        pass  # ready, then events, then: holds the warm-up model
    print(f"\n(a) {args.mib} MiB model, mirror polling every {args.poll_interval:g}s")
    print(
        f"{'rep':>3s} {'publish s':>9s} {'pull s':>7s} {'mirror s':>9s} {'ratio':>6s} "
        f"{'aim: <=':>8s}      {'poll wait':>9s} {'mirror fetch':>12s} {'fetch/pull':>10s}"
    )
    pulls, mirrors, waits = [], [], []
    for rep in range(1, args.reps + 1):
        folder = root / f"model-{rep}"
        _ask(publisher, f"make {folder} {args.mib}")
        published = _ask(publisher, f"publish q {folder} m{rep}")
        pulled = _ask(consumer, f"pull {q_key}/m{rep}")
        pull_s = pulled["done"] - published["returned"]
        published = _ask(publisher, f"publish p {folder} m{rep}")
        found = None  # when the mirror's poll began resolving the new model
        while "reference" not in (seeded := json.loads(read_line(mirror))):
            if found is None and f"/m{rep} " in seeded["event"]:
                found = seeded["at"]
        assert seeded["reference"].startswith(f"{p_key}/m{rep}"), seeded
        mirror_s = seeded["at"] - published["returned"]
        waits.append(found - published["returned"] if found is not None else float("nan"))
        pulls.append(pull_s)
        mirrors.append(mirror_s)
        aim = pull_s + args.poll_interval + 2
        fetch_s = mirror_s - waits[-1]
        print(
            f"{rep:3d} {published['seconds']:9.1f} {pull_s:7.1f} {mirror_s:9.1f} "
            f"{mirror_s / pull_s:6.2f} {aim:8.1f} {'met' if mirror_s <= aim else 'MISSED':6s}"
            f"{waits[-1]:9.1f} {fetch_s:12.1f} {fetch_s / pull_s:10.2f}",
            flush=True,
        )
        shutil.rmtree(folder, ignore_errors=True)
    pull_m, mirror_m = statistics.median(pulls), statistics.median(mirrors)
    fetch_m = statistics.median(m - w for m, w in zip(mirrors, waits, strict=True))
    met = sum(m <= p + args.poll_interval + 2 for m, p in zip(mirrors, pulls, strict=True))
    print(
        f"median: pull {pull_m:.1f}s ({args.mib * MIB / pull_m / 1e6:.0f} MB/s), mirror "
        f"{mirror_m:.1f}s (ratio {mirror_m / pull_m:.2f}), of which the mirror's own fetch "
        f"{fetch_m:.1f}s (ratio {fetch_m / pull_m:.2f}); aim met {met} of {len(pulls)}. The "
        f"poll wait is up to {args.poll_interval * 1.1:g}s (the interval and 10% jitter) plus "
        "up to 1 s of the daemon's tick"
    )
    for proc in (mirror, consumer, publisher):
        proc.stdin.close()
        stop(proc)


# --- (b) at rest -------------------------------------------------------------------------------


def part_b(args: argparse.Namespace, root: Path, children: list[Any]) -> None:
    from hubless.net.testnet import spawn_testnet

    testnet, boot = spawn_testnet(args.nodes)
    children.append(testnet)
    bootstrap = ",".join(boot)
    began = time.monotonic()
    publisher = spawn_self(__file__, "--role", "publisher", str(root / "pub-b"), bootstrap)
    children.append(publisher)
    keys, refs = [], []
    for p in range(args.publishers):
        got = _ask(publisher, f"tiny k{p:03d} {args.models}")["refs"]
        refs += got
        keys.append(got[0].split("/")[0])
    print(
        f"\n(b) {len(keys)} publishers x {args.models} models published in "
        f"{time.monotonic() - began:.0f}s on a {args.nodes}-node testnet",
        flush=True,
    )
    poll = str(args.poll_interval_b)
    mirror = spawn_self(
        __file__, "--role", "mirror", str(root / "mirror-b"), bootstrap, poll, json.dumps(keys),
        json.dumps(refs) if args.prefetch else "",
    )  # fmt: skip
    empty = spawn_self(
        __file__, "--role", "mirror", str(root / "empty-b"), bootstrap, poll, "[]", ""
    )
    children += [mirror, empty]
    ready = json.loads(read_line(mirror))["ready"]
    json.loads(read_line(empty))
    held = 0
    while held < len(refs):
        line = json.loads(read_line(mirror))
        held += "reference" in line
    caught_up = time.monotonic() - began
    records = len(refs) + len(keys)  # each model's record and each publisher's index
    while (sample := _ask_mirror(mirror))["checks"] < records:
        time.sleep(2)
    print(
        f"mirror ready after {ready:.0f}s (pre-pulled: {bool(args.prefetch)}), holds all "
        f"{len(refs)} models after {caught_up:.0f}s, first keep-alive pass of {records} "
        f"records done; at rest for {args.idle:g}s",
        flush=True,
    )
    m0, e0 = sample, _ask_mirror(empty)
    t0 = time.monotonic()
    rss: dict[str, list[float]] = {"mirror": [], "empty": []}
    while (elapsed := time.monotonic() - t0) < args.idle:
        time.sleep(min(10.0, args.idle - elapsed))
        rss["mirror"].append(_ask_mirror(mirror)["rss_mib"])
        rss["empty"].append(_ask_mirror(empty)["rss_mib"])
    m1, e1 = _ask_mirror(mirror), _ask_mirror(empty)
    minutes = (time.monotonic() - t0) / 60

    def figures(s0: dict[str, Any], s1: dict[str, Any]) -> dict[str, float]:
        lt = sum(s1[f"lt_{d}"] - s0[f"lt_{d}"] for d in ("packets_sent", "packets_received"))
        kr = sum(s1[f"krpc_{d}"] - s0[f"krpc_{d}"] for d in ("packets_sent", "packets_received"))
        return {
            "cpu": 100 * (s1["cpu_s"] - s0["cpu_s"]) / (minutes * 60),
            "lt": lt / minutes,
            "krpc": kr / minutes,
            "rounds": s1["rounds"] - s0["rounds"],
            "checks": s1["checks"] - s0["checks"],
        }

    fm, fe = figures(m0, m1), figures(e0, e1)
    print(
        f"{'':30s} {'RSS MiB':>8s} {'CPU %':>7s} {'DHT pkts/min':>13s} {'(libtorrent':>12s} "
        f"{'KRPC)':>6s} {'polls':>6s} {'re-put checks':>14s}"
    )
    for label, f, mem in (
        (f"mirror, {len(refs)} models followed", fm, rss["mirror"]),
        ("daemon, empty home (peer)", fe, rss["empty"]),
    ):
        print(
            f"{label:30s} {max(mem):8.1f} {f['cpu']:7.2f} {f['lt'] + f['krpc']:13.0f} "
            f"{f['lt']:12.0f} {f['krpc']:6.0f} {f['rounds']:6.0f} {f['checks']:14.0f}"
        )
    print(
        f"{'ratio':30s} {max(rss['mirror']) / max(rss['empty']):8.2f} "
        f"{fm['cpu'] / max(fe['cpu'], 1e-9):7.2f} "
        f"{(fm['lt'] + fm['krpc']) / max(fe['lt'] + fe['krpc'], 1e-9):13.2f}"
    )
    print("queries libtorrent's node sent per minute, by kind:")
    for label, s0, s1 in (("mirror", m0, m1), ("empty", e0, e1)):
        kinds = ", ".join(f"{q} {(s1[f'q_{q}'] - s0[f'q_{q}']) / minutes:.0f}" for q in QUERIES)
        print(f"  {label}: {kinds}")
    follows = len(refs) + len(keys)
    gets = (m1["q_get"] - m0["q_get"]) / minutes * args.poll_interval_b / 60
    print(
        f"polling {follows} follows (each model's record, each publisher's index) every "
        f"{args.poll_interval_b:g}s: {gets:.0f} BEP-44 get queries per poll round, "
        f"{gets / follows:.1f} per follow (the nodes one lookup asks); get_peers and "
        "announce_peer are the seeding of "
        f"{2 * len(refs)} torrents (a content and a manifest torrent per model)"
    )
    for proc in (mirror, empty, publisher):
        proc.stdin.close()
        stop(proc)


def _ask_mirror(proc: Any) -> dict[str, Any]:
    """`sample`, skipping any new-version lines that arrive first."""
    proc.stdin.write("sample\n")
    proc.stdin.flush()
    while True:
        line: dict[str, Any] = json.loads(read_line(proc))
        if "rss_mib" in line:
            return line


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--part", choices=("a", "b", "both"), default="both")
    parser.add_argument("--mib", type=int, default=512, help="(a) model size")
    parser.add_argument("--reps", type=int, default=5, help="(a) releases timed")
    parser.add_argument("--poll-interval", type=float, default=10.0, help="(a) seconds")
    parser.add_argument("--publishers", type=int, default=50, help="(b) keys followed")
    parser.add_argument("--models", type=int, default=4, help="(b) models per key")
    parser.add_argument("--nodes", type=int, default=32, help="(b) testnet nodes")
    parser.add_argument("--idle", type=float, default=300.0, help="(b) seconds at rest")
    parser.add_argument("--poll-interval-b", type=float, default=60.0, help="(b) seconds")
    parser.add_argument(
        "--no-prefetch",
        dest="prefetch",
        action="store_false",
        help="(b) let the mirror fetch every model itself (slow: one at a "
        "time) instead of pulling them in parallel before following",
    )
    args = parser.parse_args()
    from hubless.net.testnet import spawn_testnet

    root = Path(tempfile.mkdtemp(prefix="hubless-mirror-"))
    children: list[Any] = []
    try:
        if args.part in ("a", "both"):
            testnet, boot = spawn_testnet(16)
            children.append(testnet)
            part_a(args, ",".join(boot), root, children)
        if args.part in ("b", "both"):
            part_b(args, root, children)
    finally:
        for child in children:
            if child.stdin is not None and not child.stdin.closed:
                child.stdin.close()
            stop(child)
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[1] == "--role":
        role, rest = sys.argv[2], sys.argv[3:]
        roles = {"publisher": role_publisher, "consumer": role_consumer, "mirror": role_mirror}
        roles[role](*rest)  # type: ignore[operator]
    else:
        main()
