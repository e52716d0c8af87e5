"""Hand a model to other BitTorrent clients: its v1 content torrent, or a magnet link.

Content torrents are v1 with pad files (spec §5.6), which aria2, rtorrent, Transmission
and libtorrent clients all read. The .torrent written is checked against the signed
manifest first, so what is exported is exactly what the publisher signed.
"""

from __future__ import annotations

import urllib.parse
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..core.metainfo import check_matches_manifest, parse_metainfo
from ..store.files import atomic_write
from .resolve import resolve

if TYPE_CHECKING:
    from .client import Client


def content_torrent(client: Client, ref: str) -> tuple[bytes, dict[str, Any]]:
    """The verified content .torrent of `ref` and a summary of what it names."""
    from .client import _ref

    resolution = resolve(client, _ref(ref))
    manifest = resolution.target.manifest
    ih = manifest.content_infohash
    torrent = client.content_torrent(ih) or client.network.fetch_metadata(
        ih, client.config.dht_timeout
    )
    check_matches_manifest(parse_metainfo(torrent), manifest)
    client.remember_torrent(ih, torrent)
    return torrent, {**resolution.summary(), "infohash": ih.hex()}


def export_torrent(client: Client, ref: str, path: Path) -> dict[str, Any]:
    torrent, summary = content_torrent(client, ref)
    atomic_write(path, torrent)
    return {**summary, "torrent": str(path)}


def magnet_link(client: Client, ref: str) -> str:
    """A magnet naming the content torrent by its v1 infohash; peers come from the DHT."""
    from .client import _ref

    m = resolve(client, _ref(ref)).target.manifest
    return f"magnet:?xt=urn:btih:{m.content_infohash.hex()}&dn={urllib.parse.quote(m.name)}"
