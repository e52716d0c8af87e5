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
`--dht-entry-point`, which `dht_nodes` reports.

The manifest's `bep19` web seeds (spec §5.8) go into the .torrent as BEP-19 `url-list` and
into the magnet as `ws=`, also outside the info dict. `path` seeds are not exported: every
other client forms a multi-file torrent's URLs as base + name + "/" + path.
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..core import bencode
from ..core.manifest import Manifest
from ..core.metainfo import parse_metainfo
from ..core.refs import Reference
from ..core.webseeds import BEP19
from ..files import atomic_write
from ..net.contract import Endpoint, format_endpoint
from . import pull
from .context import Context
from .resolve import resolve


def content_torrent(ctx: Context, ref: Reference) -> tuple[bytes, Manifest, dict[str, Any]]:
    """The verified content .torrent of `ref`, its manifest and a summary of what it names."""
    resolution = resolve(ctx, ref)
    manifest = resolution.target.manifest
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
    """Write `ref`'s verified content .torrent to `path`, with the network's DHT nodes and
    the manifest's `bep19` web seeds (`url-list`)."""
    torrent, manifest, summary = content_torrent(ctx, ref)
    usable, skipped = exported_seeds(manifest)
    atomic_write(path, exported(torrent, list(ctx.config.bootstrap), usable))
    pads = sorted({f.path for f in parse_metainfo(torrent).files if f.pad})
    return {
        **summary,
        "torrent": str(path),
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


def magnet_link(ctx: Context, ref: Reference) -> str:
    """A magnet naming the content torrent by its v1 infohash, with its `bep19` web seeds as
    `ws=` (BEP-19 web seeds in magnets, as libtorrent reads them); peers come from the DHT."""
    m = resolve(ctx, ref).target.manifest
    link = f"magnet:?xt=urn:btih:{m.content_infohash.hex()}&dn={urllib.parse.quote(m.name)}"
    usable, _ = exported_seeds(m)
    return link + "".join(f"&ws={urllib.parse.quote(url, safe='')}" for url in usable)
