"""Creating the torrents a release is made of: the content torrent and small blob torrents.

Content torrents are v1-only with BEP-47 canonical files (every file padded to a piece
boundary): an update that changes one file changes only that file's pieces, and v1 is what
every client (aria2, Transmission, rtorrent, libtorrent) can fetch. Output is deterministic:
the same files under the same name always give the same infohash.
"""

from __future__ import annotations

import hashlib
import os
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path, PurePosixPath
from typing import Any

import libtorrent as lt

from ..core.errors import HostilePathError, StoreError, UsageError
from .contract import ContentTorrent
from .profile import MAX_DECODE_TOKENS, MAX_METADATA_SIZE

MIN_PIECE = 256 * 1024
MAX_PIECE = 16 * 1024 * 1024
TARGET_PIECES = 4096
BLOB_PIECE = 16 * 1024

_CONTENT_FLAGS = lt.create_torrent.v1_only | lt.create_torrent.canonical_files
_READ_SIZE = 4 * 1024 * 1024
_IN_FLIGHT = 4  # SHA-256 chunks queued ahead of the hashing thread


def piece_length_for(total_size: int) -> int:
    """The content torrent's piece length in bytes for files summing to `total_size` (§5.6).

    The smallest power of two P from 256 KiB to 16 MiB with `total_size <= 4096 * P`, and
    16 MiB above 64 GiB. `total_size` is the sum of the files' sizes without padding: with
    pad files a torrent of many small files can have more than 4096 pieces.
    """
    piece = MIN_PIECE
    while piece < MAX_PIECE and total_size > piece * TARGET_PIECES:
        piece *= 2
    return piece


#: libtorrent's `load_torrent_limits` for every .torrent or resume file hubless parses.
TORRENT_LIMITS: Any = {
    "max_buffer_size": MAX_METADATA_SIZE + 1024 * 1024,  # resume data adds a little
    "max_decode_tokens": MAX_DECODE_TOKENS,
    "max_pieces": MAX_METADATA_SIZE // 20,  # every piece hash takes 20 bytes
}


def load_torrent_info(torrent_bytes: bytes) -> Any:
    """libtorrent's `torrent_info` of `torrent_bytes`, parsed with the spec's limits.

    libtorrent's defaults (3,000,000 bencode tokens, 10 MB) refuse torrents the spec allows
    (200,000 files, 64 MiB of metadata, spec §5.7); these limits accept all of them.
    Raises libtorrent's `RuntimeError` for bytes that are no torrent.
    """
    return lt.torrent_info(torrent_bytes, TORRENT_LIMITS)


def infohash_of(torrent_bytes: bytes) -> bytes:
    """The 20-byte v1 infohash of a .torrent file."""
    info = load_torrent_info(torrent_bytes)
    return bytes(info.info_hashes().v1.to_bytes())


def _check_relpath(relpath: str) -> PurePosixPath:
    path = PurePosixPath(relpath)
    if (
        not relpath
        or path.is_absolute()
        or any(part in ("", ".", "..") for part in relpath.split("/"))
        or "\\" in relpath
        or "\0" in relpath
    ):
        raise HostilePathError(f"file path {relpath!r} is not a plain relative path")
    return path


def _generate(ct: Any) -> bytes:
    ct.set_creation_date(0)  # determinism: no clock in the output
    return bytes(lt.bencode(ct.generate()))


def create_content_torrent(
    folder: str | os.PathLike[str],
    relpaths: Iterable[str],
    *,
    name: str | None = None,
    on_progress: Callable[[int], None] | None = None,
) -> ContentTorrent:
    """Hash `relpaths` under `folder` once into a v1 canonical-files torrent plus file SHA-256s.

    One read pass per file feeds both the SHA-1 piece hashes (this thread) and the file's
    SHA-256 (a second thread): hashlib releases the GIL, so the two cores share the work.
    The torrent's root directory is `name` (default: the folder's name). `on_progress`
    receives the number of bytes hashed so far, every few MiB.
    """
    root = Path(folder)
    torrent_name = name or root.resolve().name
    _check_relpath(torrent_name)
    if "/" in torrent_name:
        raise UsageError(f"torrent name {torrent_name!r} must be a single path component")
    sizes: dict[str, int] = {}
    for relpath in sorted(set(relpaths)):
        _check_relpath(relpath)
        try:
            sizes[relpath] = (root / relpath).stat().st_size
        except OSError as exc:
            raise StoreError(f"cannot read {root / relpath}: {exc.strerror}") from exc
    if not sizes:
        raise UsageError("a content torrent needs at least one file")
    if not any(sizes.values()):
        raise UsageError("every file is empty: there is nothing to share")
    piece = piece_length_for(sum(sizes.values()))
    entries = [lt.create_file_entry(f"{torrent_name}/{rel}", size) for rel, size in sizes.items()]
    ct = lt.create_torrent(entries, piece, _CONTENT_FLAGS)
    digests = _hash_into(ct, root, torrent_name, on_progress or (lambda done: None))
    data = _generate(ct)
    return ContentTorrent(data, infohash_of(data), digests, sizes, piece)


def _hash_into(
    ct: Any, root: Path, torrent_name: str, on_progress: Callable[[int], None]
) -> dict[str, bytes]:
    """Set every piece hash of `ct` from the files under `root`; return each file's SHA-256."""
    files = ct.files()
    piece_len = int(ct.piece_length())
    prefix = torrent_name + "/"
    digests: dict[str, bytes] = {}
    hashed = 0

    def advance(n: int) -> None:
        nonlocal hashed
        hashed += n
        on_progress(hashed)

    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="sha256") as pool:
        for i in range(files.num_files()):
            if files.file_flags(i) & lt.file_storage.flag_pad_file:
                continue
            path = str(files.file_path(i)).replace(os.sep, "/")
            rel = path[len(prefix) :] if path.startswith(prefix) else path
            offset, size = int(files.file_offset(i)), int(files.file_size(i))
            if size == 0:
                digests[rel] = hashlib.sha256(b"").digest()
                continue
            if offset % piece_len:  # canonical_files promises this; never hash a wrong layout
                raise AssertionError(f"{rel} does not start on a piece boundary")
            digests[rel] = _hash_file(
                ct, root / rel, offset // piece_len, size, piece_len, pool, advance
            )
    return digests


def _hash_file(
    ct: Any,
    path: Path,
    first_piece: int,
    size: int,
    piece_len: int,
    pool: ThreadPoolExecutor,
    advance: Callable[[int], None],
) -> bytes:
    sha256 = hashlib.sha256()
    pending: deque[Future[None]] = deque()
    read_size = max(piece_len, _READ_SIZE // piece_len * piece_len)
    index, done = first_piece, 0
    with open(path, "rb") as fh:
        while done < size:
            chunk = fh.read(min(read_size, size - done))
            if not chunk:
                raise StoreError(f"{path} shrank while it was being hashed")
            done += len(chunk)
            pending.append(pool.submit(sha256.update, chunk))
            view = memoryview(chunk)
            for start in range(0, len(chunk), piece_len):
                part = view[start : start + piece_len]
                sha1 = hashlib.sha1(part)
                # The rest of a file's last piece is its BEP-47 pad file: zeros.
                pad = int(ct.piece_size(index)) - len(part)
                if pad > 0:
                    sha1.update(bytes(pad))
                ct.set_hash(index, sha1.digest())
                index += 1
            while len(pending) > _IN_FLIGHT:
                pending.popleft().result()
            advance(len(chunk))
        if fh.read(1):
            raise StoreError(f"{path} grew while it was being hashed")
    for fut in pending:
        fut.result()
    return sha256.digest()


def create_blob_torrent(name: str, data: bytes) -> tuple[bytes, bytes]:
    """A deterministic single-file v1 torrent for a small blob (e.g. a signed manifest).

    Returns (torrent bytes, 20-byte infohash). The pieces are 16 KiB.
    """
    _check_relpath(name)
    if "/" in name:
        raise UsageError(f"blob name {name!r} must be a single path component")
    if not data:
        raise UsageError("a blob torrent needs at least one byte")
    ct = lt.create_torrent(
        [lt.create_file_entry(name, len(data))], BLOB_PIECE, lt.create_torrent.v1_only
    )
    for index in range(ct.num_pieces()):
        ct.set_hash(
            index, hashlib.sha1(data[index * BLOB_PIECE : (index + 1) * BLOB_PIECE]).digest()
        )
    torrent = _generate(ct)
    return torrent, infohash_of(torrent)


def file_priorities_for(torrent_bytes: bytes, wanted: Iterable[str]) -> list[int]:
    """libtorrent's per-file priority list selecting `wanted` (paths below the torrent's name).

    Pad files and every other file get 0, so only the pieces of the wanted files download.
    """
    files = _torrent_files(torrent_bytes)
    want = set(wanted)
    priorities = [1 if rel in want else 0 for rel, _ in files]
    missing = want - {rel for rel, _ in files}
    if missing:
        raise UsageError(f"not in the torrent: {', '.join(sorted(missing))}")
    return priorities


def torrent_files(torrent_bytes: bytes) -> dict[str, int]:
    """The real (non-pad) files of a torrent: path below the torrent's name → size."""
    return {rel: size for rel, size in _torrent_files(torrent_bytes) if rel}


def _torrent_files(torrent_bytes: bytes) -> list[tuple[str, int]]:
    """(path below the name, size) for every file in torrent order; pad files give ''."""
    info = load_torrent_info(torrent_bytes)
    files = info.layout()
    prefix = str(info.name()) + "/"
    out: list[tuple[str, int]] = []
    for i in range(files.num_files()):
        if files.file_flags(i) & lt.file_storage.flag_pad_file:
            out.append(("", int(files.file_size(i))))
            continue
        path = str(files.file_path(i)).replace(os.sep, "/")
        out.append(
            (path[len(prefix) :] if path.startswith(prefix) else path, int(files.file_size(i)))
        )
    return out


class LibtorrentTorrents:
    """`hubless.net.contract.Torrents` made with libtorrent's torrent creator."""

    def content_torrent(
        self,
        folder: Path,
        relpaths: Sequence[str],
        *,
        name: str,
        on_progress: Callable[[int], None] | None = None,
    ) -> ContentTorrent:
        return create_content_torrent(folder, relpaths, name=name, on_progress=on_progress)

    def blob_torrent(self, name: str, data: bytes) -> tuple[bytes, bytes]:
        return create_blob_torrent(name, data)
