"""Generated test models: random weights in a real safetensors file plus config.json.

Nothing is ever downloaded from a hub: demos, tests and benchmarks make their models here.
The safetensors layout (8-byte little-endian header length, JSON header, raw tensor data)
is written directly so that generating needs no extra package.
"""

from __future__ import annotations

import json
import random
import struct
from pathlib import Path

_DTYPE_SIZE = {"F32": 4, "F16": 2, "BF16": 2, "U8": 1}


def write_safetensors(path: Path, tensors: dict[str, tuple[str, tuple[int, ...], bytes]]) -> None:
    """Write `tensors` (name → dtype, shape, raw bytes) as a safetensors file."""
    header: dict[str, object] = {"__metadata__": {"format": "pt", "generator": "hubless"}}
    offset = 0
    for name, (dtype, shape, data) in tensors.items():
        count = 1
        for dim in shape:
            count *= dim
        if count * _DTYPE_SIZE[dtype] != len(data):
            raise ValueError(f"tensor {name}: {len(data)} bytes do not fit {dtype}{list(shape)}")
        header[name] = {
            "dtype": dtype,
            "shape": list(shape),
            "data_offsets": [offset, offset + len(data)],
        }
        offset += len(data)
    blob = json.dumps(header, separators=(",", ":")).encode()
    blob += b" " * (-len(blob) % 8)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as out:
        out.write(struct.pack("<Q", len(blob)))
        out.write(blob)
        for _, _, data in tensors.values():
            out.write(data)


def make_model(
    folder: Path, *, seed: int = 0, size: int = 1 << 20, shards: int = 1, extra_files: int = 0
) -> list[Path]:
    """A small model folder: config.json, `shards` safetensors files totalling ~`size` bytes."""
    rng = random.Random(seed)
    folder.mkdir(parents=True, exist_ok=True)
    hidden = 64
    config = {
        "architectures": ["TinyTestModel"],
        "model_type": "tiny-test",
        "hidden_size": hidden,
        "num_hidden_layers": shards,
        "torch_dtype": "float32",
        "seed": seed,
    }
    written = [folder / "config.json"]
    written[0].write_text(json.dumps(config, indent=2) + "\n")
    per_shard = max(size // shards, hidden * 4)
    rows = max(per_shard // (hidden * 4), 1)
    for i in range(shards):
        name = (
            "model.safetensors" if shards == 1 else f"model-{i + 1:05d}-of-{shards:05d}.safetensors"
        )
        data = _random_bytes(rng, rows * hidden * 4)
        write_safetensors(folder / name, {f"layers.{i}.weight": ("F32", (rows, hidden), data)})
        written.append(folder / name)
    for i in range(extra_files):
        path = folder / f"extra/notes-{i}.txt"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"extra file {i} of seed {seed}\n")
        written.append(path)
    return written


def _random_bytes(rng: random.Random, n: int) -> bytes:
    """`n` reproducible random bytes (randbytes overflows past 256 MiB in one call)."""
    chunk = 1 << 24
    return b"".join(rng.randbytes(min(chunk, n - i)) for i in range(0, n, chunk))
