"""Homes for the benchmarks' child processes: clients, tiny models, parallel pulls, usage.

Every session these make is a local profile bootstrapped from a loopback testnet
(`hubless.config.Config` with `HUBLESS_BOOTSTRAP`, hence `NetProfile.local`).
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from procs import read_line


def client(home: Path, bootstrap: str, *, serve: bool = True) -> Any:
    """A `hubless.Client` for `home` on the testnet at `bootstrap` (`host:port`)."""
    from hubless.config import Config
    from hubless.services.client import Client

    return Client(Config.resolve({"HUBLESS_BOOTSTRAP": bootstrap}, home=home), serve=serve)


def publish_tiny(client: Any, key_name: str, models: int, root: Path) -> list[str]:
    """Create key `key_name`, publish `models` small models (2 KiB each) under it as v1;
    return their references."""
    info = client.keys.create(key_name, None)
    key = client.keys.load(key_name, None)
    refs = []
    for i in range(models):
        folder = root / key_name / f"m{i:03d}"
        folder.mkdir(parents=True)
        (folder / "weights.bin").write_bytes(
            hashlib.sha256(f"{key_name}{i}".encode()).digest() * 64
        )
        client.publish(folder, f"m{i:03d}", "v1", key=key)
        refs.append(f"{info.public.text}/m{i:03d}")
    return refs


def pull_all(client: Any, refs: list[str], threads: int = 8) -> None:
    """Pull `refs` on `threads` threads into the seeds table (a daemon serves them: these
    pulls are one-shot, `serve=False`); each is tried up to 5 times."""
    from hubless.core.refs import parse_reference
    from hubless.services.pull import pull

    shared = client.ctx
    local = threading.local()
    contexts: list[Any] = []

    def one(text: str) -> None:
        ctx = getattr(local, "ctx", None)
        if ctx is None:
            ctx = local.ctx = shared.worker(serve=False)
            contexts.append(ctx)
        for attempt in range(5):
            try:
                pull(ctx, parse_reference(text))
                return
            except Exception:
                if attempt == 4:
                    raise
                time.sleep(1)

    assert shared.network is not None  # join the DHT once, before the threads share it
    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(one, refs))
    for ctx in contexts:
        ctx.state.close()


def usage(pid: int | str = "self") -> dict[str, float]:
    """A process's resident memory (MiB) and CPU time (user + system seconds), from /proc."""
    rss = 0.0
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            rss = int(line.split()[1]) / 1024
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return {"rss_mib": rss, "cpu_s": (int(fields[11]) + int(fields[12])) / ticks}


QUERIES = ("get", "put", "get_peers", "announce_peer", "find_node", "ping")


def traffic(client: Any) -> dict[str, int]:
    """DHT datagrams and bytes of a client's session, libtorrent's node (`lt_*`) and the
    KRPC client (`krpc_*`) apart, and the queries libtorrent's node sent by kind (`q_*`)."""
    from dataclasses import asdict

    dht = client.ctx.network.dht
    counters, krpc = dht.counters(), dht.krpc_traffic
    own = {
        "packets_sent": counters["dht_messages_out"],
        "bytes_sent": counters["dht_bytes_out"],
        "packets_received": counters["dht_messages_in"],
        "bytes_received": counters["dht_bytes_in"],
    }
    return {
        **{f"lt_{k}": v for k, v in own.items()},
        **{f"krpc_{k}": v for k, v in asdict(krpc).items()},
        **{f"q_{q}": counters[f"dht_{q}_out"] for q in QUERIES},
    }


# --- a testnet that can be restarted on the same ports ----------------------------------------


def free_port(count: int = 2) -> int:
    """A port P such that P..P+count-1 are free on 127.0.0.1 for TCP and UDP (nodes 0 and 1
    of a loopback testnet listen there; the others each on their own address)."""
    while True:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            first = int(probe.getsockname()[1])
        if first + count >= 65536:
            continue
        try:
            for port in range(first, first + count):
                for kind in (socket.SOCK_STREAM, socket.SOCK_DGRAM):
                    with socket.socket(socket.AF_INET, kind) as s:
                        s.bind(("127.0.0.1", port))
        except OSError:
            continue
        return first


def start_testnet(nodes: int, port: int) -> tuple[subprocess.Popen[str], str]:
    """`python -m hubless.net.testnet` on loopback ports `port`..; the process and its
    bootstrap endpoint. Restarting it on the same port makes every node forget every item."""
    command = ["-m", "hubless.net.testnet", "--json", "--nodes", str(nodes), "--port", str(port)]
    proc = subprocess.Popen(
        [sys.executable, *command],
        stdout=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
    )
    return proc, ",".join(json.loads(read_line(proc))["bootstrap"])
