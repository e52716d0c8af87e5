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

The manifest's `bep19` web seeds (spec §5.8) go into the content .torrent as BEP-19
`url-list` and into the magnet as `ws=`, also outside the info dict. `path` seeds are not
exported: every other client forms a multi-file torrent's URLs as base + name + "/" + path.
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..core import bencode
from ..core.errors import NetworkError
from ..core.manifest import Manifest
from ..core.metainfo import parse_metainfo
from ..core.refs import Reference
from ..core.webseeds import BEP19
from ..files import atomic_write
from ..net.contract import Endpoint, format_endpoint
from . import pull
from .context import Context
from .resolve import Resolution, resolve


def content_torrent(
    ctx: Context, ref: Reference, resolution: Resolution | None = None
) -> tuple[bytes, Manifest, dict[str, Any]]:
    """The verified content .torrent of `ref`, its manifest and a summary of what it names."""
    resolution = resolution or resolve(ctx, ref)
    manifest = resolution.target.manifest
    ih = manifest.content_infohash
    with ctx.cache.locks.hold(f"content-{ih.hex()}", timeout=ctx.config.transfer_timeout):
        torrent, _ = pull.content_torrent(ctx, manifest)
    summary = {**resolution.summary(), "infohash": manifest.content_infohash.hex()}
    return torrent, manifest, summary


def dht_nodes(ctx: Context) -> list[str]:
    """`host:port` of the DHT nodes another client should join to find this network's seeders."""
    return [format_endpoint(host, port) for host, port in ctx.config.bootstrap]


def exported_seeds(manifest: Manifest) -> tuple[list[str], list[str]]:
    """(base URLs other clients can use, `path` seeds they cannot), spec §5.8 and §8.6."""
    usable = [w.base for w in manifest.web_seeds if w.kind == BEP19]
    return usable, [w.base for w in manifest.web_seeds if w.kind != BEP19]


def export_torrent(ctx: Context, ref: Reference, path: Path) -> dict[str, Any]:
    """Write `ref`'s verified content .torrent to `path`, and its manifest torrent beside it.

    Both list this network's DHT nodes; the content .torrent also lists the manifest's
    `bep19` web seeds (`url-list`). The manifest torrent (`<stem>.manifest.torrent`) is
    rebuilt from the verified manifest, which is written next to it under the file name the
    torrent names, so a client pointed at that folder seeds it as it is. Returns a summary
    with the paths, a `seed` list of example aria2c commands, the web seeds written (and
    the `path` ones that could not be) and the torrent's pad files.
    """
    resolution = resolve(ctx, ref)
    torrent, manifest, summary = content_torrent(ctx, ref, resolution)
    usable, skipped = exported_seeds(manifest)
    nodes = list(ctx.config.bootstrap)
    atomic_write(path, exported(torrent, nodes, usable))
    pads = sorted({f.path for f in parse_metainfo(torrent).files if f.pad})
    verified = resolution.target
    manifest_file = path.parent / ctx.cache.manifest_path(verified.hash).name
    manifest_torrent, ih = ctx.torrents.blob_torrent(manifest_file.name, verified.data)
    stem = path.name[: -len(".torrent")] if path.name.endswith(".torrent") else path.name
    manifest_path = path.with_name(f"{stem}.manifest.torrent")
    if ih == resolution.target_infohash:  # made by hubless: the same deterministic torrent
        atomic_write(manifest_file, verified.data)
        atomic_write(manifest_path, exported(manifest_torrent, nodes))
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
        "web_seeds": usable,
        "web_seeds_not_exported": skipped,
        "pad_files": pads,
    }


def exported(torrent: bytes, nodes: Sequence[Endpoint], url_list: Sequence[str] = ()) -> bytes:
    """`torrent` with a BEP-5 `nodes` list ([[host, port], ...]) and a BEP-19 `url-list`.

    Both sit outside the info dict; the bencode codec is canonical (decode-then-encode
    returns the same bytes), so the info dict, and with it the infohash, stays byte for
    byte what the manifest names. Any `nodes`, `url-list` or `httpseeds` already there goes.
    """
    top = bencode.decode(torrent)
    if not isinstance(top, dict):  # parse_metainfo already checked; keeps mypy honest
        return torrent
    top = {k: v for k, v in top.items() if k not in (b"nodes", b"url-list", b"httpseeds")}
    if nodes:
        top[b"nodes"] = [[host.encode(), port] for host, port in nodes]
    if url_list:
        top[b"url-list"] = [url.encode() for url in url_list]
    return bencode.encode(top)


#: Most peers a magnet names (`x.pe`); a few are enough to join the swarm.
MAX_MAGNET_PEERS = 8


def magnet_link(ctx: Context, ref: Reference) -> str:
    """A magnet naming the content torrent by its v1 infohash, up to 8 known seeders, and
    the manifest's `bep19` web seeds as `ws=` (BEP-19 web seeds in magnets, as libtorrent
    reads them).

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
    usable, _ = exported_seeds(m)
    return link + "".join(f"&ws={urllib.parse.quote(url, safe='')}" for url in usable)
