"""Web seeds: HTTP(S) places that serve a release's files, signed in the manifest (§5.8).

A web seed is a kind and a base URL. The kind says how a file's URL is formed from the base:

- `bep19`: base + model name + "/" + file path. BEP-19's rule for a multi-file torrent (the
  torrent's name is the model name), so other BitTorrent clients use it too: a static
  server or bucket holding the folder `NAME/`.
- `path`: base + file path. A Hugging Face `https://huggingface.co/ORG/REPO/resolve/REV/`
  base, or a bucket prefix holding the files themselves.

Path segments are percent-encoded as UTF-8 (every byte outside `A-Z a-z 0-9 - . _ ~`).
Nothing a web seed serves is trusted: its bytes are pieces checked against the content
torrent, and files checked against the manifest, like bytes from any peer.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .errors import MalformedError, UsageError

BEP19 = "bep19"
PATH = "path"
KINDS = (BEP19, PATH)
MAX_WEB_SEEDS = 16
MAX_URL = 2048

# scheme://host[:port]/path/ with a lowercase scheme, no userinfo, query or fragment.
_URL = re.compile(
    r"(?P<scheme>https?)://(?P<host>\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+)(?::(?P<port>[0-9]{1,5}))?"
    r"(?P<path>/(?:[A-Za-z0-9\-._~!$&'()*+,;=:@/]|%[0-9A-Fa-f]{2})*)"
)
_HUGGING_FACE = re.compile(r"https://(?:huggingface\.co|hf\.co)/.+/resolve/[^/]+/(?:.*/)?")


@dataclass(frozen=True, order=True)
class WebSeed:
    """A checked web seed: `kind` is `bep19` or `path`, `base` an http(s) URL ending in `/`."""

    kind: str
    base: str

    def __post_init__(self) -> None:
        check_web_seed(self.kind, self.base)

    def file_url(self, name: str, path: str) -> str:
        """The URL of file `path` (a manifest path) of model `name` at this seed."""
        return file_url(self.kind, self.base, name, path)


_UNRESERVED = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")


def _quote(segment: str) -> str:
    """RFC 3986 percent-encoding of one path segment's UTF-8 bytes (upper-case hex)."""
    return "".join(chr(b) if b in _UNRESERVED else f"%{b:02X}" for b in segment.encode())


def file_url(kind: str, base: str, name: str, path: str) -> str:
    """base + (name + "/" for `bep19`) + the path, each segment percent-encoded (§5.8)."""
    quoted = "/".join(_quote(segment) for segment in path.split("/"))
    return base + (_quote(name) + "/" if kind == BEP19 else "") + quoted


def check_web_seed(kind: object, base: object) -> None:
    """Raise `MalformedError` unless (kind, base) is a web seed §5.8 allows."""
    if kind not in KINDS:
        raise MalformedError(f"web seed kind must be one of {', '.join(KINDS)}, not {kind!r:.40}")
    if not isinstance(base, str) or not 0 < len(base) <= MAX_URL:
        raise MalformedError(f"web seed URL must be text of 1 to {MAX_URL} characters")
    match = _URL.fullmatch(base)
    if match is None:
        raise MalformedError(
            f"web seed URL {base[:80]!r} is not http(s)://HOST[:PORT]/PATH/ in plain ASCII "
            "(no user name, query, fragment or space)"
        )
    port = match.group("port")
    if port is not None and not 0 < int(port) < 65536:
        raise MalformedError(f"web seed URL {base[:80]!r} has port {port}")
    path = match.group("path")
    if not path.endswith("/"):
        raise MalformedError(f"web seed URL {base[:80]!r} must end with '/'")
    segments = path.split("/")[1:-1]
    if any(s in ("", ".", "..") for s in segments):
        raise MalformedError(f"web seed URL {base[:80]!r} has an empty, '.' or '..' segment")


def decode_web_seeds(value: object) -> tuple[WebSeed, ...]:
    """The manifest's `web_seeds` field: 1..16 `[kind, base]` pairs, sorted, unique."""
    if not isinstance(value, list) or not 0 < len(value) <= MAX_WEB_SEEDS:
        raise MalformedError(f"manifest web_seeds must be a list of 1 to {MAX_WEB_SEEDS} entries")
    seeds = []
    for item in value:
        if not isinstance(item, list) or len(item) != 2:
            raise MalformedError("manifest web seed must be [kind, base URL]")
        seeds.append(WebSeed(item[0], item[1]))
    check_web_seeds(tuple(seeds))
    return tuple(seeds)


def check_web_seeds(seeds: tuple[WebSeed, ...]) -> None:
    """At most 16, sorted by (kind, base) in code point order, no duplicates (§5.8)."""
    if len(seeds) > MAX_WEB_SEEDS:
        raise MalformedError(f"a manifest names at most {MAX_WEB_SEEDS} web seeds")
    if list(seeds) != sorted(set(seeds)):
        raise MalformedError("manifest web seeds must be sorted by kind and URL, without repeats")


def parse_web_seed(text: str) -> WebSeed:
    """A web seed as a user writes it: `[bep19:|path:]URL` (`UsageError` if it is not one).

    Without a prefix, a Hugging Face `.../resolve/REVISION/` URL is `path`, anything else
    `bep19`. A missing final `/` is added.
    """
    kind, _, rest = text.partition(":")
    if kind in KINDS and rest and not rest.startswith("//"):
        url = rest
    else:
        url = text
        kind = PATH if _HUGGING_FACE.fullmatch(url.rstrip("/") + "/") else BEP19
    if not url.endswith("/"):
        url += "/"
    try:
        return WebSeed(kind, url)
    except MalformedError as exc:
        raise UsageError(
            f"--web-seed {text[:80]!r}: {exc.message}",
            hint="give an http(s) URL of a folder, e.g. https://mirror.example/models/ "
            "(the model folder NAME/ is below it), or path:URL for a folder of the files",
        ) from exc
