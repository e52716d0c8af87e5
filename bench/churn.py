"""Records under churn: how many stay resolvable once their publisher is offline.

    python bench/churn.py [--nodes 100] [--groups 4] [--records 50] [--rounds 10]
                          [--interval 60]

A loopback testnet of `--nodes` DHT nodes runs in `--groups` processes (addressed as
`hubless.net.testnet` addresses them: a loopback /24 each). A publisher publishes
`--records` models under each of three keys, A, B and C, and goes offline. Keeper homes pull
models and run the daemon (`hubless.Daemon`, re-putting every `--interval` seconds): key A's
models have no keeper, B's one, C's three. Every round restarts 20% of the nodes (all but
the bootstrap node) with new ids on new addresses, so they forget every item (a restarted
node joins through the bootstrap node and 8 nodes alive when it left); then waits `--wait`
seconds (default: one re-put interval) and counts, from a fresh session, the records whose
verified record a libtorrent lookup finds (spec §8.1 step 2). A round lasts the wait plus
the count (50 lookups at a time, each waiting up to 15 s on departed nodes).

The fresh session joins through the bootstrap node alone, as a new client would; when that
fails it joins through 8 live nodes as well, like a client with a saved routing table, and
the row says so. Records it missed are looked up once more by a fresh KRPC traversal: the
row says how many some node still held (a lookup that failed, not a lost record). Then what
each keeper's checks did in the round: re-puts/checks, the median check time, how many
nodes its KRPC client skips as silent and how many of those are in fact alive. At the end:
each keeper's resident memory, CPU time and KRPC traffic.

Setup pulls 4 x `--records` models; on a small machine try `--nodes 40 --records 10
--rounds 3 --interval 20` first.

Results (2 shared cores, other work running; defaults: 100 nodes in 4 processes, 50 records
per key, 10 rounds, --interval 60, so each record was checked about twice per round; a
round lasted ~115 s, the run 21 minutes). Records resolvable:

    round        0      1      2      3      4      5      6      7      8      9     10
    A (none)   100%   100%   100%   100%    92%    86%    80%    82%    74%    68%    64%
    B (one)    100%   100%   100%   100%   100%   100%   100%   100%   100%   100%   100%
    C (three)  100%   100%   100%   100%   100%   100%   100%   100%   100%   100%   100%

Of A's misses, a second look found one still held, once; every other miss was gone from the
DHT. The keepers' checks took under 0.1 s (median); they skipped up to 184 silent nodes, none
alive. Keeper k1 (102 records: B's and C's models and indexes) re-put 23-38 records a round
and sent 41,517 KRPC datagrams (4.5 MB) in the run, k2 and k3 (51 records) half that; each
keeper 59-61 MiB resident, k1 73 s of CPU.

Earlier builds, same settings. Before the keep-alive fixes (each check waited on a libtorrent
lookup, 15-18 s under churn; a daemon's puts queued on one socket): B 100% and C 100% but
for one 98% round, until the count failed to join through the bootstrap node in round 8 (it
now falls back to live nodes). With the KRPC lookup and a socket per thread: B and C 100%,
but k1's checks per round fell from 202 to 117 as departed nodes piled up. Skipping silent
nodes without first reading queued answers: B dipped to 96% and C to 88% in single rounds
(that run also counted all 150 records at once).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import random
import shutil
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from homes import client, publish_tiny, pull_all, usage
from procs import read_line, spawn_self, stop

KEYS = ("a", "b", "c")  # key A: no keeper, B: one, C: three
KEEPERS = {"k1": ("b", "c"), "k2": ("c",), "k3": ("c",)}
RESTART_FRACTION = 0.2
Endpoint = tuple[str, int]


# --- node groups --------------------------------------------------------------------------------


def _node(index: int, host_base: str = "127.0.0.1") -> Any:
    """A DHT-only libtorrent node, addressed as `hubless.net.testnet` addresses node `index`."""
    import libtorrent as lt
    from hubless.net.profile import NetProfile, settings_for
    from hubless.net.testnet import _NODE_SETTINGS, _node_host

    settings = settings_for(NetProfile.local((), host=_node_host(host_base, index), port=0))
    settings.update(_NODE_SETTINGS)
    settings["max_retry_port_bind"] = 10  # any free port: a restarted node comes back elsewhere
    settings["dht_restrict_routing_ips"] = True
    return lt.session(settings)


def _endpoint(index: int, session: Any) -> list[Any]:
    from hubless.net.testnet import _node_host

    return [_node_host("127.0.0.1", index), int(session.listen_port())]


def _parse(text: str) -> list[Endpoint]:
    found = []
    for part in filter(None, text.split(",")):
        host, _, port = part.rpartition(":")
        found.append((host, int(port)))
    return found


def _text(endpoints: Any) -> str:
    return ",".join(f"{h}:{p}" for h, p in endpoints)


def role_nodes(first: str, last: str, total: str, seed_nodes: str) -> None:
    """Run nodes first..last-1 of `total`; `seed_nodes` is `host:port,...` to join through
    (empty for the group holding node 0). Commands on stdin: `join host:port,...` (every
    node's endpoint), `known host:port,...` (the live nodes, for restarted nodes to join
    through), `restart i,j,...` (new sessions: new ids, new addresses, empty stores; like a
    node that left and another that joined)."""
    generation = {i: 0 for i in range(int(first), int(last))}

    def address(i: int) -> int:
        return i + int(total) * generation[i]

    sessions = {i: _node(address(i)) for i in generation}
    known: list[Endpoint] = []
    lock = threading.Lock()

    def join(endpoints: list[Endpoint], only: list[int] | None = None) -> None:
        for i in only if only is not None else list(sessions):
            for endpoint in endpoints:
                sessions[i].add_dht_node(endpoint)

    stop_drain = threading.Event()

    def drain() -> None:
        while not stop_drain.wait(1.0):
            with lock:
                for session in sessions.values():
                    session.pop_alerts()

    threading.Thread(target=drain, daemon=True).start()
    known.extend(_parse(seed_nodes))
    join(known)
    print(json.dumps({str(i): _endpoint(address(i), s) for i, s in sessions.items()}), flush=True)
    for line in sys.stdin:
        command, _, arg = line.strip().partition(" ")
        if command == "join":
            known[:] = _parse(arg)
            join(known)
            print("{}", flush=True)
        elif command == "known":
            known[:] = _parse(arg)
            print("{}", flush=True)
        elif command == "restart":
            chosen = [int(i) for i in arg.split(",") if i]
            with lock:
                for i in chosen:
                    sessions.pop(i).pause()  # its routing table and items go with it
                for i in chosen:
                    generation[i] += 1
                    sessions[i] = _node(address(i))
                    # A restarted node knows the bootstrap node and a few others, like a
                    # client that kept a handful of nodes from its last run.
                    join(known[:1] + random.sample(known, min(8, len(known))), only=[i])
            found = {str(i): _endpoint(address(i), sessions[i]) for i in chosen}
            print(json.dumps(found), flush=True)
    stop_drain.set()


# --- the publisher and the keepers --------------------------------------------------------------


def role_publish(home: str, bootstrap: str, records: str) -> None:
    """Publish `records` tiny models under each key; print the references; serve until EOF."""
    me = client(Path(home), bootstrap)
    refs = {name: publish_tiny(me, name, int(records), Path(home) / "models") for name in KEYS}
    print(json.dumps(refs), flush=True)
    sys.stdin.read()  # serve until the bench closes our stdin: then the publisher is gone
    me.close()


def role_keep(home: str, bootstrap: str, interval: str, refs_json: str) -> None:
    """Pull every reference, then run the daemon; on `stats`, print what its checks did
    since the last `stats` (outcomes, slowest check, KRPC traffic), RSS and CPU."""
    from dataclasses import asdict

    from hubless.services import keepalive
    from hubless.services.daemon import Daemon

    me = client(Path(home), bootstrap)
    pull_all(me, json.loads(refs_json))
    # Count every check's outcome: the status table keeps only the last one per record.
    outcomes: dict[str, int] = {}
    seconds: list[float] = []
    lock = threading.Lock()
    check = keepalive.check

    def counted(ctx: Any, target: Any, **kwargs: Any) -> Any:
        started = time.monotonic()
        result = check(ctx, target, **kwargs)
        with lock:
            outcomes[result.outcome] = outcomes.get(result.outcome, 0) + 1
            seconds.append(time.monotonic() - started)
        return result

    keepalive.check = counted
    daemon = Daemon(me, republish_interval=float(interval)).start()
    print("ready", flush=True)
    for line in sys.stdin:
        if line.strip() == "stats":
            with lock:
                dht = me.ctx.network.dht
                took = sorted(seconds)
                report = {
                    "checks": dict(outcomes),
                    "p50_s": round(took[len(took) // 2], 1) if took else None,
                    "krpc": asdict(dht.krpc_traffic),
                    "silent": dht.silent.addresses(time.monotonic()),
                    **usage(),
                }
                outcomes.clear()
                seconds.clear()
            print(json.dumps(report), flush=True)
    daemon.close()
    me.close()


# --- the bench ----------------------------------------------------------------------------------


def _resolvable(
    node0: Endpoint, live: list[Endpoint], refs: dict[str, list[str]]
) -> tuple[dict[str, float], str]:
    """Per key, the fraction of records a fresh session finds verified (§8.1 step 2); and a
    note on how it joined, how long the lookups took, and how many of the records it missed
    a second look (a fresh KRPC traversal) still found on some node."""
    from hubless.core.errors import HublessError, NetTimeoutError
    from hubless.core.refs import parse_reference
    from hubless.core.trust import choose_record
    from hubless.net.profile import NetProfile
    from hubless.net.session import open_session

    started = time.monotonic()
    took: list[float] = []
    timeouts = 0
    joined = "joined via node 0"
    try:
        session = open_session(NetProfile.local((node0,)), dht_timeout=15)
    except NetTimeoutError:
        joined = "JOIN VIA NODE 0 FAILED, joined via 8 live nodes"
        session = open_session(NetProfile.local((node0, *random.sample(live, 8))))
    joined_at = time.monotonic()
    with session:

        def ok(text: str) -> bool:
            nonlocal timeouts
            ref = parse_reference(text)
            begun = time.monotonic()
            try:
                # 30 s, a client's default: a lookup near departed nodes waits out
                # libtorrent's 15 s RPC timeout, which is churn too, not a lost record.
                items = session.dht_get(ref.publisher, ref.salt, 30)
                choose_record(items, ref.publisher, ref.name, now=int(time.time()))
                return True
            except NetTimeoutError:
                timeouts += 1
                return False
            except HublessError:
                return False
            finally:
                took.append(time.monotonic() - begun)

        with ThreadPoolExecutor(50) as pool:  # each lookup may wait 15 s on departed nodes
            futures = {name: [pool.submit(ok, r) for r in keyed] for name, keyed in refs.items()}
            results = {n: [f.result() for f in fs] for n, fs in futures.items()}
    looked_at = time.monotonic()
    found = {n: sum(r) / len(r) for n, r in results.items()}
    missed = [
        r for n, keyed in refs.items() for r, ok in zip(keyed, results[n], strict=True) if not ok
    ]
    with ThreadPoolExecutor(8) as pool:
        second = list(pool.map(lambda ref: _held_somewhere(node0, ref), missed))
    held = {ref for ref, yes in zip(missed, second, strict=True) if yes}
    by_key = {k: sum(ref in held for ref in refs[k]) for k in KEYS}
    took.sort()
    note = (
        f"{joined}; lookups p50 {took[len(took) // 2]:.0f}s max {took[-1]:.0f}s"
        f"{f', {timeouts} timed out' if timeouts else ''}; count {looked_at - started:.0f}s "
        f"(join {joined_at - started:.0f}s)"
    )
    if missed:
        note += f"; missed but held on some node: {by_key}"
    return found, note


def _held_somewhere(node0: Endpoint, text: str) -> bool:
    """Whether a fresh KRPC traversal (no memory of silent nodes) meets a verified record."""
    from hubless.core.errors import HublessError
    from hubless.core.refs import parse_reference
    from hubless.core.trust import choose_record
    from hubless.net.krpc import KrpcConfig, lookup_item

    ref = parse_reference(text)
    lookup = lookup_item(ref.publisher.raw, ref.salt, [node0], KrpcConfig(timeout=10.0))
    try:
        choose_record(list(lookup.items), ref.publisher, ref.name, now=int(time.time()))
    except HublessError:
        return False
    return True


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--nodes", type=int, default=100)
    parser.add_argument("--groups", type=int, default=4, help="node processes")
    parser.add_argument("--records", type=int, default=50, help="models per key")
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument(
        "--interval",
        type=float,
        default=60.0,
        help="re-put seconds; a round is this plus the count",
    )
    parser.add_argument(
        "--wait", type=float, help="seconds from the restarts to the count (default: --interval)"
    )
    parser.add_argument("--seed", type=int, default=1, help="which nodes restart")
    args = parser.parse_args()
    if importlib.util.find_spec("hubless.net.krpc") is None:
        sys.exit(
            "this build has no verbatim re-put (hubless.net.krpc): keepers cannot keep "
            "others' records alive, so there is nothing to measure yet"
        )
    rng = random.Random(args.seed)
    children: list[Any] = []
    groups: list[Any] = []
    began = time.monotonic()
    root = Path(tempfile.mkdtemp(prefix="hubless-churn-"))
    try:
        per = -(-args.nodes // args.groups)
        total = str(args.nodes)
        first = spawn_self(__file__, "--role", "nodes", "0", str(per), total, "")
        children.append(first)
        groups.append(first)
        owner: dict[int, Any] = {i: first for i in range(per)}
        endpoints = {int(i): tuple(e) for i, e in json.loads(read_line(first)).items()}
        node0: Endpoint = endpoints[0]  # type: ignore[assignment]
        bootstrap = _text([node0])
        for start in range(per, args.nodes, per):
            end = min(start + per, args.nodes)
            group = spawn_self(__file__, "--role", "nodes", str(start), str(end), total, bootstrap)
            children.append(group)
            groups.append(group)
            owner.update({i: group for i in range(start, end)})
            endpoints.update({int(i): tuple(e) for i, e in json.loads(read_line(group)).items()})
        for group in groups:
            _ask(group, f"join {_text(endpoints.values())}")
        print(f"testnet: {args.nodes} nodes in {len(groups)} processes, bootstrap {bootstrap}")

        publisher = spawn_self(
            __file__, "--role", "publish", str(root / "publisher"), bootstrap, str(args.records)
        )
        children.append(publisher)
        started = time.monotonic()
        refs: dict[str, list[str]] = json.loads(read_line(publisher))
        print(f"published {len(KEYS)} x {args.records} models in {time.monotonic() - started:.0f}s")
        keepers = {}
        for label, keys in KEEPERS.items():
            wanted = [ref for name in keys for ref in refs[name]]
            keeper = spawn_self(
                __file__, "--role", "keep", str(root / label), bootstrap, str(args.interval),
                json.dumps(wanted),
            )  # fmt: skip
            children.append(keeper)
            keepers[label] = keeper
        for keeper in keepers.values():
            assert read_line(keeper) == "ready"
        print(f"keepers ready after {time.monotonic() - started:.0f}s; the publisher goes offline")
        assert publisher.stdin is not None
        publisher.stdin.close()
        publisher.wait(60)

        def row(label: str) -> str:
            live = [e for i, e in endpoints.items() if i != 0]
            found, note = _resolvable(node0, live, refs)  # type: ignore[arg-type]
            puts = []
            current = set(endpoints.values())
            for name, keeper in keepers.items():
                stats = json.loads(_ask(keeper, "stats"))
                checks = stats["checks"]
                silent = [tuple(a) for a in stats["silent"]]
                wrong = sum(a in current for a in silent)  # a live node taken for silent
                puts.append(
                    f"{name} {checks.get('put', 0)}/{sum(checks.values())} "
                    f"(p50 {stats['p50_s']}s, {len(silent)} silent, {wrong} of them alive)"
                )
            cells = "  ".join(f"{100 * found[k]:9.1f}%" for k in KEYS)
            return f"{label:>5s} {time.monotonic() - began:6.0f}s  {cells}   {note}; " + (
                "re-puts/checks " + ", ".join(puts)
            )

        print("round   time  " + "  ".join(f"{k.upper()} ({n} kept)" for k, n in _keepers()))
        print(row("0"), flush=True)
        for round_no in range(1, args.rounds + 1):
            chosen = rng.sample(range(1, args.nodes), round(RESTART_FRACTION * (args.nodes - 1)))
            for group in groups:
                mine = [i for i in chosen if owner[i] is group]
                if mine:
                    moved = json.loads(_ask(group, "restart " + ",".join(map(str, mine))))
                    endpoints.update({int(i): tuple(e) for i, e in moved.items()})
            for group in groups:
                _ask(group, f"known {_text(endpoints.values())}")
            time.sleep(args.interval if args.wait is None else args.wait)
            print(row(str(round_no)), flush=True)
        for label, keeper in keepers.items():
            stats = json.loads(_ask(keeper, "stats"))
            krpc = stats["krpc"]
            print(
                f"keeper {label}: RSS {stats['rss_mib']:.0f} MiB, CPU {stats['cpu_s']:.0f} s, "
                f"KRPC {krpc['packets_sent']} datagrams / {krpc['bytes_sent']:,} bytes sent"
            )
    finally:
        for child in children:
            if child.stdin is not None and not child.stdin.closed:
                child.stdin.close()
            stop(child)
        shutil.rmtree(root, ignore_errors=True)


def _keepers() -> list[tuple[str, int]]:
    return [(k, sum(k in keys for keys in KEEPERS.values())) for k in KEYS]


def _ask(proc: Any, command: str) -> str:
    proc.stdin.write(command + "\n")
    proc.stdin.flush()
    return read_line(proc)


if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[1] == "--role":
        role, rest = sys.argv[2], sys.argv[3:]
        {"nodes": role_nodes, "publish": role_publish, "keep": role_keep}[role](*rest)  # type: ignore[operator]
    else:
        main()
