"""The daemon at rest with 200 kept-alive records: memory, CPU, DHT traffic, re-put cost.

    python bench/daemon_idle.py [--nodes 100] [--records 200] [--publishers 4] [--idle 180]
                                [--interval 1800]

A loopback testnet of `--nodes` nodes runs in its own process (on fixed ports, so that it
can be restarted: its nodes then forget every item). A publisher publishes `--records` tiny
models under `--publishers` keys and goes offline; a keeper home pulls them all and runs
the daemon (`hubless.Daemon`, what `hubless seed` runs, re-putting every `--interval`
seconds): it keeps every model's record and each publisher's index alive. The peer, run at
the same time, is a daemon on an empty home.

1. Idle: once the keeper has checked every record once, both are left alone for `--idle`
   seconds; resident memory (/proc), CPU time and DHT datagrams per minute (libtorrent's
   session counters plus the KRPC client's tallies) of each.
2. Cost of one keep-alive check, per record (one check per record per interval): every
   record checked once while the DHT holds it (BEP-44 back-off: a get, no put), then after
   a testnet restart (the DHT forgot it: get, re-put), against the operations libtorrent
   itself offers in the same session: a plain get (what a consumer's resolve costs) and a
   signed put of a payload of a record's size (what the key holder's republish costs).

Results (2 shared cores, other work running; defaults: 100 nodes, 200 models under 4 keys,
so 204 records, re-put interval 1800 s, 180 s at rest):

                                     RSS MiB    CPU %   DHT pkts/min
    daemon, kept-alive records          65.6     1.32            952
    daemon, empty home (peer)           46.2     0.29             24
    ratio                               1.42     4.47          39.67

No check fell in the window (the next pass is due 24-30 minutes after the first), so all of
it is libtorrent's own node: consistent with announcing its 400 torrents (a content and a
manifest torrent per model) every 15 minutes, libtorrent's default, as any seeder does.

    per record, one check              packets  bytes out   bytes in   vs libtorrent put
    DHT holds it (back-off, no put)       35.6       1763       7275       1.04
    DHT forgot it (get, re-put)           51.7       4133       6202       1.50
    libtorrent get (consumer's lookup)    22.2       1053       5095       0.64
    libtorrent signed put (key holder)    34.4       3218       3476       1.00

So keeping a record alive costs 36-52 datagrams and 9-10 kB per interval, 1.0-1.5 times the
key holder's own signed put; 204 records at the 1800 s default cost 4.0 datagrams/s. A check
is two traversals: a plain get for spec §8.5 rule 2 (full items, most of the bytes in) and
the re-put's own get asking with `seq`. 204 checks took 4.1 s (held) and 4.4 s (after the
restart) at 8 at a time.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from homes import client, free_port, publish_tiny, pull_all, start_testnet, traffic, usage
from procs import read_line, spawn_self, stop

RECORD_PAYLOAD = 80  # bytes: a record's msgpack payload (spec §4.3) is 79-81 bytes


# --- child processes --------------------------------------------------------------------------


def role_publish(home: str, bootstrap: str, publishers: str, records: str) -> None:
    """Publish `records` models under `publishers` keys; print the references; serve until
    stdin closes (then the publisher is offline)."""
    me = client(Path(home), bootstrap)
    per = -(-int(records) // int(publishers))
    refs: list[str] = []
    for p in range(int(publishers)):
        count = min(per, int(records) - len(refs))
        refs += publish_tiny(me, f"p{p:02d}", count, Path(home) / "models")
    print(json.dumps(refs), flush=True)
    sys.stdin.read()
    me.close()


def role_keep(home: str, bootstrap: str, interval: str, refs_json: str) -> None:
    """Pull, run the daemon; answer commands on stdin with one JSON line each:
    `sample` (usage, traffic, checks so far), `stop` (the daemon), `check` (every kept
    record checked once, on 8 threads, by the daemon's own check), `peer N` (N plain
    libtorrent gets and N signed puts)."""
    from hubless.services import keepalive
    from hubless.services.daemon import Daemon

    me = client(Path(home), bootstrap)
    refs = json.loads(refs_json)
    if refs:
        pull_all(me, refs, threads=16)
    checks = {"n": 0}
    lock = threading.Lock()
    original = keepalive.check

    def counted(ctx: Any, target: Any, **kwargs: Any) -> Any:
        result = original(ctx, target, **kwargs)
        with lock:
            checks["n"] += 1
        return result

    keepalive.check = counted
    daemon: Any = Daemon(me, republish_interval=float(interval)).start()
    targets = len(keepalive.targets(me.ctx))
    print(json.dumps({"targets": targets}), flush=True)
    for line in sys.stdin:
        command, _, arg = line.strip().partition(" ")
        if command == "sample":
            out: dict[str, Any] = {**usage(), **traffic(me), "checks": checks["n"]}
        elif command == "stop":
            daemon.close()
            out = {}
        elif command == "check":
            out = _check_all(me, original)
        elif command == "peer":
            out = _peer(me, refs, int(arg))
        else:
            out = {"error": f"unknown command {command!r}"}
        print(json.dumps(out), flush=True)
    me.close()


def _check_all(me: Any, check: Any) -> dict[str, Any]:
    """Every kept record checked once (8 at a time, as the daemon's workers); the outcomes
    and the DHT traffic the whole took."""
    from hubless.services import keepalive

    targets = keepalive.targets(me.ctx)
    local = threading.local()
    outcomes: dict[str, int] = {}
    lock = threading.Lock()

    def one(target: Any) -> None:
        ctx = getattr(local, "ctx", None) or me.ctx.worker(serve=True)
        local.ctx = ctx
        result = check(ctx, target)
        with lock:
            outcomes[result.outcome] = outcomes.get(result.outcome, 0) + 1

    before, started = traffic(me), time.monotonic()
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(one, targets))
    after = traffic(me)
    return {
        "records": len(targets),
        "outcomes": outcomes,
        "seconds": time.monotonic() - started,
        **{k: after[k] - before[k] for k in after},
    }


def _peer(me: Any, refs: list[str], count: int) -> dict[str, Any]:
    """`count` plain libtorrent gets of kept records, then `count` signed libtorrent puts of
    a record-sized payload under a throwaway key; the traffic of each batch."""
    import os

    from hubless.core.keys import SigningKey
    from hubless.core.refs import parse_reference

    network = me.ctx.network
    key = SigningKey(os.urandom(32))
    chosen = [parse_reference(r) for r in refs[:count]]
    out: dict[str, Any] = {"count": len(chosen)}
    for label, op in (
        ("get", lambda ref: network.dht_get(ref.publisher, ref.salt, 30)),
        ("put", lambda ref: network.dht_put(key, ref.salt, os.urandom(RECORD_PAYLOAD), 30)),
    ):
        before = traffic(me)
        with ThreadPoolExecutor(8) as pool:
            list(pool.map(op, chosen))
        after = traffic(me)
        out[label] = {k: after[k] - before[k] for k in after}
    return out


# --- the bench --------------------------------------------------------------------------------


def _ask(proc: Any, command: str) -> dict[str, Any]:
    proc.stdin.write(command + "\n")
    proc.stdin.flush()
    answer: dict[str, Any] = json.loads(read_line(proc))
    return answer


def _packets(t: dict[str, Any]) -> int:
    return int(
        sum(t[f"{s}_{d}"] for s in ("lt", "krpc") for d in ("packets_sent", "packets_received"))
    )


def _cost_row(label: str, t: dict[str, Any], n: int, unit: float) -> str:
    packets = _packets(t) / n
    sent = (t["lt_bytes_sent"] + t["krpc_bytes_sent"]) / n
    received = (t["lt_bytes_received"] + t["krpc_bytes_received"]) / n
    return f"{label:44s} {packets:8.1f} {sent:10.0f} {received:10.0f} {packets / unit:10.2f}"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--nodes", type=int, default=100)
    parser.add_argument("--records", type=int, default=200, help="models kept alive")
    parser.add_argument("--publishers", type=int, default=4, help="keys the models are under")
    parser.add_argument("--idle", type=float, default=180.0, help="seconds measured at rest")
    parser.add_argument("--interval", type=float, default=1800.0, help="re-put seconds")
    parser.add_argument("--peer-ops", type=int, default=50, help="libtorrent gets/puts")
    args = parser.parse_args()

    root = Path(tempfile.mkdtemp(prefix="hubless-idle-"))
    children: list[Any] = []
    port = free_port()
    testnet, bootstrap = start_testnet(args.nodes, port)
    try:
        print(f"testnet: {args.nodes} nodes, bootstrap {bootstrap}", flush=True)
        started = time.monotonic()
        publisher = spawn_self(
            __file__, "--role", "publish", str(root / "publisher"), bootstrap,
            str(args.publishers), str(args.records),
        )  # fmt: skip
        children.append(publisher)
        refs = json.loads(read_line(publisher))
        print(f"published {len(refs)} models in {time.monotonic() - started:.0f}s", flush=True)
        keeper = spawn_self(
            __file__, "--role", "keep", str(root / "keeper"), bootstrap, str(args.interval),
            json.dumps(refs),
        )  # fmt: skip
        empty = spawn_self(
            __file__, "--role", "keep", str(root / "empty"), bootstrap, str(args.interval), "[]"
        )
        children += [keeper, empty]
        targets = json.loads(read_line(keeper))["targets"]
        read_line(empty)
        print(
            f"keeper pulled and serves {len(refs)} models after "
            f"{time.monotonic() - started:.0f}s; {targets} records to keep alive; "
            "the publisher goes offline",
            flush=True,
        )
        publisher.stdin.close()
        stop(publisher)
        while (done := _ask(keeper, "sample")["checks"]) < targets:
            time.sleep(2)
        print(f"first keep-alive pass done ({done} checks); idle for {args.idle:g}s", flush=True)

        a0, e0 = _ask(keeper, "sample"), _ask(empty, "sample")
        t0 = time.monotonic()
        rss: dict[str, list[float]] = {"keeper": [], "empty": []}
        while time.monotonic() - t0 < args.idle:
            time.sleep(min(10.0, max(0.0, args.idle - (time.monotonic() - t0))))
            for name, proc in (("keeper", keeper), ("empty", empty)):
                rss[name].append(_ask(proc, "sample")["rss_mib"])
        a1, e1 = _ask(keeper, "sample"), _ask(empty, "sample")
        minutes = (time.monotonic() - t0) / 60
        idle_checks = a1["checks"] - a0["checks"]

        def idle_row(
            label: str, s0: dict[str, Any], s1: dict[str, Any], mem: list[float]
        ) -> tuple[str, float, float, float]:
            cpu = 100 * (s1["cpu_s"] - s0["cpu_s"]) / (minutes * 60)
            per_min = (_packets(s1) - _packets(s0)) / minutes
            row = f"{label:34s} {max(mem):9.1f} {cpu:8.2f} {per_min:14.0f}"
            return row, cpu, per_min, max(mem)

        k_row, k_cpu, k_pkt, k_rss = idle_row("daemon, kept-alive records", a0, a1, rss["keeper"])
        e_row, e_cpu, e_pkt, e_rss = idle_row("daemon, empty home (peer)", e0, e1, rss["empty"])
        print()
        print(
            f"at rest for {minutes * 60:.0f}s, re-put interval {args.interval:g}s "
            f"({targets} records, {idle_checks} checks in the window)"
        )
        print(f"{'':34s} {'RSS MiB':>9s} {'CPU %':>8s} {'DHT pkts/min':>14s}")
        print(k_row)
        print(e_row)
        print(
            f"{'ratio':34s} {k_rss / e_rss:9.2f} {k_cpu / max(e_cpu, 1e-9):8.2f} "
            f"{k_pkt / max(e_pkt, 1e-9):14.2f}"
        )

        _ask(keeper, "stop")
        held = _ask(keeper, "check")
        testnet.terminate()
        testnet.wait(30)
        testnet, _ = start_testnet(args.nodes, port)
        time.sleep(5)  # the keeper's session notices the new node ids on its next queries
        forgot = _ask(keeper, "check")
        peer = _ask(keeper, f"peer {args.peer_ops}")
        put_unit = _packets(peer["put"]) / peer["count"]
        print()
        print("cost of one keep-alive check per record (a record is checked once per interval)")
        print(f"{'':44s} {'packets':>8s} {'bytes out':>10s} {'bytes in':>10s} {'vs lt put':>10s}")
        print(_cost_row(f"check, DHT holds it {held['outcomes']}", held, held["records"], put_unit))
        print(
            _cost_row(
                f"check, DHT forgot it {forgot['outcomes']}", forgot, forgot["records"], put_unit
            )
        )
        print(
            _cost_row("libtorrent get (a consumer's lookup)", peer["get"], peer["count"], put_unit)
        )
        print(
            _cost_row(
                "libtorrent signed put (the key holder's)", peer["put"], peer["count"], put_unit
            )
        )
        rate = targets * _packets(held) / held["records"] / args.interval
        print(
            f"checks of {targets} records: {held['seconds']:.1f}s when held, "
            f"{forgot['seconds']:.1f}s after the restart (8 at a time); at the "
            f"{args.interval:g}s interval, keeping them alive costs {rate:.2f} packets/s "
            "while the DHT holds them"
        )
    finally:
        for child in children:
            if child.stdin is not None and not child.stdin.closed:
                child.stdin.close()
            stop(child)
        stop(testnet)
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[1] == "--role":
        role, rest = sys.argv[2], sys.argv[3:]
        {"publish": role_publish, "keep": role_keep}[role](*rest)  # type: ignore[operator]
    else:
        main()
