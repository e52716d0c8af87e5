"""A small static HTTP server with byte ranges and one shared upload cap, for labs and tests.

It stands in for a web seed (a static mirror, an S3 bucket, a Hugging Face `resolve/` URL) and
for the HTTP origin of the fan-out benchmark: GET and HEAD of files under one folder, single
`Range: bytes=A-B` requests answered with 206 (libtorrent and aria2 web seeds ask for
ranges), and an optional cap on the bytes per second of *all* connections together (a token
bucket shared by every thread, where nginx's `limit_rate` caps each connection). It counts
the bytes it sent. Nothing outside the folder is served: the path is decoded, split into plain
segments and refused (404) if any is empty, `.`, `..` or holds a backslash or NUL.
"""

from __future__ import annotations

import contextlib
import os
import re
import threading
import time
import urllib.parse
from collections.abc import Iterator
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

_CHUNK = 256 * 1024
_RANGE = re.compile(r"bytes=(\d*)-(\d*)")


class TokenBucket:
    """`rate` bytes per second shared by every caller; bursts of at most `burst` bytes."""

    def __init__(self, rate: int, burst: int | None = None) -> None:
        self.rate = rate
        self.burst = burst or max(rate // 10, _CHUNK)
        self._tokens = float(self.burst)
        self._last = time.monotonic()
        self._lock = threading.Lock()

    def take(self, count: int) -> None:
        """Block until `count` bytes may be sent."""
        while True:
            with self._lock:
                now = time.monotonic()
                self._tokens = min(self.burst, self._tokens + (now - self._last) * self.rate)
                self._last = now
                if self._tokens >= count:
                    self._tokens -= count
                    return
                wait = (count - self._tokens) / self.rate
            time.sleep(min(wait, 0.05))


class StaticServer:
    """Serve `root` on `host` (port 0: any free port) until `close()`; a context manager.

    `rate` caps the upload of all connections together in bytes per second (0: no cap).
    `base_url` is `http://host:port/`; `sent` counts body bytes sent so far.
    """

    def __init__(self, root: Path, host: str = "127.0.0.1", port: int = 0, rate: int = 0) -> None:
        self.root = root.resolve()
        self.bucket = TokenBucket(rate) if rate else None
        self.requests: list[tuple[str, str]] = []  # (path, Range header) of each GET
        self._sent = 0
        self._lock = threading.Lock()
        server = self

        class Handler(_Handler):
            owner = server

        self._httpd = ThreadingHTTPServer((host, port), Handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, name="hubless-webserver", daemon=True
        )
        self._thread.start()

    @property
    def port(self) -> int:
        return int(self._httpd.server_address[1])

    @property
    def host(self) -> str:
        return str(self._httpd.server_address[0])

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}/"

    @property
    def sent(self) -> int:
        with self._lock:
            return self._sent

    def _count(self, n: int) -> None:
        with self._lock:
            self._sent += n

    def file_for(self, url_path: str) -> Path | None:
        """The file a request path names under the root, or None (never outside it)."""
        path = urllib.parse.urlsplit(url_path).path
        parts = [urllib.parse.unquote(p, errors="strict") for p in path.split("/")[1:]]
        if not parts or any(p in ("", ".", "..") or "\\" in p or "\0" in p for p in parts):
            return None
        target = self.root.joinpath(*parts)
        try:
            if not target.resolve().is_relative_to(self.root) or not target.is_file():
                return None
        except (OSError, ValueError):
            return None
        return target

    def close(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(10)

    def __enter__(self) -> StaticServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class _Handler(BaseHTTPRequestHandler):
    owner: StaticServer
    protocol_version = "HTTP/1.1"  # keep-alive: web seeds send many range requests

    def log_message(self, format: str, *args: Any) -> None:
        pass  # quiet: tests and benchmarks print what they measure themselves

    def do_HEAD(self) -> None:
        self._serve(body=False)

    def do_GET(self) -> None:
        self._serve(body=True)

    def _serve(self, *, body: bool) -> None:
        target = self.owner.file_for(self.path)
        if body:
            self.owner.requests.append((self.path, self.headers.get("Range", "")))
        if target is None:
            self._empty(HTTPStatus.NOT_FOUND)
            return
        size = target.stat().st_size
        start, end = 0, size - 1
        status = HTTPStatus.OK
        wanted = self.headers.get("Range")
        if wanted:
            match = _RANGE.fullmatch(wanted.strip())
            if match is None or not (match.group(1) or match.group(2)):
                self._empty(HTTPStatus.REQUESTED_RANGE_NOT_SATISFIABLE)
                return
            if match.group(1):
                start = int(match.group(1))
                end = min(int(match.group(2)), size - 1) if match.group(2) else size - 1
            else:  # a suffix: the last N bytes
                start = max(0, size - int(match.group(2)))
            if start > end or start >= size:
                self._empty(HTTPStatus.REQUESTED_RANGE_NOT_SATISFIABLE, size)
                return
            status = HTTPStatus.PARTIAL_CONTENT
        length = end - start + 1 if size else 0
        self.send_response(status)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(length))
        self.send_header("Accept-Ranges", "bytes")
        if status == HTTPStatus.PARTIAL_CONTENT:
            self.send_header("Content-Range", f"bytes {start}-{end}/{size}")
        self.end_headers()
        if body and length:
            with contextlib.suppress(ConnectionError), open(target, "rb") as fh:
                for chunk in _read(fh.fileno(), start, length):
                    if self.owner.bucket is not None:
                        self.owner.bucket.take(len(chunk))
                    self.wfile.write(chunk)
                    self.owner._count(len(chunk))

    def _empty(self, status: HTTPStatus, size: int | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Length", "0")
        if size is not None:
            self.send_header("Content-Range", f"bytes */{size}")
        self.end_headers()


def _read(fd: int, start: int, length: int) -> Iterator[bytes]:
    done = 0
    while done < length:
        chunk = os.pread(fd, min(_CHUNK, length - done), start + done)
        if not chunk:
            return
        done += len(chunk)
        yield chunk
