"""The Hugging Face-compatible view: huggingface_hub and transformers find a pulled model.

The model is made here from a config (a tiny GPT-2: with torch its own `save_pretrained`,
without it the same config and a safetensors file written by hand); nothing is downloaded.
huggingface_hub reads its environment at import, so it runs in a child interpreter with
HF_HUB_OFFLINE=1 and HF_HUB_CACHE pointing into the test's folder.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from hubless.config import Config
from hubless.lab.modelgen import write_safetensors
from hubless.services.client import Client
from hubless.store import hfcache

from .conftest import NAME, PUBLISHER, REF
from .fakenet import Swarm

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("huggingface_hub") is None,
    reason="huggingface_hub is not installed (pip install -e '.[dev]')",
)
HAS_TRANSFORMERS = importlib.util.find_spec("transformers") is not None
HAS_TORCH = importlib.util.find_spec("torch") is not None

GPT2 = {
    "model_type": "gpt2",
    "architectures": ["GPT2LMHeadModel"],
    "vocab_size": 64,
    "n_positions": 32,
    "n_embd": 16,
    "n_layer": 1,
    "n_head": 2,
}


def tiny_gpt2(folder: Path, seed: int) -> Path:
    """A tiny GPT-2 made from its config; the weights differ with `seed`."""
    folder.mkdir(parents=True)
    if HAS_TORCH:
        import torch
        from transformers import GPT2Config, GPT2LMHeadModel

        torch.manual_seed(seed)
        GPT2LMHeadModel(GPT2Config(**GPT2)).save_pretrained(folder)
        return folder
    import random
    import struct

    rng = random.Random(seed)
    shapes = {"transformer.wte.weight": (64, 16), "transformer.wpe.weight": (32, 16)}
    tensors = {
        name: (
            "F32",
            shape,
            struct.pack(
                f"<{shape[0] * shape[1]}f",
                *(rng.gauss(0, 0.02) for _ in range(shape[0] * shape[1])),
            ),
        )
        for name, shape in shapes.items()
    }
    write_safetensors(folder / "model.safetensors", tensors)
    (folder / "config.json").write_text(json.dumps(GPT2, indent=2))
    return folder


def hf_client(tmp_path: Path, label: str, swarm: Swarm, **env: str) -> Client:
    config = Config.resolve({"HF_HUB_CACHE": str(tmp_path / "hf"), **env}, home=tmp_path / label)
    return Client(config, network=swarm.node())


CHECK = """
import json, sys
from huggingface_hub import hf_hub_download, snapshot_download
from safetensors.numpy import load_file
repo, version, published = sys.argv[1], sys.argv[2], sys.argv[3]
out = {}
for revision in (None, version):
    folder = snapshot_download(repo, revision=revision, local_files_only=True)
    weights = hf_hub_download(repo, "model.safetensors", revision=revision)
    mine, theirs = load_file(weights), load_file(published)
    out[str(revision)] = {
        "folder": folder,
        "same": sorted(mine) == sorted(theirs) and all((mine[k] == theirs[k]).all() for k in mine),
    }
    try:
        from transformers import AutoConfig
    except ImportError:
        continue
    config = AutoConfig.from_pretrained(repo, revision=revision)
    out[str(revision)]["n_embd"] = config.n_embd
    try:
        import torch
        from transformers import AutoModelForCausalLM
    except ImportError:
        continue
    model = AutoModelForCausalLM.from_pretrained(repo, revision=revision)
    state = model.state_dict()
    out[str(revision)]["same_model"] = all(
        torch.equal(state[k], torch.from_numpy(theirs[k])) for k in theirs if k in state
    )
print(json.dumps(out))
"""


# huggingface_hub's own command line, asked to show every inconsistency it finds.
HF_CACHE_LS = """
import sys
from huggingface_hub.cli.hf import main
sys.argv = ["hf", "cache", "ls", "--revisions", "--show-warnings", "--format", "json"]
sys.stderr = sys.stdout
main()
"""


def run_offline(code: str, hf: Path, *args: str) -> str:
    env = {**os.environ, "HF_HUB_CACHE": str(hf), "HF_HUB_OFFLINE": "1", "HF_HOME": str(hf.parent)}
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code), *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_from_pretrained_and_snapshot_download_find_a_pulled_model_offline(
    swarm: Swarm, tmp_path: Path
) -> None:
    publisher = hf_client(tmp_path, "publisher", swarm)
    consumer = hf_client(tmp_path, "consumer", swarm, HUBLESS_HF_CACHE="1")
    v1 = tiny_gpt2(tmp_path / "v1", seed=1)
    v2 = tiny_gpt2(tmp_path / "v2", seed=2)
    publisher.publish(v1, NAME, "v1", key=PUBLISHER)
    first = consumer.pull(REF)
    publisher.publish(v2, NAME, "v2", key=PUBLISHER)
    consumer.pull(REF)
    hf = tmp_path / "hf"
    repo = hfcache.repo_id(PUBLISHER.public.text, NAME)
    assert first.hf_cache == hf / f"models--{PUBLISHER.public.text}--{NAME}"

    # No second copy: the view's blobs are the cache's blobs.
    view_blob = (
        first.hf_cache / "blobs" / next(iter(first.resolution.target.manifest.files)).sha256.hex()
    )
    cache_blob = consumer.cache.blob(next(iter(first.resolution.target.manifest.files)).sha256)
    assert view_blob.stat().st_ino == cache_blob.stat().st_ino

    out = json.loads(run_offline(CHECK, hf, repo, "v1", str(v1 / "model.safetensors")))
    assert out["v1"]["same"] is True  # revision="v1": the first version's tensors
    assert out["None"]["same"] is False  # main: the newest pulled, v2
    if HAS_TRANSFORMERS:
        assert out["v1"]["n_embd"] == GPT2["n_embd"]
    if HAS_TORCH:
        assert out["v1"]["same_model"] is True
    out = json.loads(run_offline(CHECK, hf, repo, "v2", str(v2 / "model.safetensors")))
    assert out["v2"]["same"] is True and out["None"]["same"] is True

    listing = run_offline(HF_CACHE_LS, hf)
    assert "warning" not in listing.lower() and "corrupt" not in listing.lower(), listing
    rows = json.loads(listing.splitlines()[-1])
    refs = {ref for row in rows if repo in json.dumps(row) for ref in row.get("refs", [])}
    assert refs == {"main", "v1", "v2"}, rows

    # rm takes the version out of the view as well; main stays on v2.
    consumer.remove(REF.at("v2"))
    refs = sorted(p.name for p in (first.hf_cache / "refs").iterdir())
    assert refs == ["main", "v1"]
    out = json.loads(run_offline(CHECK, hf, repo, "v1", str(v1 / "model.safetensors")))
    assert out["None"]["same"] is True  # main moved back to v1, the newest left
    consumer.remove(REF)
    assert not first.hf_cache.exists()


def test_without_the_switch_nothing_is_written_there(swarm: Swarm, tmp_path: Path) -> None:
    publisher = hf_client(tmp_path, "publisher", swarm)
    consumer = hf_client(tmp_path, "consumer", swarm)
    publisher.publish(tiny_gpt2(tmp_path / "v1", seed=1), NAME, "v1", key=PUBLISHER)
    assert consumer.pull(REF).hf_cache is None
    assert not (tmp_path / "hf").exists()
    assert consumer.pull(REF, hf_cache=True).hf_cache is not None


def test_a_name_huggingface_hub_refuses_is_left_out(swarm: Swarm, tmp_path: Path) -> None:
    publisher = hf_client(tmp_path, "publisher", swarm)
    consumer = hf_client(tmp_path, "consumer", swarm, HUBLESS_HF_CACHE="1")
    publisher.publish(tiny_gpt2(tmp_path / "v1", seed=1), "my--model", "v1", key=PUBLISHER)
    assert consumer.pull(REF.__class__(PUBLISHER.public, "my--model")).hf_cache is None
