"""Hand a model to other BitTorrent clients: its v1 content torrent, or a magnet link.

Content torrents are v1 with pad files (spec §5.6), which aria2, rtorrent, Transmission
and libtorrent clients all read. The .torrent written is checked against the signed
manifest first, so what is exported is exactly what the publisher signed.

Another client finds hubless seeders only through the DHT (there are no trackers), so it
must join the same DHT. The exported .torrent therefore lists this client's DHT bootstrap
nodes under the BEP-5 `nodes` key, outside the info dict (the infohash is unchanged):
aria2 bootstraps from them, so `aria2c --enable-dht=true FILE.torrent` finds a private
DHT by itself. A magnet carries no such list that aria2 reads (aria2 1.36 reads only `xt`,
`tr` and `dn`; it ignores `x.pe` peer hints, measured): its users name an entry point with
`--dht-entry-point`, which `dht_nodes` reports. The magnet does name the seeders a DHT
lookup finds (`x.pe`), which libtorrent-based clients such as qBittorrent connect to.

A hubless consumer needs the manifest torrent as well as the content (spec §5.6), so the
export writes both: `NAME.torrent` and `NAME.manifest.torrent`, with the signed manifest file
beside them, and says how another client seeds the two. On one host, libtorrent-based clients
(qBittorrent, Deluge) must allow several connections per IP address, or all local peers
count as one (qBittorrent: Advanced, "Allow multiple connections from the same IP address").
"""

from __future__ import annotations

import urllib.parse
from pathlib import Path
from typing import Any

from ..core import bencode
from ..core.errors import NetworkError
from ..core.refs import Reference
from ..files import atomic_write
from ..net.contract import Endpoint, format_endpoint
from . import pull
from .context import Context
from .resolve import Resolution, resolve


def content_torrent(
    ctx: Context, ref: Reference, resolution: Resolution | None = None
) -> tuple[bytes, dict[str, Any]]:
    """The verified content .torrent of `ref` and a summary of what it names."""
    resolution = resolution or resolve(ctx, ref)
    manifest = resolution.target.manifest
    ih = manifest.content_infohash
    with ctx.cache.locks.hold(f"content-{ih.hex()}", timeout=ctx.config.transfer_timeout):
        torrent, _ = pull.content_torrent(ctx, manifest)
    return torrent, {**resolution.summary(), "infohash": manifest.content_infohash.hex()}


def dht_nodes(ctx: Context) -> list[str]:
    """`host:port` of the DHT nodes another client should join to find this network's seeders."""
    return [format_endpoint(host, port) for host, port in ctx.config.bootstrap]


def export_torrent(ctx: Context, ref: Reference, path: Path) -> dict[str, Any]:
    """Write `ref`'s verified content .torrent to `path`, and its manifest torrent beside it.

    Both list this network's DHT nodes. The manifest torrent (`<stem>.manifest.torrent`) is
    rebuilt from the verified manifest, which is written next to it under the file name the
    torrent names, so a client pointed at that folder seeds it as it is. Returns a summary
    with the paths and a `seed` list of example aria2c commands.
    """
    resolution = resolve(ctx, ref)
    torrent, summary = content_torrent(ctx, ref, resolution)
    nodes = list(ctx.config.bootstrap)
    atomic_write(path, with_dht_nodes(torrent, nodes))
    verified = resolution.target
    manifest_file = path.parent / ctx.cache.manifest_path(verified.hash).name
    manifest_torrent, ih = ctx.torrents.blob_torrent(manifest_file.name, verified.data)
    stem = path.name[: -len(".torrent")] if path.name.endswith(".torrent") else path.name
    manifest_path = path.with_name(f"{stem}.manifest.torrent")
    if ih == resolution.target_infohash:  # made by hubless: the same deterministic torrent
        atomic_write(manifest_file, verified.data)
        atomic_write(manifest_path, with_dht_nodes(manifest_torrent, nodes))
    else:
        manifest_path = manifest_file = Path()
    entry = f" --dht-entry-point={format_endpoint(*nodes[0])}" if nodes else ""
    aria = f"aria2c --enable-dht=true{entry} --seed-ratio=0.0 --check-integrity=true"
    seed = [f"{aria} --dir=PARENT_OF_{verified.manifest.name} {path}"]
    if manifest_path != Path():
        seed.append(f"{aria} --dir={manifest_file.parent} {manifest_path}")
    return {
        **summary,
        "torrent": str(path),
        "manifest_torrent": str(manifest_path) if manifest_path != Path() else None,
        "manifest_file": str(manifest_file) if manifest_file != Path() else None,
        "seed": seed,
        "dht_nodes": dht_nodes(ctx),
    }


def with_dht_nodes(torrent: bytes, nodes: list[Endpoint]) -> bytes:
    """`torrent` with a BEP-5 `nodes` list ([[host, port], ...]); the info dict is untouched.

    The bencode codec is canonical (decode-then-encode returns the same bytes), so the
    info dict, and with it the infohash, stays byte-for-byte what the manifest names.
    """
    top = bencode.decode(torrent)
    if not isinstance(top, dict):  # parse_metainfo already checked; keeps mypy honest
        return torrent
    top = {k: v for k, v in top.items() if k != b"nodes"}
    if nodes:
        top[b"nodes"] = [[host.encode(), port] for host, port in nodes]
    return bencode.encode(top)


#: Most peers a magnet names (`x.pe`); a few are enough to join the swarm.
MAX_MAGNET_PEERS = 8


def magnet_link(ctx: Context, ref: Reference) -> str:
    """A magnet naming the content torrent by its v1 infohash, and up to 8 known seeders.

    The seeders (`x.pe=HOST:PORT`, BEP-9) come from one DHT peer lookup bounded by the
    lookup timeout: a client whose DHT only knows public routers (qBittorrent) cannot find a
    private network's seeders by itself. aria2 ignores `x.pe`; libtorrent clients use it.
    """
    m = resolve(ctx, ref).target.manifest
    link = f"magnet:?xt=urn:btih:{m.content_infohash.hex()}&dn={urllib.parse.quote(m.name)}"
    try:
        peers = ctx.network.dht_peers(m.content_infohash, ctx.config.check_timeout)
    except NetworkError:
        peers = []  # the magnet still works for clients that reach the same DHT
    for host, port in sorted(set(peers))[:MAX_MAGNET_PEERS]:
        link += "&x.pe=" + urllib.parse.quote(format_endpoint(host, port), safe="[]:")
    return link
