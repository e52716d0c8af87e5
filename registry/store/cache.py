"""The content cache: blobs by SHA-256, one snapshot folder per version (like model hubs).

    CACHE/CACHEDIR.TAG
    CACHE/blobs/<sha256>                       immutable file contents, read-only
    CACHE/models/<key>/<name>/snapshots/<seq>/ hard links to blobs (copies across filesystems)
    CACHE/manifests/<hash>.hubless-manifest    signed manifests, seeded as manifest torrents
    CACHE/partial/<infohash>/                  downloads in progress (resume from here)
    CACHE/tmp/                                 blobs being copied or hashed
    CACHE/locks/<name>.lock                    file locks: who downloads or builds what now

A file enters `blobs/` only after its SHA-256 matched, and a snapshot appears under its
final name only by one rename of a complete folder: a half-finished pull never looks done.
Temporary names carry their process's id; opening the cache removes those of processes
that no longer run (a publish or pull killed with SIGKILL, spec §8.3).
Processes and threads sharing the cache take turns through `locks` (`hubless.store.locks`):
one builds a snapshot, the others wait and then find it there.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import stat
from collections.abc import Iterable
from pathlib import Path

from ..core.errors import IntegrityError, StoreError
from ..core.keys import PublicKey
from ..core.manifest import FileEntry
from ..files import (
    atomic_write,
    copy_file,
    fsync_dir,
    link_or_copy,
    make_temp_dir,
    make_temp_file,
    move_file,
    open_regular,
    read_regular,
    remove_stale,
)
from .hashed import Hashed
from .locks import Locks

CACHEDIR_TAG = (
    b"Signature: 8a477f597d28d172789f06886806bc55\n"
    b"# This file marks the hubless model cache; backup tools may skip this folder.\n"
)
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
        self.tmp = root / "tmp"
        try:
            for folder in (self.blobs, root / "models", root / "manifests", self.partial_root):
                folder.mkdir(parents=True, exist_ok=True)
            self.tmp.mkdir(exist_ok=True)
            remove_stale(self.tmp, suffix=".tmp")  # blobs a killed process was copying
            tag = root / "CACHEDIR.TAG"
            if not tag.exists():
                atomic_write(tag, CACHEDIR_TAG)
            self.locks = Locks(root / "locks")
        except OSError as exc:
            raise StoreError(f"cannot use the cache {root}: {exc.strerror or exc}") from exc

    # --- blobs --------------------------------------------------------------------------------

    def blob(self, sha256: bytes) -> Path:
        return self.blobs / sha256.hex()

    def has_blob(self, entry: FileEntry) -> bool:
        try:
            return self.blob(entry.sha256).stat().st_size == entry.size
        except FileNotFoundError:
            return False

    def evict(self, entry: FileEntry) -> None:
        """Remove the blob of `entry` (it no longer matches its name): it is fetched again."""
        with contextlib.suppress(FileNotFoundError):
            self.blob(entry.sha256).unlink()

    def check_space(self, needed: int, folder: Path | None = None, *, what: str) -> None:
        """Refuse (`StoreError`) when `folder` (default: the cache) has under `needed` bytes
        free, naming both numbers (spec §8.4). Reflinks may need less: the check is for the
        worst case."""
        where = folder or self.root
        probe = where
        while not probe.exists() and probe != probe.parent:
            probe = probe.parent
        free = shutil.disk_usage(probe).free
        if needed > free:
            raise StoreError(
                f"{what} needs {needed:,} bytes in {where}; only {free:,} are free",
                hint="free some space (or use another --home or --to) and run it again",
            )

    def add_blob(
        self, source: Path, entry: FileEntry, *, move: bool = False, hashed: Hashed | None = None
    ) -> Path:
        """Put `source` into the cache as the blob of `entry` if its bytes match the manifest.

        `move` renames the file in (a finished download); otherwise it is copied (a reflink
        where the filesystem can), never hard-linked: an author editing a working file in
        place must not change what the cache holds and seeds. The copy is what gets hashed,
        unless `hashed` (with `move`) holds the manifest's SHA-256 of this very file, taken
        while it downloaded, and the renamed file was not written since.
        Raises `IntegrityError` when the bytes differ, `StoreError` when the disk refuses.
        """
        target = self.blob(entry.sha256)
        if self.has_blob(entry):
            if move:
                source.unlink()
            return target
        holder: Path | None = None
        try:
            if move:
                # A moved file goes to a fresh name in a private folder: renamed over an
                # existing file (an empty temp file), ext4 first writes the whole file out
                # (auto_da_alloc), 0.2-2 s per 512 MiB just downloaded.
                holder = make_temp_dir(self.tmp, target.name, ".tmp", mode=0o700)
                tmp = holder / "blob"
            else:
                tmp = make_temp_file(self.tmp, target.name)
        except OSError as exc:
            raise StoreError(f"cannot write in {self.tmp}: {exc.strerror or exc}") from exc
        try:
            if move:
                move_file(source, tmp)
            else:
                copy_file(source, tmp)
            size = tmp.stat().st_size
            known = (
                move
                and hashed is not None
                and hashed.sha256 == entry.sha256
                and hashed.still_describes(tmp)
            )
            if size != entry.size or (not known and sha256_file(tmp) != entry.sha256):
                raise IntegrityError(
                    f"{entry.path}: content does not match the manifest ({size} bytes; expected "
                    f"{entry.size} with sha256 {entry.sha256.hex()[:16]}...)"
                )
            os.chmod(tmp, stat.S_IRUSR | stat.S_IRGRP | stat.S_IROTH)
            os.replace(tmp, target)
        except OSError as exc:
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
            raise StoreError(
                f"cannot keep {entry.path} in the cache: {exc.strerror or exc}",
                hint="check the free space and permissions of the home folder",
            ) from exc
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
            raise
        finally:
            if holder is not None:
                with contextlib.suppress(OSError):
                    holder.rmdir()
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
        """The snapshot folder of one version, built from blobs if not there yet, and
        checked (and repaired) if it is (see `checked_snapshot`)."""
        return self.checked_snapshot(
            publisher, name, seq, files, manifest, tag=tag, partial=partial
        )[0]

    def checked_snapshot(
        self,
        publisher: PublicKey,
        name: str,
        seq: int,
        files: Iterable[FileEntry],
        manifest: bytes,
        *,
        tag: str | None = None,
        partial: bool = False,
    ) -> tuple[Path, tuple[str, ...]]:
        """The snapshot folder of one version and the paths repaired in it (`checked_folder`).

        `tag` names a partial selection (`<seq>~<tag>`, with `partial`: it also holds
        `.hubless/selection`), else the folder holds every file. Several processes asking
        at once build or repair it once: the others wait, then find it checked.
        """
        final = self.snapshot_dir(publisher, name, seq)
        if tag is not None:
            final = final.with_name(f"{final.name}~{tag}")
        lock = "snapshot-" + hashlib.sha256(str(final).encode()).hexdigest()[:32]
        with self.locks.hold(lock, what=f"the snapshot {final}"):
            return self.checked_folder(final, files, manifest, partial=partial)

    def checked_folder(
        self, final: Path, files: Iterable[FileEntry], manifest: bytes, *, partial: bool = False
    ) -> tuple[Path, tuple[str, ...]]:
        """`final` holding exactly what `files` and `manifest` sign, and what was repaired.

        Every file must be a regular file of the signed size that is the verified blob
        itself (a hard link to it) or, where it is a copy, hashes to it; and
        `.hubless/manifest` must hold `manifest` (spec §8.4). A folder that fails is set
        aside and built again from the blobs, which must all be present (`StoreError`).
        """
        entries = tuple(files)
        if not final.is_dir() or final.is_symlink():
            if final.is_symlink() or final.exists():
                self._set_aside(final)
            return materialise(self, entries, final, manifest, partial=partial), ()
        damaged = tuple(e.path for e in entries if not self._intact(final, e))
        if not damaged and _holds(final, f"{METADATA_DIR}/manifest", manifest):
            if not partial or _holds_selection(final, entries):
                return final, ()
            damaged = (f"{METADATA_DIR}/{SELECTION}",)
        self._set_aside(final)
        rebuilt = materialise(self, entries, final, manifest, partial=partial)
        return rebuilt, damaged or (f"{METADATA_DIR}/manifest",)

    def _intact(self, folder: Path, entry: FileEntry) -> bool:
        """Whether `folder/entry.path` is the blob of `entry`, checked without following links."""
        try:
            fd = open_regular(folder, entry.path)
        except OSError:
            return False
        with os.fdopen(fd, "rb") as f:
            st = os.fstat(f.fileno())
            if st.st_size != entry.size:
                return False
            try:
                blob = self.blob(entry.sha256).stat()
            except FileNotFoundError:
                blob = None
            if blob is not None and (blob.st_dev, blob.st_ino) == (st.st_dev, st.st_ino):
                return blob.st_size == entry.size
            # A copy (links failed: another filesystem) or a stray file: hash it.
            return hashlib.file_digest(f, "sha256").digest() == entry.sha256

    def _set_aside(self, final: Path) -> None:
        """Move a damaged folder out of the way (then delete it): `final` is free again."""
        try:
            remove_stale(final.parent, final.name, ".damaged")
            if final.is_symlink() or not final.is_dir():
                final.unlink()  # a link or a file where a folder belongs: never followed
                return
            aside = make_temp_dir(final.parent, final.name, ".damaged")
            os.replace(final, aside)
        except OSError as exc:
            raise StoreError(f"cannot repair {final}: {exc.strerror or exc}") from exc
        shutil.rmtree(aside, ignore_errors=True)

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

    @property
    def partial_root(self) -> Path:
        """Where downloads in progress and metadata fetches keep their folders."""
        return self.root / "partial"

    def partial_dir(self, infohash: bytes) -> Path:
        return self.partial_root / infohash.hex()


def _holds(folder: Path, relpath: str, data: bytes) -> bool:
    try:
        return read_regular(folder, relpath, len(data)) == data
    except OSError:
        return False


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

    `final` must not exist, or be an empty folder, and is never a symbolic link. Copies
    (`link` False: a folder that leaves the cache for the user) are hashed again: a blob
    that no longer matches its name is removed from the cache and `IntegrityError` raised,
    so the caller can fetch it again (spec §8.4). The folder
    is built under an unpredictable name made exclusively next to it (`.<name>.<pid>.*.partial`);
    a crash leaves only that, and the next build of `final` removes the leftovers of dead
    processes. `link` hard-links the read-only blobs (cache snapshots); folders a user owns
    get copies. The signed manifest goes to `.hubless/manifest` so `hubless verify` can check
    the folder; a `partial` selection also writes `.hubless/selection` (`write_selection`),
    so that verify checks exactly the files that were asked for. Raises `StoreError` when
    `final` is taken or the disk refuses a write.
    """
    files = list(files)
    try:
        final.parent.mkdir(parents=True, exist_ok=True)
        _check_empty_target(final)
        remove_stale(final.parent, final.name, ".partial")
        tmp = make_temp_dir(final.parent, final.name)
    except OSError as exc:
        raise StoreError(f"cannot create a folder next to {final}: {exc.strerror}") from exc
    altered: list[FileEntry] = []
    try:
        for entry in files:
            blob = cache.blob(entry.sha256)
            if not blob.exists():
                raise StoreError(f"{entry.path} is not in the cache yet")
            target = tmp / entry.path
            target.parent.mkdir(parents=True, exist_ok=True)
            if link:
                link_or_copy(blob, target)
            else:
                copy_file(blob, target)
                if sha256_file(target) != entry.sha256:
                    altered.append(entry)
        if altered:
            for entry in altered:
                cache.evict(entry)
            raise IntegrityError(
                f"the cached copy of {', '.join(e.path for e in altered)} was altered "
                "after it was verified; it was removed from the cache",
                hint="pull again to fetch it from peers; check who can write the cache",
            )
        (tmp / METADATA_DIR).mkdir(parents=True, exist_ok=True)
        (tmp / METADATA_DIR / "manifest").write_bytes(manifest)
        if partial:
            write_selection(tmp, [f.path for f in files])
        _check_empty_target(final)
        with contextlib.suppress(FileNotFoundError):
            final.rmdir()  # an empty folder the user named with --to
        os.replace(tmp, final)  # a link put at `final` meanwhile makes this fail: ENOTDIR
        fsync_dir(final.parent)
    except OSError as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        raise StoreError(f"cannot write {final}: {exc.strerror or exc}") from exc
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return final


def _check_empty_target(final: Path) -> None:
    if final.is_symlink():
        raise StoreError(f"{final} is a symbolic link; hubless does not write through links")
    if final.exists() and (not final.is_dir() or any(final.iterdir())):
        raise StoreError(f"{final} already exists and is not empty")


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


def _holds_selection(folder: Path, files: tuple[FileEntry, ...]) -> bool:
    """Whether `folder/.hubless/selection` names exactly `files` (a partial snapshot)."""
    try:
        return read_selection(folder) == frozenset(f.path for f in files)
    except StoreError:
        return False
