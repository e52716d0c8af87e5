"""DHT latency on a 64-node loopback testnet: put→visible, and verified get p50/p95.

    python bench/dht.py [--nodes 64] [--lookups 200] [--cold 200]

The testnet runs in its own process, the publisher in another, the measuring process in a
third; cold lookups each run in a fresh process that bootstraps from one node. Latencies
compare across processes through CLOCK_MONOTONIC (time.monotonic), which is system-wide.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import statistics
import subprocess
import sys
import time
from typing import TYPE_CHECKING

from procs import read_line as _line
from procs import spawn_self
from procs import stop as _stop

if TYPE_CHECKING:
    from hubless.net.session import Session

PUBLISHER_SEED = hashlib.sha256(b"hubless bench publisher").digest()


def _spawn(*args: str) -> subprocess.Popen[str]:
    return spawn_self(__file__, *args)


def _session(bootstrap: str, wait: bool = True) -> Session:
    from hubless.config import parse_endpoints
    from hubless.net.profile import NetProfile, loopback_violations
    from hubless.net.session import Session

    session = Session(NetProfile.local(parse_endpoints(bootstrap, "bootstrap")))
    problems = loopback_violations(session.get_settings())
    assert not problems, problems
    if wait:
        session.wait_for_dht(2, 10)
    return session


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def _ms(values: list[float]) -> str:
    return (
        f"p50 {1000 * statistics.median(values):7.2f} ms   p95 {1000 * _pct(values, 0.95):7.2f}"
        f" ms   max {1000 * max(values):7.2f} ms   (n={len(values)})"
    )


# --- roles run in child processes -----------------------------------------------------------


def role_publish(bootstrap: str) -> None:
    """Read `salt payload` lines; put each; answer with the monotonic time the put began."""
    from hubless.core.keys import SigningKey

    session = _session(bootstrap)
    key = SigningKey(PUBLISHER_SEED)
    print("ready", flush=True)
    for line in sys.stdin:
        salt, payload = line.split()
        started = time.monotonic()
        stored = session.dht_put(key, salt.encode(), payload.encode(), 10)
        print(
            json.dumps({"started": started, "done": time.monotonic(), "stored": stored}), flush=True
        )
    session.close()


def role_cold(bootstrap: str, salt: str) -> None:
    """One lookup from a fresh session; report session start→verified item."""
    from hubless.core.bep44 import newest_valid
    from hubless.core.keys import SigningKey

    started = time.perf_counter()
    session = _session(bootstrap, wait=False)
    public = SigningKey(PUBLISHER_SEED).public
    item = newest_valid(session.dht_get(public, salt.encode(), 10), public, salt.encode())
    seconds = time.perf_counter() - started
    print(json.dumps({"seconds": seconds, "payload": item.payload.decode()}), flush=True)
    session.close()


# --- the measuring process -------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--nodes", type=int, default=64)
    parser.add_argument("--lookups", type=int, default=200)
    parser.add_argument("--visible", type=int, default=30, help="put→visible samples")
    parser.add_argument("--cold", type=int, default=200, help="fresh-process lookups")
    args = parser.parse_args()

    from hubless.core.bep44 import newest_valid
    from hubless.core.errors import NotFoundError
    from hubless.core.keys import SigningKey

    public = SigningKey(PUBLISHER_SEED).public
    testnet = subprocess.Popen(
        [sys.executable, "-m", "hubless.net.testnet", "--nodes", str(args.nodes), "--json"],
        stdout=subprocess.PIPE,
        text=True,
    )
    publisher = None
    try:
        bootstrap = ",".join(json.loads(_line(testnet))["bootstrap"])
        print(f"testnet: {args.nodes} nodes, bootstrap {bootstrap}")
        publisher = _spawn("--role", "publish", bootstrap)
        assert _line(publisher) == "ready"
        assert publisher.stdin is not None
        reader = _session(bootstrap)

        def put(salt: str, payload: str) -> dict[str, float]:
            assert publisher is not None and publisher.stdin is not None
            publisher.stdin.write(f"{salt} {payload}\n")
            publisher.stdin.flush()
            return dict(json.loads(_line(publisher)))

        # put → visible: the reader polls while the publisher puts.
        visible, put_times, stored = [], [], []
        for i in range(args.visible):
            salt, payload = f"visible-{i}", f"v{i}"
            assert publisher.stdin is not None
            publisher.stdin.write(f"{salt} {payload}\n")
            publisher.stdin.flush()
            while True:
                try:
                    if (
                        newest_valid(
                            reader.dht_get(public, salt.encode(), 10), public, salt.encode()
                        ).payload
                        == payload.encode()
                    ):
                        seen = time.monotonic()
                        break
                except NotFoundError:
                    pass
            report = json.loads(_line(publisher))
            visible.append(seen - report["started"])
            put_times.append(report["done"] - report["started"])
            stored.append(report["stored"])

        # Items for the lookups, one salt per lookup.
        salts = [f"model-{i}" for i in range(args.lookups)]
        for salt in salts:
            put(salt, salt.upper())
        warm = []
        for salt in salts:
            started = time.perf_counter()
            item = newest_valid(reader.dht_get(public, salt.encode(), 10), public, salt.encode())
            warm.append(time.perf_counter() - started)
            assert item.payload == salt.upper().encode()
        reader.close()

        cold = []
        for i in range(args.cold):
            salt = salts[i % len(salts)]
            proc = _spawn("--role", "cold", bootstrap, salt)
            result = json.loads(_line(proc))
            proc.wait(30)
            assert result["payload"] == salt.upper()
            cold.append(result["seconds"])

        print(
            f"put (publisher, until the put alert)  {_ms(put_times)}   "
            f"nodes stored: min {min(stored)}, median {statistics.median(stored):.0f}"
        )
        print(f"put → visible in another process     {_ms(visible)}")
        print(f"get, warm process                     {_ms(warm)}   target p95 <= 10 ms")
        print(f"get, fresh process (session start)   {_ms(cold)}   target p95 <= 1000 ms")
    finally:
        if publisher is not None:
            if publisher.stdin is not None:
                publisher.stdin.close()
            _stop(publisher)
        _stop(testnet)


if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[1] == "--role":
        role, rest = sys.argv[2], sys.argv[3:]
        role_publish(*rest) if role == "publish" else role_cold(*rest)
    else:
        main()
