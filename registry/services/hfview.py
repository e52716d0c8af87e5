"""Keep the Hugging Face-compatible view in step with the cache (`hubless.store.hfcache`).

A pull adds its version when `config.hf_cache` (or `--hf-cache`) asks for it; `rm` takes it
away again. `main` follows the newest version whose complete snapshot is in the cache.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from ..core.manifest import FileEntry, Manifest, VerifiedManifest
from ..store import hfcache
from ..store.cache import METADATA_DIR
from .context import Context
from .events import Event


def add_to_hf_cache(
    ctx: Context, verified: VerifiedManifest, files: tuple[FileEntry, ...]
) -> Path | None:
    """Link `files` of a pulled version into the Hugging Face cache; return its repo folder.

    Returns None (and says why) for a name huggingface_hub refuses (`--` in it).
    """
    m = verified.manifest
    root = ctx.config.hf_cache_dir
    if root is None:
        return None
    if not hfcache.compatible(m.publisher.text, m.name):
        ctx.emit(Event("hf-cache", f"not in the Hugging Face cache: {m.name!r} has '--' in it"))
        return None
    folder = hfcache.repo_folder(root, m.publisher.text, m.name)
    commit = hfcache.commit_of(verified.hash)
    labels = [m.version]
    newest = _newest_complete(ctx, m)
    if newest is None or newest[0] <= m.seq:
        labels.append(hfcache.MAIN)
    entries = [(f.path, ctx.cache.blob(f.sha256), f.sha256) for f in files]
    with ctx.cache.locks.hold(f"hf-{m.publisher.text}-{m.name}"):
        hfcache.add_version(folder, commit, labels, entries)
    repo = hfcache.repo_id(m.publisher.text, m.name)
    ctx.emit(Event("hf-cache", f"in the Hugging Face cache as {repo} (revision {m.version})"))
    return folder


def remove_from_hf_cache(ctx: Context, m: Manifest, manifest_hash: bytes) -> None:
    """Remove a version from the view (if there); `main` moves to the newest one left."""
    root = ctx.config.hf_cache_dir
    if root is None:
        return
    folder = hfcache.repo_folder(root, m.publisher.text, m.name)
    if not folder.is_dir():
        return
    with ctx.cache.locks.hold(f"hf-{m.publisher.text}-{m.name}"):
        hfcache.remove_version(folder, hfcache.commit_of(manifest_hash))
        newest = _newest_complete(ctx, m)
        if folder.is_dir() and newest is not None and not (folder / "refs" / "main").exists():
            hfcache.point(folder, hfcache.MAIN, newest[1])


def _newest_complete(ctx: Context, m: Manifest) -> tuple[int, str] | None:
    """(seq, commit) of the newest complete snapshot of `m`'s model in the cache."""
    snapshots = ctx.cache.model_dir(m.publisher, m.name) / "snapshots"
    seqs = sorted(
        (int(p.name) for p in snapshots.iterdir() if p.name.isdigit())
        if snapshots.is_dir()
        else (),
        reverse=True,
    )
    for seq in seqs:
        try:
            data = (snapshots / str(seq) / METADATA_DIR / "manifest").read_bytes()
        except OSError:
            continue
        return seq, hfcache.commit_of(hashlib.sha256(data).digest())
    return None
