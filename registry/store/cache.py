"""The content cache: blobs by SHA-256, one snapshot folder per version (like model hubs).

    CACHE/CACHEDIR.TAG
    CACHE/blobs/<sha256>                       immutable file contents, read-only
    CACHE/models/<key>/<name>/snapshots/<seq>/ hard links to blobs (copies across filesystems)
    CACHE/manifests/<hash>.hubless-manifest    signed manifests, seeded as manifest torrents
    CACHE/partial/<infohash>/                  downloads in progress (resume from here)
    CACHE/locks/<name>.lock                    file locks: who downloads or builds what now

A file enters `blobs/` only after its SHA-256 matched, and a snapshot appears under its
final name only by one rename of a complete folder: a half-finished pull never looks done.
Processes and threads sharing the cache take turns through `locks` (`hubless.store.locks`):
one builds a snapshot, the others wait and then find it there.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import stat
import threading
from collections.abc import Iterable
from pathlib import Path

from ..core.errors import IntegrityError, StoreError
from ..core.keys import PublicKey
from ..core.manifest import FileEntry
from ..files import atomic_write, fsync_dir
from .locks import Locks

CACHEDIR_TAG = (
    b"Signature: 8a477f597d28d172789f06886806bc55\n"
    b"# This file marks the hubless model cache; backup tools may skip this folder.\n"
)
_FICLONE = 0x40049409  # ioctl: clone a whole file (btrfs, xfs, bcachefs)
MANIFEST_SUFFIX = ".hubless-manifest"
INDEX_LIST_SUFFIX = ".hubless-index"
METADATA_DIR = ".hubless"


def sha256_file(path: Path) -> bytes:
    """SHA-256 of a file's bytes."""
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").digest()


class Cache:
    """The cache folder at `root`."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.blobs = root / "blobs"
        for folder in (self.blobs, root / "models", root / "manifests", root / "partial"):
            folder.mkdir(parents=True, exist_ok=True)
        self.locks = Locks(root / "locks")
        tag = root / "CACHEDIR.TAG"
        if not tag.exists():
            atomic_write(tag, CACHEDIR_TAG)

    # --- blobs --------------------------------------------------------------------------------

    def blob(self, sha256: bytes) -> Path:
        return self.blobs / sha256.hex()

    def has_blob(self, entry: FileEntry) -> bool:
        try:
            return self.blob(entry.sha256).stat().st_size == entry.size
        except FileNotFoundError:
            return False

    def add_blob(self, source: Path, entry: FileEntry, *, move: bool = False) -> Path:
        """Put `source` into the cache as the blob of `entry` if its bytes match the manifest.

        `move` renames the file in (a finished download); otherwise it is copied (a reflink
        where the filesystem can), never hard-linked: an author editing a working file in
        place must not change what the cache holds and seeds. The copy is what gets hashed.
        """
        target = self.blob(entry.sha256)
        if self.has_blob(entry):
            if move:
                source.unlink()
            return target
        tmp = self.blobs / f".{target.name}.{os.getpid()}.{threading.get_ident()}.tmp"
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        if move:
            os.replace(source, tmp)
        else:
            copy_file(source, tmp)
        try:
            size = tmp.stat().st_size
            if size != entry.size or sha256_file(tmp) != entry.sha256:
                raise IntegrityError(
                    f"{entry.path}: content does not match the manifest ({size} bytes; expected "
                    f"{entry.size} with sha256 {entry.sha256.hex()[:16]}...)"
                )
            os.chmod(tmp, stat.S_IRUSR | stat.S_IRGRP | stat.S_IROTH)
            os.replace(tmp, target)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
            raise
        return target

    # --- snapshots ----------------------------------------------------------------------------

    def model_dir(self, publisher: PublicKey, name: str) -> Path:
        return self.root / "models" / publisher.text / name

    def snapshot_dir(self, publisher: PublicKey, name: str, seq: int) -> Path:
        return self.model_dir(publisher, name) / "snapshots" / str(seq)

    def snapshot(
        self,
        publisher: PublicKey,
        name: str,
        seq: int,
        files: Iterable[FileEntry],
        manifest: bytes,
        *,
        tag: str | None = None,
        partial: bool = False,
    ) -> Path:
        """The snapshot folder of one version, built from blobs if not there yet.

        `tag` names a partial selection (`<seq>~<tag>`), else the folder holds every file.
        Several processes asking at once build it once: the others wait, then find it.
        """
        final = self.snapshot_dir(publisher, name, seq)
        if tag is not None:
            final = final.with_name(f"{final.name}~{tag}")
        if final.is_dir():
            return final
        lock = "snapshot-" + hashlib.sha256(str(final).encode()).hexdigest()[:32]
        with self.locks.hold(lock, what=f"the snapshot {final}"):
            if final.is_dir():
                return final
            return materialise(self, files, final, manifest, partial=partial)

    def seed_dir(self, infohash: bytes, torrent_name: str, snapshot: Path) -> Path:
        """A folder holding `torrent_name` → `snapshot`, laid out as the torrent expects."""
        folder = self.root / "seed" / infohash.hex()
        folder.mkdir(parents=True, exist_ok=True)
        link = folder / torrent_name
        if not (link.is_symlink() and link.resolve() == snapshot.resolve()):
            tmp = folder / f".{torrent_name}.{os.getpid()}.tmp"
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
            os.symlink(snapshot.resolve(), tmp, target_is_directory=True)
            os.replace(tmp, link)
        return folder

    def manifest_path(self, manifest_hash: bytes) -> Path:
        return self.root / "manifests" / (manifest_hash.hex() + MANIFEST_SUFFIX)

    def save_manifest(self, manifest_hash: bytes, data: bytes) -> Path:
        path = self.manifest_path(manifest_hash)
        if not path.exists():
            atomic_write(path, data)
        return path

    def index_list_path(self, digest: bytes) -> Path:
        return self.root / "manifests" / (digest.hex() + INDEX_LIST_SUFFIX)

    def save_index_list(self, digest: bytes, data: bytes) -> Path:
        """A publisher index list, named by its SHA-256 like manifests, for seeding."""
        path = self.index_list_path(digest)
        if not path.exists():
            atomic_write(path, data)
        return path

    def torrent(self, infohash: bytes) -> bytes | None:
        """The .torrent bytes kept for a content infohash, if any."""
        try:
            return (self.root / "torrents" / f"{infohash.hex()}.torrent").read_bytes()
        except FileNotFoundError:
            return None

    def save_torrent(self, infohash: bytes, data: bytes) -> None:
        path = self.root / "torrents" / f"{infohash.hex()}.torrent"
        if not path.exists():
            atomic_write(path, data)

    def partial_dir(self, infohash: bytes) -> Path:
        return self.root / "partial" / infohash.hex()


def materialise(
    cache: Cache,
    files: Iterable[FileEntry],
    final: Path,
    manifest: bytes,
    *,
    link: bool = True,
    partial: bool = False,
) -> Path:
    """Build a folder of `files` from blobs next to `final`, then rename it into place.

    `final` must not exist, or be an empty folder. A crash leaves only a hidden temp folder.
    `link` hard-links the read-only blobs (cache snapshots); folders a user owns get copies.
    The signed manifest goes to `.hubless/manifest` so `hubless verify` can check the folder;
    a `partial` selection also writes `.hubless/selection` (`write_selection`), so that
    verify checks exactly the files that were asked for.
    """
    files = list(files)
    final.parent.mkdir(parents=True, exist_ok=True)
    if final.exists() and (not final.is_dir() or any(final.iterdir())):
        raise StoreError(f"{final} already exists and is not empty")
    tmp = final.parent / f".{final.name}.{os.getpid()}.partial"
    if tmp.exists():
        shutil.rmtree(tmp)
    try:
        for entry in files:
            blob = cache.blob(entry.sha256)
            if not blob.exists():
                raise StoreError(f"{entry.path} is not in the cache yet")
            target = tmp / entry.path
            target.parent.mkdir(parents=True, exist_ok=True)
            if link:
                _link_or_copy(blob, target)
            else:
                copy_file(blob, target)
        (tmp / METADATA_DIR).mkdir(parents=True, exist_ok=True)
        (tmp / METADATA_DIR / "manifest").write_bytes(manifest)
        if partial:
            write_selection(tmp, [f.path for f in files])
        with contextlib.suppress(FileNotFoundError):
            final.rmdir()  # an empty folder the user named with --to
        os.replace(tmp, final)
        fsync_dir(final.parent)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return final


SELECTION = "selection"
#: Largest `.hubless/selection` read, in bytes (a manifest lists at most this much too).
MAX_SELECTION_SIZE = 32 * 1024 * 1024


def write_selection(folder: Path, paths: list[str]) -> None:
    """Record in `folder/.hubless/selection` which of the manifest's files a pull chose.

    JSON `{"files": [path, ...]}`, sorted. It is not signed: it says what was asked for, so
    that a check of the folder does not report the rest as missing (spec §8.6).
    """
    data = json.dumps({"files": sorted(paths)}, indent=1).encode() + b"\n"
    (folder / METADATA_DIR / SELECTION).write_bytes(data)


def read_selection(folder: Path) -> frozenset[str] | None:
    """The paths `folder/.hubless/selection` names, None without one; `StoreError` if it
    is not what `write_selection` writes."""
    path = folder / METADATA_DIR / SELECTION
    try:
        with open(path, "rb") as f:
            data = f.read(MAX_SELECTION_SIZE + 1)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise StoreError(f"cannot read {path}: {exc.strerror}") from exc
    try:
        doc = json.loads(data) if len(data) <= MAX_SELECTION_SIZE else None
    except ValueError:
        doc = None
    files = doc.get("files") if isinstance(doc, dict) else None
    if not isinstance(files, list) or not all(isinstance(p, str) for p in files):
        raise StoreError(f"{path} is not a selection hubless wrote", hint="remove it to check all")
    return frozenset(files)


def _link_or_copy(source: Path, target: Path) -> None:
    try:
        os.link(source, target)
    except OSError:
        copy_file(source, target)


def copy_file(source: Path, target: Path) -> None:
    """Copy bytes: a copy-on-write clone where the filesystem supports it, else a kernel copy."""
    with open(source, "rb") as src, open(target, "wb") as dst:
        try:
            fcntl.ioctl(dst.fileno(), _FICLONE, src.fileno())
            return
        except OSError:
            pass
        _kernel_copy(src.fileno(), dst.fileno())


def _kernel_copy(src: int, dst: int) -> None:
    size = os.fstat(src).st_size
    copied = 0
    while copied < size:
        n = os.copy_file_range(src, dst, size - copied)
        if n == 0:
            break
        copied += n
