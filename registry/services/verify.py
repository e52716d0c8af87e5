"""Check a model folder on disk against the signed manifest it was pulled with (spec §8.6).

A pulled folder carries `.hubless/manifest`; the manifest's own signature is checked under
the publisher key it names (or the one the caller expects), then every file's size and
SHA-256. Extra files are reported but are no failure of the model itself. A partial pull
also carries `.hubless/selection`: then exactly the selected files are checked, and the
report says so (the selection is not signed: it only says what was asked for).

The folder is not trusted: every file is opened without following symbolic links below it
and must be a regular file (a FIFO never blocks, `/dev/zero` is never read), and the
manifest is read with the spec's size bound.
"""

from __future__ import annotations

import hashlib
import os
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..core import canonical
from ..core.errors import OversizedError, StoreError, UsageError
from ..core.keys import PublicKey
from ..core.manifest import (
    MAX_MANIFEST_SIZE,
    FileEntry,
    VerifiedManifest,
    decode_body,
    verify_manifest,
)
from ..files import NotRegularFileError, TooLargeError, open_regular, read_regular
from ..store.cache import METADATA_DIR, read_selection

#: Where BitTorrent clients that write BEP-47 pad files put them (aria2: `<name>/.pad/N`).
PAD_DIR = ".pad"


@dataclass(frozen=True)
class VerifyReport:
    folder: Path
    manifest: VerifiedManifest
    ok_files: int
    missing: tuple[str, ...] = ()
    modified: tuple[str, ...] = ()
    extra: tuple[str, ...] = field(default=())
    selected: int | None = None  # files of a partial pull's selection; None: all were asked
    pads: tuple[str, ...] = ()  # BEP-47 pad files another client left (ignored)

    @property
    def ok(self) -> bool:
        return not self.missing and not self.modified

    def summary(self) -> dict[str, Any]:
        m = self.manifest.manifest
        return {
            "folder": str(self.folder),
            "publisher": m.publisher.text,
            "name": m.name,
            "version": m.version,
            "seq": m.seq,
            "ok": self.ok,
            "ok_files": self.ok_files,
            "missing": list(self.missing),
            "modified": list(self.modified),
            "extra": list(self.extra),
            "selected": self.selected,
            "pads": list(self.pads),
        }


def load_folder_manifest(folder: Path, publisher: PublicKey | None) -> VerifiedManifest:
    """The folder's `.hubless/manifest`, read as a regular file of at most 32 MiB, verified.

    Raises `UsageError` when it is missing, not a regular file (a link, FIFO or device) or
    not a manifest, `OversizedError` over the size limit (§5.2), and `verify_manifest`'s
    errors (§5.5).
    """
    path = folder / METADATA_DIR / "manifest"
    try:
        data = read_regular(folder, f"{METADATA_DIR}/manifest", MAX_MANIFEST_SIZE)
    except FileNotFoundError:
        raise UsageError(
            f"{folder} has no {METADATA_DIR}/manifest",
            hint="only folders made by hubless pull can be verified",
        ) from None
    except NotRegularFileError:
        raise UsageError(
            f"{path} is not a regular file (a symbolic link, FIFO or device, or it lies "
            "below one): hubless reads it only as a plain file",
            hint="only folders made by hubless pull can be verified",
        ) from None
    except TooLargeError:
        raise OversizedError(
            f"{path} is larger than a manifest may be ({MAX_MANIFEST_SIZE:,} bytes)"
        ) from None
    except OSError as exc:
        raise StoreError(f"cannot read {path}: {exc.strerror}") from exc
    body = canonical.decode(data, what="manifest", max_size=MAX_MANIFEST_SIZE)
    inner = body.get("manifest") if isinstance(body, dict) else None
    claimed = decode_body(inner) if isinstance(inner, bytes) else None
    if claimed is None:
        raise UsageError(f"{path} is not a hubless manifest")
    key = publisher or claimed.publisher
    return verify_manifest(data, key, claimed.name, now=int(time.time()))


def verify_folder(folder: Path, publisher: PublicKey | None = None) -> VerifyReport:
    """Verify `folder` against its `.hubless/manifest`, hashing on both cores.

    A listed file that is a link, lies below a link or is not a regular file is reported
    as modified; links are never followed below `folder`.
    """
    verified = load_folder_manifest(folder, publisher)
    selection = read_selection(folder)
    files = verified.manifest.files
    if selection is not None:
        unknown = selection - {f.path for f in files}
        if unknown:
            raise UsageError(
                f"{folder}/{METADATA_DIR}/selection names files the manifest does not list: "
                + ", ".join(sorted(unknown)[:3])
            )
        files = tuple(f for f in files if f.path in selection)
    return check_files(folder, verified, files, selected=selection is not None)


def check_files(
    folder: Path,
    verified: VerifiedManifest,
    files: tuple[FileEntry, ...] | None = None,
    *,
    selected: bool = False,
) -> VerifyReport:
    """Check `files` (default: all the manifest lists) under `folder` by size and SHA-256.

    A folder another BitTorrent client downloaded may hold BEP-47 pad files under a
    top-level `.pad/` (aria2 writes them): they are reported as `pads`, not as extra.
    """
    files = verified.manifest.files if files is None else files

    def check(entry: FileEntry) -> str:
        try:
            fd = open_regular(folder, entry.path)
        except FileNotFoundError:
            return "missing"
        except OSError:  # a link, FIFO, device or folder where the file should be
            return "modified"
        with os.fdopen(fd, "rb") as f:
            if os.fstat(f.fileno()).st_size != entry.size:
                return "modified"
            return "ok" if hashlib.file_digest(f, "sha256").digest() == entry.sha256 else "modified"

    with ThreadPoolExecutor(max_workers=2) as pool:
        states = list(pool.map(check, files))
    listed = {f.path for f in verified.manifest.files}
    extra, pads = [], []
    for root, dirs, names in os.walk(folder):
        dirs[:] = [d for d in dirs if d != METADATA_DIR or Path(root) != folder]
        for name in names:
            rel = Path(root, name).relative_to(folder).as_posix()
            if rel.startswith(PAD_DIR + "/"):
                pads.append(rel)
            elif rel not in listed:
                extra.append(rel)
    return VerifyReport(
        folder,
        verified,
        states.count("ok"),
        tuple(f.path for f, s in zip(files, states, strict=True) if s == "missing"),
        tuple(f.path for f, s in zip(files, states, strict=True) if s == "modified"),
        tuple(sorted(extra)),
        len(files) if selected else None,
        tuple(sorted(pads)),
    )
