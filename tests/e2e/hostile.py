"""A hostile publisher, run as its own process: torrent metadata made to hurt whoever fetches it.

    python -m tests.e2e.hostile BOOTSTRAP WORKDIR KIND

It joins the loopback testnet, signs (under its own key) a manifest and a record for the model
`victim-model` whose torrents are hostile, seeds them, prints `{"ref": ...}` on stdout and
serves until it is terminated. KIND:

- `content-symlink`: the content torrent lists the manifest's files plus a BEP-47 symbolic
  link pointing up and out, and a thousand empty files;
- `content-extra`: the content torrent lists a thousand extra empty files in folders;
- `manifest-multi`: the record names a manifest torrent of a thousand files;
- `bad-pieces`: an honest manifest and content torrent, but the seeder serves other bytes
  (libtorrent's hash checks are off in its session), so every piece fails its check.

Every torrent it serves is refused by a client before download; the tests check that
fetching its metadata writes nothing outside the client's home.
"""

from __future__ import annotations

import hashlib
import json
import signal
import sys
import threading
import time
from pathlib import Path

from hubless.config import parse_endpoints
from hubless.core import bencode
from hubless.core.keys import SigningKey
from hubless.core.manifest import FileEntry, Manifest, manifest_hash, sign_manifest
from hubless.core.record import Record, encode_record
from hubless.lab.modelgen import make_model
from hubless.net.profile import NetProfile
from hubless.net.session import Session, open_session
from hubless.net.torrents import create_blob_torrent, create_content_torrent

NAME = "victim-model"
KEY = SigningKey(hashlib.sha256(b"hubless edge tests: a hostile publisher").digest())
REAL = {"config.json": b'{"layers": 1}\n', "model.bin": bytes(range(256)) * 100}
PIECE = 16384


def hostile_torrent(name: str, *, empties: int, symlink: bool) -> bytes:
    """A multi-file .torrent holding REAL, `empties` empty files and maybe a symlink entry."""
    files: list[dict[bytes, object]] = [
        {b"length": len(data), b"path": [rel.encode()]} for rel, data in REAL.items()
    ]
    files += [
        {b"length": 0, b"path": [b"empty", f"d{i // 100:02d}".encode(), f"e{i:04d}".encode()]}
        for i in range(empties)
    ]
    if symlink:
        files.append(
            {
                b"attr": b"l",
                b"length": 0,
                b"path": [b"link"],
                b"symlink path": [b"..", b"..", b"..", b"planted-target"],
            }
        )
    stream = b"".join(REAL.values())
    pieces = b"".join(
        hashlib.sha1(stream[i : i + PIECE]).digest() for i in range(0, len(stream), PIECE)
    )
    info = bencode.encode(
        {b"files": files, b"name": name.encode(), b"piece length": PIECE, b"pieces": pieces}
    )
    return b"d4:info" + info + b"e"


def infohash(torrent: bytes) -> bytes:
    info = bencode.decode(torrent)[b"info"]  # type: ignore[index]
    return hashlib.sha1(bencode.encode(info)).digest()


def serve(session: Session, workdir: Path, kind: str) -> str:
    now = int(time.time())
    (workdir / "seed").mkdir(parents=True, exist_ok=True)
    if kind == "bad-pieces":
        folder = workdir / "seed" / NAME
        make_model(folder, seed=5, size=2 << 20, shards=1)
        content = create_content_torrent(
            folder, sorted(p.name for p in folder.iterdir()), name=NAME
        )
        for path in folder.iterdir():  # same sizes, other bytes
            path.write_bytes(bytes(path.stat().st_size))
        session._ses.apply_settings({"disable_hash_checks": True})  # serve them anyway
        session.seed(content.torrent_bytes, workdir / "seed", trust_files=True)
        entries = tuple(
            FileEntry(rel, content.sizes[rel], content.file_sha256[rel])
            for rel in sorted(content.sizes)
        )
        manifest = Manifest(KEY.public, NAME, "v1", 1, now, content.infohash_v1, entries)
        record = _serve_manifest(session, workdir, manifest)
    elif kind == "manifest-multi":
        torrent = hostile_torrent("evil", empties=1000, symlink=False)
        session.seed(torrent, workdir / "seed", trust_files=True)
        record = Record(1, "v1", infohash(torrent), hashlib.sha256(b"nothing").digest(), now)
    else:
        torrent = hostile_torrent(NAME, empties=1000, symlink=kind == "content-symlink")
        session.seed(torrent, workdir / "seed", trust_files=True)
        entries = tuple(
            FileEntry(rel, len(data), hashlib.sha256(data).digest())
            for rel, data in sorted(REAL.items())
        )
        manifest = Manifest(KEY.public, NAME, "v1", 1, now, infohash(torrent), entries)
        record = _serve_manifest(session, workdir, manifest)
    nodes = session.dht_put(KEY, NAME.encode(), encode_record(record), 30.0)
    if nodes < 1:
        raise SystemExit("no DHT node stored the record")
    return f"{KEY.public.text}/{NAME}"


def _serve_manifest(session: Session, workdir: Path, manifest: Manifest) -> Record:
    """Sign `manifest`, seed its manifest torrent, and return the record naming it."""
    signed = sign_manifest(manifest, KEY)
    digest = manifest_hash(signed)
    file_name = digest.hex() + ".hubless-manifest"
    (workdir / "manifests").mkdir(exist_ok=True)
    (workdir / "manifests" / file_name).write_bytes(signed)
    blob, blob_ih = create_blob_torrent(file_name, signed)
    session.seed(blob, workdir / "manifests", trust_files=True)
    return Record(manifest.seq, manifest.version, blob_ih, digest, manifest.created)


def main() -> None:
    bootstrap, workdir, kind = sys.argv[1], Path(sys.argv[2]), sys.argv[3]
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    profile = NetProfile.local(parse_endpoints(bootstrap, "bootstrap"))
    with open_session(profile, workdir / "session") as session:
        ref = serve(session, workdir, kind)
        print(json.dumps({"ref": ref}), flush=True)
        stop.wait()


if __name__ == "__main__":
    main()
