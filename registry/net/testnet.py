"""A private DHT: N DHT-only libtorrent nodes in this process, for tests, demos and labs.

`python -m hubless.net.testnet --nodes N --port P` runs one until SIGINT/SIGTERM and prints
the endpoint clients bootstrap from: node 0. Clients name only that endpoint: libtorrent uses
bootstrap nodes as routers and never stores items on them, so the other nodes store.

On loopback, nodes 0 and 1 listen on `host` and node i on 127.<i/256>.<i%256>.1 (each node
its own /24), and the nodes keep one routing entry per IP (`dht_restrict_routing_ips`). Node 0
holds the entry for `host` in every table (node 1 in node 0's), so client processes on `host`
never enter the nodes' routing tables.
That matters: libtorrent adds a client that puts or announces, and once that process exits,
every lookup whose closest nodes include it waits 15 s for its RPC timeout (measured here:
a put went from 2 ms to 15 s after one publisher process had exited). On a non-loopback host
all nodes share the host's address and that protection is off.
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import select
import signal
import subprocess
import sys
import threading
import time
from types import FrameType, TracebackType
from typing import Any, TextIO, cast

import libtorrent as lt

from ..core.errors import NetTimeoutError, UsageError
from .contract import format_endpoint
from .profile import NetProfile, settings_for

# A DHT node needs no disk or peer machinery: keep each of many nodes small.
_NODE_SETTINGS: dict[str, int | str | bool] = {
    "aio_threads": 1,
    "hashing_threads": 1,
    "max_retry_port_bind": 0,  # node i must own port P+i or fail, never drift onto P+i+1
    "alert_mask": 0,
    "dht_max_dht_items": 10000,
    "dht_max_peers": 10000,
}


def _node_host(host: str, index: int) -> str:
    """Node `index`'s address: `host` for nodes 0 and 1; on loopback, a /24 each for others."""
    try:
        loopback = (
            ipaddress.ip_address(host).version == 4 and ipaddress.ip_address(host).is_loopback
        )
    except ValueError:
        loopback = False
    if index <= 1 or not loopback:
        return host
    if index >= 65536:
        raise UsageError("a loopback testnet has at most 65535 nodes")
    return f"127.{index >> 8}.{index & 255}.1" if index >> 8 or index & 255 else host


class Testnet:
    """`nodes` DHT nodes, ports `port`..`port+nodes-1` (port 0: any free ports); node 0 on
    `host`, the others on their own loopback /24 when `host` is loopback (see module doc)."""

    def __init__(self, nodes: int = 8, host: str = "127.0.0.1", port: int = 0) -> None:
        if nodes < 1:
            raise UsageError("a testnet needs at least one node")
        self.nodes = nodes
        self.host = host
        self.port = port
        self._hosts = [_node_host(host, i) for i in range(nodes)]
        self._spread = len(set(self._hosts)) == max(1, nodes - 1)
        self._sessions: list[Any] = []
        self._stop = threading.Event()
        self._drain: threading.Thread | None = None

    @property
    def ports(self) -> list[int]:
        return [int(s.listen_port()) for s in self._sessions]

    @property
    def endpoints(self) -> list[tuple[str, int]]:
        """Every node's (host, port)."""
        return list(zip(self._hosts, self.ports, strict=True))

    @property
    def bootstrap(self) -> list[str]:
        """Endpoints clients bootstrap from: the first node."""
        return [format_endpoint(self.host, p) for p in self.ports[:1]]

    def profile(self) -> NetProfile:
        """A local profile for a client of this testnet."""
        return NetProfile.local(tuple((self.host, p) for p in self.ports[:1]), host=self.host)

    def start(self, timeout: float = 10.0) -> Testnet:
        for i, host in enumerate(self._hosts):
            want = self.port + i if self.port else 0
            settings = settings_for(NetProfile.local((), host=host, port=want))
            settings.update(_NODE_SETTINGS)
            settings["dht_restrict_routing_ips"] = self._spread
            session = lt.session(cast(Any, settings))  # the binding takes a dict
            self._sessions.append(session)
            if want and int(session.listen_port()) != want:
                self.stop()
                raise UsageError(f"testnet node cannot listen on {host}:{want}")
        # Node 0 first everywhere: it must own the entry for `host` before any client comes.
        endpoints = self.endpoints
        for own, session in zip(endpoints, self._sessions, strict=True):
            for endpoint in endpoints:
                if endpoint != own:
                    session.add_dht_node(endpoint)
        self._wait_connected(timeout)
        self._drain = threading.Thread(target=self._drain_alerts, name="testnet", daemon=True)
        self._drain.start()
        return self

    def _wait_connected(self, timeout: float) -> None:
        """Wait until every node's routing table holds up to 8 others (one per IP if spread)."""
        want = min((len(set(self._hosts)) if self._spread else self.nodes) - 1, 8)
        if want == 0:
            return
        deadline = time.monotonic() + timeout
        pending = list(self._sessions)
        while pending:
            for session in pending:
                session.post_dht_stats()
            time.sleep(0.05)
            still = []
            for session in pending:
                nodes = 0
                for alert in session.pop_alerts():
                    if isinstance(alert, lt.dht_stats_alert):
                        nodes = sum(int(b["num_nodes"]) for b in alert.routing_table)
                if nodes < want:
                    still.append(session)
            pending = still
            if pending and time.monotonic() > deadline:
                self.stop()
                raise NetTimeoutError(f"{len(pending)} testnet node(s) found no peer")

    def _drain_alerts(self) -> None:
        while not self._stop.wait(1.0):
            for session in self._sessions:
                session.pop_alerts()

    def stop(self) -> None:
        self._stop.set()
        if self._drain is not None:
            self._drain.join()
        for session in self._sessions:
            session.pause()
        self._sessions.clear()

    def __enter__(self) -> Testnet:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def spawn_testnet(
    nodes: int = 8, host: str = "127.0.0.1", timeout: float = 60.0, port: int = 0
) -> tuple[subprocess.Popen[str], list[str]]:
    """Run a testnet in a child process; return it and its bootstrap endpoints once serving.

    `port`: node i listens on `port` + i (0: any free ports), so that a testnet stopped and
    started again on the same ports looks to its clients like nodes that were unreachable
    for a while. Raises `NetTimeoutError` when it does not serve within `timeout` seconds
    (a port already taken makes it exit)."""
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "hubless.net.testnet",
            "--json",
            "--nodes",
            str(nodes),
            "--host",
            host,
            "--port",
            str(port),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        ready, _, _ = select.select([proc.stdout], [], [], timeout)
        line = proc.stdout.readline() if ready else ""
        if not line:
            raise NetTimeoutError(f"the testnet did not start within {timeout:g}s")
        return proc, list(json.loads(line)["bootstrap"])
    except BaseException:
        proc.kill()
        proc.wait()
        raise


def run_testnet(
    nodes: int,
    port: int = 0,
    host: str = "127.0.0.1",
    *,
    as_json: bool = False,
    out: TextIO | None = None,
    stop: threading.Event | None = None,
) -> None:
    """Run a testnet, print its bootstrap endpoint(s), block until SIGINT/SIGTERM or `stop`."""
    stream = out or sys.stdout
    done = stop or threading.Event()

    def _on_signal(signum: int, frame: FrameType | None) -> None:
        done.set()

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, _on_signal)
        signal.signal(signal.SIGTERM, _on_signal)
    with Testnet(nodes, host, port) as net:
        if as_json:
            stream.write(json.dumps({"bootstrap": net.bootstrap, "nodes": nodes}) + "\n")
        else:
            for endpoint in net.bootstrap:
                stream.write(f"bootstrap {endpoint}\n")
        stream.flush()
        while not done.wait(0.5):
            pass


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m hubless.net.testnet", description=__doc__)
    parser.add_argument("--nodes", type=int, default=8)
    parser.add_argument("--port", type=int, default=0, help="first node's port (0: any)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    run_testnet(args.nodes, args.port, args.host, as_json=args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
