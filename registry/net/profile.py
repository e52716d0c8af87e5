"""Network profiles: which DHT a session joins and how its sockets are tuned.

Pure data, no libtorrent import: `settings_for` turns a `NetProfile` into the settings-pack
dict that `hubless.net.session` hands to libtorrent, so tests can inspect exactly what a
session would be told before any socket exists.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

from ..core.errors import UsageError
from .contract import Endpoint, format_endpoint

Kind = Literal["mainline", "local"]

#: Public routers of the mainline DHT. Only the mainline profile ever names them.
MAINLINE_ROUTERS: tuple[Endpoint, ...] = (
    ("router.bittorrent.com", 6881),
    ("dht.transmissionbt.com", 6881),
    ("router.utorrent.com", 6881),
    ("dht.libtorrent.org", 25401),
)

# libtorrent alert categories (lt.alert.category_t), spelled out so this module stays pure.
_ERROR = 0x1
_STATUS = 0x40
_STORAGE = 0x8
_DHT = 0x400
_PERFORMANCE = 0x200
_DHT_OPERATION = 0x40000  # get_peers replies: how downloads find peers without announcing
_CONNECT = 0x20  # peer connections ending: why a download found peers but reached none

#: Torrent metadata the spec allows (spec §5.7: 64 MiB), and as many bencode tokens as that
#: many bytes can hold (at most one per byte): libtorrent's own defaults (30 MiB, 2,500,000
#: tokens) refuse the metadata of a model of ~143,000 files, below the spec's 200,000.
MAX_METADATA_SIZE = 64 * 1024 * 1024
MAX_DECODE_TOKENS = MAX_METADATA_SIZE

#: Bytes per second a node may spend on DHT traffic. libtorrent's default (8000) throttles
#: a publisher that puts many items, and 0 means no DHT traffic at all (DESIGN.md).
DHT_UPLOAD_RATE = 512 * 1024

# Throughput settings for TCP between well-connected peers, taken from libtorrent's
# high_performance_seed(): deep send buffers and request queues keep the pipe full; -1 unchoke
# slots means every interested peer is served. Measured with bench/transfer.py (2 GiB, 2 cores,
# median of 3): one seed 384-413 MB/s with these vs 322 MB/s on libtorrent's TCP defaults;
# three seeds 440-470 MB/s either way.
_THROUGHPUT: dict[str, int | str | bool] = {
    "send_buffer_watermark": 3 * 1024 * 1024,
    "send_buffer_low_watermark": 1024 * 1024,
    "send_buffer_watermark_factor": 150,
    "send_not_sent_low_watermark": 512 * 1024,
    "max_out_request_queue": 1500,
    "max_peer_recv_buffer_size": 5 * 1024 * 1024,
    "max_queued_disk_bytes": 64 * 1024 * 1024,
    # Disk threads: with 8, a seeder's network thread spent its time waking them (mutex and
    # condition-variable wake-ups): 1.16-1.18 CPU-s per GiB sent, 0.85-0.89 with 2 (bench/
    # transfer.py, 2 GiB, median of 5, twice; the rate moved less than the machine's noise).
    # A download writes from one thread whatever the count. Two still overlap disk reads.
    "aio_threads": 2,
    # Two threads for the SHA-1 of received pieces: with one, a downloader on a busy 2-core
    # machine waited whenever that thread was not running (bench/transfer.py, 2 GiB, four
    # interleaved runs: the median of one seed 9-23 % higher, ahead in 7 of 9 logged pairs).
    "hashing_threads": 2,
    "file_pool_size": 500,
    "checking_mem_usage": 2048,
    # No SUGGEST messages: a seed suggesting the pieces it just read made every downloader
    # request the same pieces from it (bench/fanout.py: the origin sent 2.6x the model to 8
    # consumers; 1.8x without). libtorrent 2's disk I/O has no read cache to favour anyway.
    "suggest_mode": 0,
    # A peer may queue at most 64 block requests (1 MiB) with us: a downloader cannot reserve
    # a long run of a slow seed's pieces that other downloaders then reserve too (fan-out:
    # origin 1.8x -> 1.5x the model). 1 MiB in flight still fills a LAN link (at 0.5 ms
    # round trip, 2 GB/s per peer); across a 50 ms WAN link it caps one peer near 20 MB/s.
    "max_allowed_in_request_queue": 64,
    # Bandwidth under a rate limit is handed out every tick: at the default 500 ms a rate-
    # limited seed made every metadata fetch wait about 1.5 s (bench/fanout.py).
    "tick_interval": 100,
    "mixed_mode_algorithm": 0,
    "unchoke_slots_limit": -1,
    "connection_speed": 500,
    "connections_limit": 8000,
    "listen_queue_size": 3000,
    "allowed_fast_set_size": 0,
}

# A registry client seeds every model it holds: never let the queue pause any of them.
_NO_QUEUEING: dict[str, int | str | bool] = {
    "active_limit": 20000,
    "active_downloads": -1,
    "active_seeds": -1,
    "active_dht_limit": 600,
    "alert_queue_size": 10000,
}


@dataclass(frozen=True)
class NetProfile:
    """Where a session listens and which DHT it bootstraps from.

    `local` is a private DHT (tests, a lab, a company LAN): bootstrap nodes are explicit and
    nothing is contacted that was not named. `mainline` is the public BitTorrent DHT.
    """

    kind: Kind = "local"
    listen_host: str = ""
    listen_port: int = 0
    bootstrap: tuple[Endpoint, ...] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        if self.kind not in ("mainline", "local"):
            raise UsageError(
                f"network profile kind must be 'mainline' or 'local', not {self.kind!r}"
            )
        if not 0 <= self.listen_port < 65536:
            raise UsageError(f"listen port {self.listen_port} is out of range")
        if not self.listen_host:
            default = "0.0.0.0" if self.kind == "mainline" else "127.0.0.1"
            object.__setattr__(self, "listen_host", default)
        if self.kind == "local" and _is_unspecified(self.listen_host):
            raise UsageError(
                "a local profile listens on one named interface, not on every interface",
                hint="pass --listen 127.0.0.1 or the LAN address to use",
            )
        if self.kind == "mainline" and not self.bootstrap:
            object.__setattr__(self, "bootstrap", MAINLINE_ROUTERS)

    @classmethod
    def local(
        cls, bootstrap: tuple[Endpoint, ...] = (), host: str = "127.0.0.1", port: int = 0
    ) -> NetProfile:
        return cls("local", host, port, tuple(bootstrap))

    @classmethod
    def mainline(cls, host: str = "0.0.0.0", port: int = 0) -> NetProfile:
        return cls("mainline", host, port, MAINLINE_ROUTERS)

    @property
    def is_loopback(self) -> bool:
        """True when the session listens on, and bootstraps from, loopback only."""
        hosts = [self.listen_host, *(h for h, _ in self.bootstrap)]
        return all(_is_loopback(h) for h in hosts)


def _is_unspecified(host: str) -> bool:
    try:
        return ipaddress.ip_address(host.strip("[]")).is_unspecified
    except ValueError:
        return False


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return host == "localhost"


def settings_for(profile: NetProfile) -> dict[str, int | str | bool]:
    """The libtorrent settings pack for `profile`; LSD, UPnP and NAT-PMP are always off."""
    bootstrap = ",".join(format_endpoint(h, p) for h, p in profile.bootstrap)
    settings: dict[str, int | str | bool] = {
        "listen_interfaces": format_endpoint(profile.listen_host, profile.listen_port),
        "enable_dht": True,
        "dht_bootstrap_nodes": bootstrap,
        "dht_upload_rate_limit": DHT_UPLOAD_RATE,
        # Never announce ourselves to the LAN or open router ports unasked.
        "enable_lsd": False,
        "enable_upnp": False,
        "enable_natpmp": False,
        "alert_mask": (
            _ERROR | _STATUS | _STORAGE | _DHT | _PERFORMANCE | _DHT_OPERATION | _CONNECT
        ),
        "user_agent": "hubless/0.1",
        "peer_fingerprint": "-HL0100-",
        "enable_ip_notifier": False,
        "max_metadata_size": MAX_METADATA_SIZE,
        "metadata_token_limit": MAX_DECODE_TOKENS,
        # A metadata fetch runs in upload mode (it must never write pieces); by default
        # libtorrent drops a connection where both ends only upload, and so dropped the seed
        # a fetch needed, sometimes before the metadata came (bench/fanout.py: 3 of 8
        # consumers started together failed to fetch a manifest).
        "close_redundant_connections": False,
        **_NO_QUEUEING,
    }
    if profile.kind == "local":
        settings.update(
            {
                # On one host or a LAN every node shares few addresses: the mainline
                # anti-Sybil rules would keep the routing table empty (DESIGN.md).
                "dht_restrict_routing_ips": False,
                "dht_restrict_search_ips": False,
                "dht_enforce_node_id": False,
                "dht_prefer_verified_node_ids": False,
                # Every node shares one address here: the per-IP flood guard (5 packets/s,
                # then a 5-minute block) would silence the whole network after two puts.
                "dht_block_ratelimit": 1_000_000,
                "allow_multiple_connections_per_ip": True,
                # libtorrent waits (failures + 1) x 60 s before it connects again to a peer
                # whose connection ended for any reason (closed by either side, cut short by a
                # pause), and gives a peer up after 3 failures. A pull from one seeder then
                # stood still for a minute whenever that one connection dropped, e.g. under
                # load ("no peer within 30s" though the seeder was listed). Connecting again
                # costs nothing on one host or a LAN: wait (failures + 1) x 1 s, give up after 10.
                "min_reconnect_time": 1,
                "max_failcount": 10,
                # Outgoing peer connections bind to the listen address too (else 0.0.0.0).
                "outgoing_interfaces": profile.listen_host,
                # TCP only: uTP's congestion control caps loopback/LAN throughput ~20x lower.
                "enable_outgoing_utp": False,
                "enable_incoming_utp": False,
                "enable_outgoing_tcp": True,
                "enable_incoming_tcp": True,
                **_THROUGHPUT,
            }
        )
        if profile.is_loopback:
            # Every client process on one host shares 127.0.0.1, and libtorrent adds the DHT
            # node of each peer it trades with (BEP-5 PORT message). Once such a process exits,
            # lookups near it wait 15 s on the dead node. The testnet gives each node its own
            # /24, so one routing entry per /24 keeps every node and only one 127.0.0.1 entry.
            settings["dht_restrict_routing_ips"] = True
    else:
        settings.update(
            {
                "enable_outgoing_utp": True,
                "enable_incoming_utp": True,
                "enable_outgoing_tcp": True,
                "enable_incoming_tcp": True,
            }
        )
    return settings


def loopback_violations(settings: Mapping[str, object]) -> list[str]:
    """What, in a libtorrent settings dict, could reach beyond loopback (empty: nothing)."""
    problems: list[str] = []
    for key in ("listen_interfaces", "dht_bootstrap_nodes", "outgoing_interfaces"):
        for part in filter(None, (p.strip() for p in str(settings.get(key, "")).split(","))):
            if key == "outgoing_interfaces" and part == "lo":
                continue
            host = part
            if re.fullmatch(r".+:\d+[sl]*", part):  # host:port, maybe with ssl/local flags
                host = part.rpartition(":")[0]
            if not _is_loopback(host.strip("[]")):
                problems.append(f"{key} names {part}")
    for key in ("enable_lsd", "enable_upnp", "enable_natpmp"):
        if settings.get(key, True):
            problems.append(f"{key} is on")
    return problems
