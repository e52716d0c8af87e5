"""Records under churn: how many stay resolvable once their publisher is offline.

    python bench/churn.py [--nodes 100] [--groups 4] [--records 50] [--rounds 10]
                          [--interval 20]

A loopback testnet of `--nodes` DHT nodes runs in `--groups` processes (addressed as
`hubless.net.testnet` addresses them: a loopback /24 each). A publisher
publishes `--records` models under each of three keys, A, B and C, and goes offline. Keeper
homes pull models and run the daemon (`hubless.Daemon`, re-putting every `--interval`
seconds): key A's models have no keeper, B's one, C's three. Every round restarts 20% of the
nodes (all but the bootstrap node) with new ids on new addresses, so they forget every item; then
waits one interval and counts, from a fresh session, the records whose verified record a
lookup finds (spec §8.1 step 2). Prints one row per round, then each keeper's put outcomes,
resident memory and CPU time.

Needs the verbatim re-put (`hubless.net.krpc`): without it keepers can keep nothing alive and
the bench says so and stops. Setup alone pulls 4 x `--records` models; on a small machine
try `--nodes 40 --records 10 --rounds 3 --interval 10` first.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import json
import os
import random
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from procs import read_line, spawn_self, stop

KEYS = ("a", "b", "c")  # key A: no keeper, B: one, C: three
KEEPERS = {"k1": ("b", "c"), "k2": ("c",), "k3": ("c",)}
RESTART_FRACTION = 0.2


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


def role_nodes(first: str, last: str, total: str, seed_nodes: str) -> None:
    """Run nodes first..last-1 of `total`; `seed_nodes` is `host:port,...` to join through
    (empty for the group holding node 0). Commands on stdin: `join host:port,...` (every
    node's endpoint), `restart i,j,...` (new sessions: new ids, new addresses, empty stores;
    like a node that left and another that joined)."""
    generation = {i: 0 for i in range(int(first), int(last))}

    def address(i: int) -> int:
        return i + int(total) * generation[i]

    sessions = {i: _node(address(i)) for i in generation}
    known: list[tuple[str, int]] = []

    def join(endpoints: list[tuple[str, int]], only: list[int] | None = None) -> None:
        for i in only if only is not None else list(sessions):
            for endpoint in endpoints:
                sessions[i].add_dht_node(endpoint)

    def parse(text: str) -> list[tuple[str, int]]:
        found = []
        for part in filter(None, text.split(",")):
            host, _, port = part.rpartition(":")
            found.append((host, int(port)))
        return found

    stop_drain = threading.Event()

    def drain() -> None:
        while not stop_drain.wait(1.0):
            for session in list(sessions.values()):
                session.pop_alerts()

    threading.Thread(target=drain, daemon=True).start()
    known.extend(parse(seed_nodes))
    join(known)
    print(json.dumps({str(i): _endpoint(address(i), s) for i, s in sessions.items()}), flush=True)
    for line in sys.stdin:
        command, _, arg = line.strip().partition(" ")
        if command == "join":
            known[:] = parse(arg)
            join(known)
            print("{}", flush=True)
        elif command == "restart":
            chosen = [int(i) for i in arg.split(",") if i]
            for i in chosen:
                sessions[i].pause()
                del sessions[i]  # its routing table and stored items are gone with it
            for i in chosen:
                generation[i] += 1
                sessions[i] = _node(address(i))
                # A restarted node knows the bootstrap node and a few others, like a client
                # that kept a handful of nodes from its last run.
                join(known[:1] + random.sample(known, min(8, len(known))), only=[i])
            found = {str(i): _endpoint(address(i), sessions[i]) for i in chosen}
            print(json.dumps(found), flush=True)
    stop_drain.set()


# --- the publisher and the keepers --------------------------------------------------------------


def _client(home: Path, bootstrap: str) -> Any:
    from hubless.config import Config
    from hubless.services.client import Client

    return Client(Config.resolve({"HUBLESS_BOOTSTRAP": bootstrap}, home=home), serve=True)


def role_publish(home: str, bootstrap: str, records: str) -> None:
    """Publish `records` tiny models under each key; print the references; serve until EOF."""
    client = _client(Path(home), bootstrap)
    refs: dict[str, list[str]] = {}
    for name in KEYS:
        info = client.keys.create(name, None)
        key = client.keys.load(name, None)
        refs[name] = []
        for i in range(int(records)):
            folder = Path(home) / "models" / name / f"m{i:03d}"
            folder.mkdir(parents=True)
            (folder / "weights.bin").write_bytes(
                hashlib.sha256(f"{name}{i}".encode()).digest() * 64
            )
            client.publish(folder, f"m{i:03d}", "v1", key=key)
            refs[name].append(f"{info.public.text}/m{i:03d}")
    print(json.dumps(refs), flush=True)
    sys.stdin.read()  # serve until the bench closes our stdin: then the publisher is gone
    client.close()


def role_keep(home: str, bootstrap: str, interval: str, refs_json: str) -> None:
    """Pull every reference, then run the daemon; on `stats`, print outcome counts, RSS, CPU."""
    from hubless.services.daemon import Daemon

    client = _client(Path(home), bootstrap)
    for ref in json.loads(refs_json):
        for attempt in range(5):
            try:
                client.pull(ref)
                break
            except Exception:
                if attempt == 4:
                    raise
                time.sleep(1)
    daemon = Daemon(client, republish_interval=float(interval)).start()
    print("ready", flush=True)
    for line in sys.stdin:
        if line.strip() == "stats":
            outcomes: dict[str, int] = {}
            for record in daemon.status().records:
                outcomes[str(record.outcome)] = outcomes.get(str(record.outcome), 0) + 1
            print(json.dumps({"outcomes": outcomes, **_usage()}), flush=True)
    daemon.close()
    client.close()


def _usage() -> dict[str, float]:
    """This process's resident memory (MiB) and CPU time (s), from /proc."""
    rss = 0.0
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            rss = int(line.split()[1]) / 1024
    fields = Path("/proc/self/stat").read_text().rpartition(")")[2].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return {"rss_mib": rss, "cpu_s": (int(fields[11]) + int(fields[12])) / ticks}


# --- the bench ----------------------------------------------------------------------------------


def _resolvable(bootstrap: str, refs: dict[str, list[str]]) -> dict[str, float]:
    """Per key, the fraction of records a fresh session finds verified (§8.1 step 2)."""
    from hubless.core.errors import HublessError
    from hubless.core.refs import parse_reference
    from hubless.core.trust import choose_record
    from hubless.net.profile import NetProfile, parse_bootstrap
    from hubless.net.session import open_session

    with open_session(NetProfile.local(parse_bootstrap(bootstrap))) as session:

        def ok(text: str) -> bool:
            ref = parse_reference(text)
            try:
                # 30 s, a client's default: a lookup near departed nodes waits out
                # libtorrent's 15 s RPC timeout, which is churn too, not a lost record.
                items = session.dht_get(ref.publisher, ref.salt, 30)
                choose_record(items, ref.publisher, ref.name, now=int(time.time()))
                return True
            except HublessError:
                return False

        with ThreadPoolExecutor(32) as pool:
            return {name: sum(pool.map(ok, keyed)) / len(keyed) for name, keyed in refs.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--nodes", type=int, default=100)
    parser.add_argument("--groups", type=int, default=4, help="node processes")
    parser.add_argument("--records", type=int, default=50, help="models per key")
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--interval", type=float, default=20.0, help="re-put and round seconds")
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
    try:
        per = -(-args.nodes // args.groups)
        total = str(args.nodes)
        first = spawn_self(__file__, "--role", "nodes", "0", str(per), total, "")
        children.append(first)
        groups.append(first)
        owner: dict[int, Any] = {i: first for i in range(per)}
        endpoints = {int(i): tuple(e) for i, e in json.loads(read_line(first)).items()}
        bootstrap = "{}:{}".format(*endpoints[0])
        for start in range(per, args.nodes, per):
            end = min(start + per, args.nodes)
            group = spawn_self(__file__, "--role", "nodes", str(start), str(end), total, bootstrap)
            children.append(group)
            groups.append(group)
            owner.update({i: group for i in range(start, end)})
            endpoints.update({int(i): tuple(e) for i, e in json.loads(read_line(group)).items()})
        everyone = ",".join("{}:{}".format(*e) for e in endpoints.values())
        for group in groups:
            _ask(group, f"join {everyone}")
        print(f"testnet: {args.nodes} nodes in {len(children)} processes, bootstrap {bootstrap}")

        root = Path(tempfile.mkdtemp(prefix="hubless-churn-"))
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

        header = "round  " + "  ".join(f"{k.upper()} ({n} keepers)" for k, n in _keepers())
        print(header)
        print("    0  " + _row(_resolvable(bootstrap, refs)))
        for round_no in range(1, args.rounds + 1):
            chosen = rng.sample(range(1, args.nodes), round(RESTART_FRACTION * (args.nodes - 1)))
            for group in groups:
                mine = [i for i in chosen if owner[i] is group]
                if mine:
                    _ask(group, "restart " + ",".join(map(str, mine)))
            time.sleep(args.interval)
            print(f"{round_no:5d}  " + _row(_resolvable(bootstrap, refs)), flush=True)
        for label, keeper in keepers.items():
            print(f"keeper {label}: {_ask(keeper, 'stats')}")
    finally:
        for child in children:
            if child.stdin is not None and not child.stdin.closed:
                child.stdin.close()
            stop(child)


def _keepers() -> list[tuple[str, int]]:
    return [(k, sum(k in keys for keys in KEEPERS.values())) for k in KEYS]


def _row(found: dict[str, float]) -> str:
    return "  ".join(f"{100 * found[k]:12.1f}%" for k in KEYS)


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
