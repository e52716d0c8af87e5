"""Check spec/vectors/*.json with plain pynacl and hashlib: no hubless, no msgpack, no torrent
library. Torrents are rebuilt by hand from spec §5.6, web-seed URLs from §5.8."""
import hashlib
import json
import sys
import urllib.parse
from pathlib import Path

import nacl.exceptions
import nacl.signing

HERE = Path(__file__).resolve().parent
DOMAIN = b"hubless manifest v1\x00"  # spec §5.2
B32 = "abcdefghijklmnopqrstuvwxyz234567"
failures: list[str] = []


def load(name: str) -> list[dict]:
    return json.loads((HERE / name).read_text())


def check(ok: bool, what: str) -> None:
    if not ok:
        failures.append(what)


def verifies(public: bytes, message: bytes, signature: bytes) -> bool:
    try:
        return nacl.signing.VerifyKey(public).verify(message, signature) == message
    except nacl.exceptions.BadSignatureError:
        return False


def bep44_message(salt: bytes, seq: int, value: bytes) -> bytes:  # spec §4.2
    return (b"4:salt%d:%s" % (len(salt), salt) if salt else b"") + b"3:seqi%de1:v" % seq + value


def bstr(data: bytes) -> bytes:
    return b"%d:%s" % (len(data), data)


def manifest_torrent_info(signed: bytes) -> bytes:  # spec §5.6, keys in bencode order
    pieces = b"".join(hashlib.sha1(signed[i : i + 16384]).digest()
                      for i in range(0, len(signed), 16384))
    name = hashlib.sha256(signed).hexdigest().encode() + b".hubless-manifest"
    return b"d6:lengthi%de4:name%s12:piece lengthi16384e6:pieces%se" % (
        len(signed), bstr(name), bstr(pieces))


def content_torrent_info(name: str, files: list[tuple[str, bytes]], piece: int) -> bytes:
    entries, stream, big = b"", b"", False  # spec §5.6: small files packed, large ones aligned
    for i, (path, data) in enumerate(sorted(files)):
        pad = -len(stream) % piece if i and (big or len(data) >= piece) else 0
        if pad:
            entries += b"d4:attr1:p6:lengthi%de4:pathl4:.pad%see" % (pad, bstr(b"%d" % pad))
        entries += b"d6:lengthi%de4:pathl%see" % (
            len(data), b"".join(bstr(part.encode()) for part in path.split("/")))
        stream += bytes(pad) + data
        big = len(data) >= piece
    pieces = b"".join(hashlib.sha1(stream[i : i + piece]).digest()
                      for i in range(0, len(stream), piece))
    return b"d5:filesl%se4:name%s12:piece lengthi%de6:pieces%se" % (
        entries, bstr(name.encode()), piece, bstr(pieces))


def file_bytes(entry: list) -> bytes:  # [path, hex] or [path, pattern hex, size] (spec §12)
    data = bytes.fromhex(entry[1])
    return (data * (entry[2] // len(data) + 1))[: entry[2]] if len(entry) == 3 else data


def split_envelope(signed: bytes) -> tuple[bytes, bytes]:
    """Body and signature of {"manifest": bin, "signature": bin 64} (spec §5.2), by hand."""
    head = b"\x82\xa8manifest"
    width = {0xC4: 1, 0xC5: 2, 0xC6: 4}.get(signed[len(head)], 0)
    pos = len(head) + 1 + width
    body = signed[pos : pos + int.from_bytes(signed[pos - width : pos], "big")]
    tail = signed[pos + len(body) :]
    check(signed.startswith(head) and tail[:12] == b"\xa9signature\xc4\x40" and len(tail) == 76,
          "manifest envelope layout")
    return body, tail[12:]


for k in load("keys.json"):
    seed = bytes.fromhex(k["seed"])
    public = bytes(nacl.signing.SigningKey(seed).verify_key)
    n = int.from_bytes(public, "big") << 4  # 256 bits padded to 52 base32 digits of 5 bits
    text = "".join(B32[(n >> 5 * i) & 31] for i in range(51, -1, -1))
    h = bytearray(hashlib.sha512(seed).digest())
    h[0] &= 248
    h[31] = (h[31] & 63) | 64
    check(public.hex() == k["public_key"] and text == k["public_key_text"], f"key {k['seed']}")
    check(h.hex() == k["libtorrent_expanded_secret"], f"expanded secret of {k['seed']}")

for case in load("records.json") + load("index.json"):
    # records.json gives the salt as the model name, index.json as hex
    salt = bytes.fromhex(case["salt"]) if "index_seq" in case else case["salt"].encode()
    payload, value = bytes.fromhex(case["payload"]), bytes.fromhex(case["value_bencoded"])
    check(value == b"%d:%s" % (len(payload), payload) and len(value) <= 1000, case["description"])
    message = bep44_message(salt, case["dht_seq"], value)
    check(message.hex() == case.get("signing_message", message.hex()), case["description"])
    check(verifies(bytes.fromhex(case["public_key"]), message, bytes.fromhex(case["signature"])),
          f"signature of {case['description']}")

for case in load("manifests.json"):
    signed = bytes.fromhex(case["signed"])
    body, signature = split_envelope(signed)
    check(body.hex() == case["body"] and signature.hex() == case["signature"], case["description"])
    check(bytes.fromhex(case["signing_message_prefix"]) == DOMAIN, "manifest domain prefix")
    check(verifies(bytes.fromhex(case["public_key"]), DOMAIN + body, signature),
          f"signature of manifest {case['description']}")
    check(hashlib.sha256(signed).hexdigest() == case["manifest_hash"], case["description"])
    info = manifest_torrent_info(signed)
    check(info.hex() == case["manifest_torrent_info"]
          and hashlib.sha1(info).hexdigest() == case["manifest_infohash"],
          f"manifest torrent of {case['description']}")

torrents, (first, second) = load("torrents.json"), load("manifests.json")
for case in torrents:
    files = [(entry[0], file_bytes(entry)) for entry in case["files"]]
    info = content_torrent_info(case["name"], files, case["piece_length"])
    check(info.hex() == case["info"] and hashlib.sha1(info).hexdigest() == case["infohash"],
          case["description"])
# The vectors are one chain: record -> manifest torrent and hash -> content torrent -> files.
record = load("records.json")[0]["record"]
check((record["m"], record["h"]) == (first["manifest_infohash"], first["manifest_hash"]),
      "the typical record names the first manifest")
check(second["manifest"]["history"][0][2:4] == [first["manifest_infohash"], first["manifest_hash"]]
      and second["manifest"]["prev"] == first["manifest_hash"], "history row and prev")
for manifest, content in ((first, torrents[0]), (second, torrents[1])):
    check(manifest["manifest"]["content"] == content["infohash"], "content infohash")
    check(manifest["manifest"]["files"] == [
        [entry[0], len(file_bytes(entry)), hashlib.sha256(file_bytes(entry)).hexdigest()]
        for entry in content["files"]], f"files of {manifest['description']}")

for case in load("web_seeds.json"):  # spec §5.8: UTF-8, every byte but A-Z a-z 0-9 -._~ as %XX
    path = "/".join(urllib.parse.quote(s, safe="") for s in case["path"].split("/"))
    name = case["name"] + "/" if case["kind"] == "bep19" else ""
    check(case["base"] + name + path == case["url"], case["description"])
for manifest in (first, second):  # spec §11: format 2 exactly when it names web seeds
    seeds = manifest["manifest"].get("web_seeds", [])
    check(manifest["manifest"]["format"] == (2 if seeds else 1) and seeds == sorted(seeds),
          f"format of {manifest['description']}")

bad = [c for c in load("invalid.json") if c["error"] == "BadSignatureError"]
for case in bad:
    public, item = bytes.fromhex(case["expect_publisher"]), case.get("item", {})
    if case["kind"] == "record":
        message = bep44_message(bytes.fromhex(item["salt"]), item["dht_seq"],
                                bytes.fromhex(item["value_bencoded"]))
        check(not verifies(public, message, bytes.fromhex(item["signature"])), case["description"])
    else:
        body, signature = split_envelope(bytes.fromhex(case["signed"]))
        check(not verifies(public, DOMAIN + body, signature), case["description"])

counts = ", ".join(f"{p.name} ({len(load(p.name))})" for p in sorted(HERE.glob("*.json")))
print(f"checked {counts}; {len(bad)} bad signatures refused")
for failure in failures:
    print("FAIL:", failure)
print("FAILED" if failures else "OK")
sys.exit(1 if failures else 0)
