"""A publisher's catalogue: read its index (spec §4.5) and resolve every model it lists.

The DHT get, the fetch of an index list torrent and the store writes happen here; the rules
they are checked by are `hubless.core.trust.choose_index` (the index) and `ModelTrust`
(each model, through `resolve`). The accepted index is remembered (§8.2: its seq and digest
defeat rollback and equivocation; its signed item lets a mirror put it again verbatim).
`search` looks through what this home already holds, without the network.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from ..core.errors import (
    HublessError,
    NetworkError,
    NotFoundError,
    UntrustedDataError,
    UsageError,
)
from ..core.index import INDEX_SALT, MAX_INDEX_LIST_SIZE, VerifiedIndex
from ..core.keys import PublicKey
from ..core.manifest import Manifest, verify_manifest
from ..core.refs import Reference
from ..core.trust import KnownIndex, choose_index, index_names
from ..store.follows import AcceptedIndex, Follows, IndexChange
from ..store.state import SeedEntry
from .context import Context
from .events import Event
from .resolve import Resolution, fetch_blob, resolve

#: The `name` of an index list torrent in the seeds table (no model name has a ':').
INDEX_SEED_NAME = "hubless-index"


@dataclass(frozen=True)
class IndexReading:
    """The names a publisher's index lists, every rule passed (§4.5).

    `stale`: the DHT gave no answer and this is the index accepted here before.
    `change`: what remembering it changed (names added and removed since the last one).
    """

    publisher: PublicKey
    seq: int
    published_at: int
    names: tuple[str, ...]
    stale: bool = False
    change: IndexChange = field(default_factory=lambda: IndexChange(False))


def read_index(ctx: Context, publisher: PublicKey) -> IndexReading:
    """Get, verify and remember `publisher`'s index; the known one when the DHT is silent.

    Raises `NotFoundError` (no index and none known), `NetTimeoutError`, and every
    `UntrustedDataError` of `choose_index` and `index_names` (rollback, equivocation, a
    list that does not match its hash); a failure leaves the remembered index unchanged.
    """
    follows = Follows(ctx.state)
    known = follows.known_index(publisher)
    now = int(time.time())
    try:
        items = ctx.network.dht_get(publisher, INDEX_SALT, ctx.config.dht_timeout)
        if not items:
            raise NotFoundError(f"no publisher index in the DHT under key {publisher.text}")
    except NetworkError:
        if known is None:
            raise
        ctx.emit(Event("index", "no answer from the DHT; using the index known here"))
        return IndexReading(publisher, known.seq, known.published_at, known.names, stale=True)
    remembered = KnownIndex(known.seq, known.digest) if known is not None else None
    chosen = choose_index(items, publisher, now=now, known=remembered)
    if known is not None and chosen.digest == known.digest:
        names = known.names  # the index accepted before: nothing to fetch (cheap poll)
    else:
        names = index_names(chosen, _list_file(ctx, chosen))
    record = chosen.index
    change = follows.remember_index(
        AcceptedIndex(
            publisher, record.seq, chosen.digest, record.published_at, names, chosen.item.raw()
        )
    )
    return IndexReading(publisher, record.seq, record.published_at, names, change=change)


def _list_file(ctx: Context, chosen: VerifiedIndex) -> bytes | None:
    """The list file of a list-form index (cache first), seeded once it matched; else None."""
    record = chosen.index
    if record.list_infohash is None or record.list_hash is None:
        return None
    cached = ctx.cache.index_list_path(record.list_hash)
    if cached.exists():
        return cached.read_bytes()
    ctx.emit(Event("index", f"fetching the index list {record.list_infohash.hex()[:16]}…"))
    data = fetch_blob(ctx, record.list_infohash, MAX_INDEX_LIST_SIZE, "index list torrent")
    index_names(chosen, data)  # raises unless it is the list the signed index names
    path = ctx.cache.save_index_list(record.list_hash, data)
    torrent, ih = ctx.torrents.blob_torrent(path.name, data)
    if ih == record.list_infohash:  # serve it to the next reader, as manifests are served
        ctx.seed_torrent(
            SeedEntry(
                ih, "manifest", chosen.publisher, INDEX_SEED_NAME, record.seq, torrent, path.parent
            )
        )
    return data


# --- the catalogue ----------------------------------------------------------------------------


@dataclass(frozen=True)
class CatalogueEntry:
    """One model of a catalogue: its resolution, or why it could not be resolved."""

    reference: Reference
    resolution: Resolution | None = field(repr=False)
    error: HublessError | None = None

    def summary(self) -> dict[str, Any]:
        """Stable keys for `--json` output; latest-version fields are None on error."""
        base: dict[str, Any] = {"name": self.reference.name, "reference": str(self.reference)}
        if self.resolution is None:
            message = self.error.message if self.error is not None else "not resolved"
            return {**base, **dict.fromkeys(_RELEASE_KEYS), "error": message}
        res = self.resolution
        return {
            **base,
            **release_summary(res.latest.manifest),
            "versions": len(res.latest.manifest.history) + 1,
            "stale": res.stale,
            "error": None,
        }


_RELEASE_KEYS = (
    "version",
    "seq",
    "published_at",
    "files",
    "size",
    "description",
    "license",
    "tags",
    "yanked",
    "versions",
    "stale",
)


def release_summary(m: Manifest) -> dict[str, Any]:
    """What a catalogue or a search shows of a revision (stable `--json` keys)."""
    return {
        "version": m.version,
        "seq": m.seq,
        "published_at": m.created,
        "files": len(m.files),
        "size": m.total_size,
        "description": m.description,
        "license": m.license,
        "tags": list(m.tags),
        "yanked": m.yanked,
    }


@dataclass(frozen=True)
class Catalogue:
    """Every model a publisher's index lists, each resolved with every rule of §8.1."""

    index: IndexReading
    entries: tuple[CatalogueEntry, ...]

    def __repr__(self) -> str:
        return (
            f"Catalogue({self.index.publisher.text[:12]}…, index seq {self.index.seq}, "
            f"models={len(self.entries)}, stale={self.index.stale})"
        )

    def summary(self) -> dict[str, Any]:
        return {
            "publisher": self.index.publisher.text,
            "index_seq": self.index.seq,
            "index_published_at": self.index.published_at,
            "stale": self.index.stale,
            "models": [entry.summary() for entry in self.entries],
        }


def catalogue(ctx: Context, publisher: PublicKey) -> Catalogue:
    """Read `publisher`'s index and resolve each model in it (the latest revision of each).

    A model that cannot be resolved (no record, bad data) is listed with its error; the
    index itself failing raises (see `read_index`).
    """
    reading = read_index(ctx, publisher)
    entries = []
    for name in reading.names:
        ref = Reference(publisher, name)
        try:
            entries.append(CatalogueEntry(ref, resolve(ctx, ref)))
        except (NetworkError, UntrustedDataError) as exc:
            ctx.emit(Event("resolve", f"{name}: {exc.message}"))
            entries.append(CatalogueEntry(ref, None, exc))
    return Catalogue(reading, tuple(entries))


# --- search -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class SearchHit:
    """A model this home knows whose name, description or tags match every search word.

    `manifest` is None for a model known only by name, from an index.
    """

    reference: Reference
    manifest: Manifest | None = field(repr=False)
    matched: tuple[str, ...]  # "name", "tags", "description"
    followed: bool
    score: float

    def summary(self) -> dict[str, Any]:
        release = (
            release_summary(self.manifest)
            if self.manifest is not None
            else dict.fromkeys(_RELEASE_KEYS[:-2])
        )
        return {
            "reference": str(self.reference),
            "publisher": self.reference.publisher.text,
            "name": self.reference.name,
            **release,
            "matched": list(self.matched),
            "followed": self.followed,
        }


def search(ctx: Context, text: str) -> list[SearchHit]:
    """Models this home knows (pulled, resolved, listed by an accepted index) matching `text`.

    Each whitespace-separated word must occur, case-insensitively, in the name, a tag or the
    description of the newest verified manifest held (a model known only from an index is
    matched by name). Best matches first: name, then tags, then description. No network.
    Raises `UsageError` for text with no word.
    """
    words = text.casefold().split()
    if not words:
        raise UsageError("search for at least one word")
    follows = Follows(ctx.state)
    followed = {(m.publisher, m.name) for m in follows.models()}
    now = int(time.time())
    candidates: dict[tuple[PublicKey, str], Manifest | None] = {}
    for index in follows.known_indexes():
        for name in index.names:
            candidates[(index.publisher, name)] = None
    for model in ctx.state.models():
        try:
            verified = verify_manifest(model.manifest, model.publisher, model.name, now=now)
        except UntrustedDataError:
            continue  # the store held it verified; a clock far behind may refuse it now
        candidates[(model.publisher, model.name)] = verified.manifest
    hits = []
    for (publisher, name), manifest in candidates.items():
        scored = _score(words, name, manifest)
        if scored is not None:
            score, matched = scored
            version = manifest.version if manifest is not None else None
            hits.append(
                SearchHit(
                    Reference(publisher, name, version),
                    manifest,
                    matched,
                    (publisher, name) in followed,
                    score,
                )
            )
    return sorted(hits, key=lambda h: (-h.score, h.reference.name, h.reference.publisher.text))


def _score(
    words: list[str], name: str, manifest: Manifest | None
) -> tuple[float, tuple[str, ...]] | None:
    fields = {
        "name": (3.0, [name.casefold()]),
        "tags": (2.0, [t.casefold() for t in manifest.tags] if manifest else []),
        "description": (1.0, [(manifest.description or "").casefold()] if manifest else []),
    }
    score = 0.0
    matched: list[str] = []
    for word in words:
        hit = False
        for label, (weight, texts) in fields.items():
            if any(word in t for t in texts):
                score += weight * (1.5 if word in texts else 1.0)  # a whole name or tag
                hit = True
                if label not in matched:
                    matched.append(label)
        if not hit:
            return None
    return score, tuple(matched)
