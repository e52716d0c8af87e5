"""Sizes and sign/verify throughput of the protocol core (issue: protocol core).

Prints the record's typical and largest encoded size, manifest sizes for 10 and 10,000
files, and operations per second, with verify time as a ratio to plain Ed25519 verify
measured in the same run (the floor every record check pays).
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable

import nacl.signing
from hubless.core import bencode, bep44
from hubless.core.keys import SigningKey
from hubless.core.manifest import FileEntry, Manifest, sign_manifest, verify_manifest
from hubless.core.record import Record, encode_record, verify_record

KEY = SigningKey(hashlib.sha256(b"bench").digest())
NOW = 1_800_000_000


def rate(fn: Callable[[], object], seconds: float = 0.5) -> float:
    """Calls per second over about `seconds`."""
    count, start = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - start) < seconds:
        for _ in range(20):
            fn()
        count += 20
    return count / elapsed


def manifest_with(n: int) -> Manifest:
    files = tuple(
        FileEntry(
            f"shards/model-{i:05d}-of-{n:05d}.safetensors",
            1 << 30,
            hashlib.sha256(b"%d" % i).digest(),
        )
        for i in range(n)
    )
    return Manifest(KEY.public, "bench-model", "v1", 1, NOW, b"\x01" * 20, files)


def main() -> None:
    typical = Record(42, "v1.2.0", b"\x01" * 20, b"\x02" * 32, NOW)
    largest = Record(2**63 - 1, "9" * 64, b"\xff" * 32, b"\xff" * 32, 2**63 - 1)
    typical_payload = encode_record(typical)
    print(
        f"record bencoded value: typical {len(bencode.encode(typical_payload))} B, "
        f"largest {len(bencode.encode(encode_record(largest)))} B (limit 1000)"
    )

    for n in (10, 10_000):
        signed = sign_manifest(manifest_with(n), KEY)
        print(
            f"manifest with {n:>6} files: {len(signed):>9,} B signed ({len(signed) / n:.0f} B/file)"
        )

    item = bep44.sign_item(KEY, b"bench-model", 1, typical_payload)
    message = bep44.signing_message(item.salt, item.seq, item.value)
    verify_key = nacl.signing.VerifyKey(KEY.public.raw)
    floor = rate(lambda: verify_key.verify(message, item.signature))
    record_sign = rate(lambda: bep44.sign_item(KEY, b"bench-model", 1, encode_record(typical)))
    record_verify = rate(lambda: verify_record(item, KEY.public, "bench-model", now=NOW))
    print(f"plain Ed25519 verify:  {floor:>9,.0f}/s (the floor)")
    print(f"record sign:           {record_sign:>9,.0f}/s")
    print(
        f"record verify:         {record_verify:>9,.0f}/s"
        f"  ratio to floor {record_verify / floor:.2f}"
    )
    for n in (10, 10_000):
        manifest = manifest_with(n)
        signed = sign_manifest(manifest, KEY)
        seconds = 0.5 if n < 1000 else 2.0
        sign_rate = rate(lambda m=manifest: sign_manifest(m, KEY), seconds)
        verify_rate = rate(
            lambda s=signed: verify_manifest(s, KEY.public, "bench-model", now=NOW), seconds
        )
        print(
            f"manifest ({n:>6} files) sign {sign_rate:>8,.1f}/s verify {verify_rate:>8,.1f}/s "
            f"({verify_rate * n:,.0f} file entries/s)"
        )


if __name__ == "__main__":
    main()
