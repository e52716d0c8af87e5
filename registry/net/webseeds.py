"""Web seeds in the session: a local gateway for `path` seeds, and a probe that names bad ones.

libtorrent fetches web seeds itself (BEP-19). For a multi-file torrent it asks for base +
torrent name + "/" + path: the `bep19` kind of spec §5.8. A `path` seed (base + path, such as
a Hugging Face `resolve/REV/` URL) cannot be given to libtorrent as it is, so the session
gives libtorrent `http://HOST:PORT/<token>/` and this gateway answers `/<token>/<name>/<path>`
by fetching the seed's own URL for that file (§5.8), range requests streamed through and
redirects followed. Tokens are random, so the gateway serves only the seeds it was given.

When pieces failed their hash check and a download stalls, `probe_piece` fetches one failed
piece's bytes from a web seed and compares their SHA-1 with the torrent's: the error can then
name the seed and the file that served wrong bytes (§8.4).
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import secrets
import threading
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from ..core.webseeds import WebSeed

log = logging.getLogger(__name__)

_CHUNK = 256 * 1024
_TIMEOUT = 30.0  # seconds an upstream request may take to answer
USER_AGENT = "hubless/0.1"


class Gateway:
    """Serves `path` web seeds to libtorrent in BEP-19 form; one per session, started lazily."""

    def __init__(self, host: str = "127.0.0.1") -> None:
        self._routes: dict[str, tuple[WebSeed, str]] = {}
        self._lock = threading.Lock()
        gateway = self

        class Handler(_GatewayHandler):
            owner = gateway

        self._httpd = ThreadingHTTPServer((host, 0), Handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, name="hubless-webseed-gateway", daemon=True
        )
        self._thread.start()

    def route(self, seed: WebSeed, name: str) -> str:
        """The BEP-19 base URL libtorrent should use for `seed` and torrent `name`."""
        token = secrets.token_hex(16)
        with self._lock:
            self._routes[token] = (seed, name)
        host, port = str(self._httpd.server_address[0]), int(self._httpd.server_address[1])
        host = f"[{host}]" if ":" in host else host
        return f"http://{host}:{port}/{token}/"

    def lookup(self, token: str) -> tuple[WebSeed, str] | None:
        with self._lock:
            return self._routes.get(token)

    def close(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(10)


class _GatewayHandler(BaseHTTPRequestHandler):
    owner: Gateway
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("web seed gateway: " + format, *args)

    def do_HEAD(self) -> None:
        self._forward("HEAD")

    def do_GET(self) -> None:
        self._forward("GET")

    def _forward(self, method: str) -> None:
        parts = urllib.parse.urlsplit(self.path).path.split("/")
        route = self.owner.lookup(parts[1]) if len(parts) > 3 else None
        if route is None or urllib.parse.unquote(parts[2]) != route[1]:
            self._status(HTTPStatus.NOT_FOUND)
            return
        seed, name = route
        try:
            url = seed.file_url(name, "/".join(urllib.parse.unquote(p) for p in parts[3:]))
        except UnicodeError:
            self._status(HTTPStatus.NOT_FOUND)
            return
        headers = {"User-Agent": USER_AGENT}
        if self.headers.get("Range"):
            headers["Range"] = self.headers["Range"]
        request = urllib.request.Request(url, headers=headers, method=method)
        try:
            upstream = urllib.request.urlopen(request, timeout=_TIMEOUT)
        except urllib.error.HTTPError as exc:
            self._status(exc.code)
            return
        except (OSError, ValueError) as exc:
            log.info("web seed %s unreachable: %s", seed.base, exc)
            self._status(HTTPStatus.BAD_GATEWAY)
            return
        with upstream:
            self.send_response(upstream.status)
            for header in ("Content-Length", "Content-Range", "Content-Type", "Accept-Ranges"):
                if upstream.headers.get(header):
                    self.send_header(header, upstream.headers[header])
            self.end_headers()
            if method == "GET":
                with contextlib.suppress(OSError):
                    while chunk := upstream.read(_CHUNK):
                        self.wfile.write(chunk)

    def _status(self, status: int) -> None:
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()


@dataclass(frozen=True)
class Slice:
    """Part of a piece: `size` bytes at `offset` of file `path` (below the torrent's name),
    or zeros when `path` is None (a pad file)."""

    path: str | None
    offset: int
    size: int


def probe_piece(
    seed: WebSeed,
    name: str,
    slices: Sequence[Slice],
    expected_sha1: bytes,
    fetch: Callable[[str, int, int], bytes] | None = None,
) -> bool | None:
    """Whether `seed` serves the piece made of `slices` with SHA-1 `expected_sha1`.

    True: it matches; False: the seed served other bytes; None: it could not be asked (an
    HTTP error or no answer), which says nothing about its bytes.
    """
    get = fetch or _fetch_range
    sha1 = hashlib.sha1()
    for part in slices:
        if part.path is None:
            sha1.update(bytes(part.size))
            continue
        try:
            data = get(seed.file_url(name, part.path), part.offset, part.size)
        except (OSError, ValueError) as exc:
            log.info("probing %s failed: %s", seed.base, exc)
            return None
        if len(data) != part.size:
            return False
        sha1.update(data)
    return sha1.digest() == expected_sha1


def _fetch_range(url: str, offset: int, size: int) -> bytes:
    """`size` bytes at `offset` of the resource at `url` (a Range request; redirects followed)."""
    request = urllib.request.Request(
        url, headers={"Range": f"bytes={offset}-{offset + size - 1}", "User-Agent": USER_AGENT}
    )
    with urllib.request.urlopen(request, timeout=_TIMEOUT) as answer:
        if answer.status == HTTPStatus.OK and offset:  # no range support: cannot tell
            raise ValueError(f"{url} does not answer range requests")
        data: bytes = answer.read(size + 1)
        return data[:size] if answer.status == HTTPStatus.OK else data


def piece_slices(ti: Any, piece: int) -> list[Slice]:
    """What piece `piece` of torrent `ti` (a libtorrent torrent_info) is made of, in order."""
    files = ti.layout()
    prefix = str(ti.name()) + "/"
    out: list[Slice] = []
    for part in ti.map_block(piece, 0, ti.piece_size(piece)):
        index = part.file_index
        if files.file_flags(index) & files.flag_pad_file:
            out.append(Slice(None, int(part.offset), int(part.size)))
            continue
        path = str(files.file_path(index)).replace("\\", "/")
        out.append(Slice(path.removeprefix(prefix), int(part.offset), int(part.size)))
    return out


def bad_data_report(ti: Any, seeds: Sequence[WebSeed], pieces: Sequence[int]) -> str:
    """Which web seed served which files wrongly, for the pieces that failed (at most 3).

    Each failed piece is fetched again from each seed (`probe_piece`); the answer names the
    seeds whose bytes do not hash to the torrent's piece, with the files in that piece.
    """
    name = str(ti.name())
    found: list[str] = []
    files_seen: list[str] = []
    for piece in sorted(pieces)[:3]:
        slices = piece_slices(ti, piece)
        files = [s.path for s in slices if s.path is not None]
        files_seen += [f for f in files if f not in files_seen]
        expected = bytes(ti.hash_for_piece(piece))
        for seed in seeds:
            if probe_piece(seed, name, slices, expected) is False:
                found.append(f"{seed.base} served wrong bytes for {', '.join(files)}")
    if found:
        return "web seed " + "; web seed ".join(dict.fromkeys(found))
    return f"{', '.join(files_seen)} failed the piece hash check from every source that sent it"
