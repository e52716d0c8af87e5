"""Folders from other BitTorrent clients: check them against the network, adopt them (§8.6).

A lab may fetch a model with aria2c or qBittorrent from an exported torrent. `verify_remote`
checks such a folder against the signed manifest the reference resolves to (the folder has no
`.hubless/manifest`), ignoring the BEP-47 pad files some clients write. `import_folder`
copies a folder that passed into the cache as that version, so `hubless seed` serves it to
hubless consumers like any pulled version.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..core.errors import IntegrityError
from ..core.refs import Reference
from ..store.state import SeedEntry
from .context import Context
from .events import Event
from .hfview import add_to_hf_cache
from .pull import GC_LOCK, model_lock
from .resolve import Resolution, resolve
from .verify import VerifyReport, check_files


@dataclass(frozen=True)
class Imported:
    path: Path
    resolution: Resolution
    report: VerifyReport

    def summary(self) -> dict[str, Any]:
        return {
            **self.resolution.summary(),
            "path": str(self.path),
            "from": str(self.report.folder),
            "pads": list(self.report.pads),
            "extra": list(self.report.extra),
        }


def verify_remote(ctx: Context, folder: Path, ref: Reference) -> tuple[VerifyReport, Resolution]:
    """Check `folder` against the manifest `ref` resolves to (spec §8.1), every file."""
    resolution = resolve(ctx, ref)
    return check_files(folder, resolution.target), resolution


def import_folder(ctx: Context, folder: Path, ref: Reference) -> Imported:
    """Adopt `folder` into the cache as `ref`'s version once every file matched.

    Files are copied (a reflink where the filesystem can), so the folder stays the user's.
    Raises `IntegrityError` when any file is missing or differs, and what `resolve` raises.
    """
    locks = ctx.cache.locks
    wait = ctx.config.transfer_timeout
    with (
        locks.hold(GC_LOCK, shared=True, timeout=wait, what="the cache (a prune or rm runs)"),
        locks.hold(model_lock(ref), shared=True, timeout=wait, what=f"{ref.name} (rm runs)"),
    ):
        report, resolution = verify_remote(ctx, folder, ref)
        m = resolution.target.manifest
        if not report.ok:
            raise IntegrityError(
                f"{folder} is not {ref.at(m.version)}: {len(report.missing)} files missing, "
                f"{len(report.modified)} differ",
                hint="check it with: hubless verify FOLDER --ref " + str(ref.at(m.version)),
            )
        ctx.emit(Event("import", f"copying {len(m.files)} verified files into the cache"))
        for entry in m.files:
            ctx.cache.add_blob(folder / entry.path, entry)  # hashes the copy again
        snapshot = ctx.cache.snapshot(m.publisher, m.name, m.seq, m.files, resolution.target.data)
        ih = m.content_infohash
        torrent = ctx.cache.torrent(ih)
        if torrent is None:  # rebuilt from the files: deterministic, so the infohash must agree
            made = ctx.torrents.content_torrent(snapshot, [f.path for f in m.files], name=m.name)
            if made.infohash_v1 != ih:
                raise IntegrityError(f"the files of {m.name} do not make the signed torrent")
            torrent = made.torrent_bytes
            ctx.cache.save_torrent(ih, torrent)
        ctx.seed_torrent(
            SeedEntry(
                ih,
                "content",
                m.publisher,
                m.name,
                m.seq,
                torrent,
                ctx.cache.seed_dir(ih, m.name, snapshot),
            )
        )
        if ctx.config.hf_cache:
            add_to_hf_cache(ctx, resolution.target, m.files)
        ctx.emit(Event("done", f"{ref.at(m.version)} is in the cache at {snapshot}"))
        return Imported(snapshot, resolution, report)
