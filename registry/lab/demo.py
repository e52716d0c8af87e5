"""`hubless demo`: a whole registry on this machine, with no network beyond loopback.

A local DHT testnet in its own process; a publisher identity (this process) publishes two
versions of a generated model and seeds them; a consumer identity in a separate process
pulls both, then verifies every file. Each step is reported as it happens.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from ..config import Config
from ..core.errors import HublessError
from ..net.testnet import spawn_testnet
from ..services.client import Client
from ..services.events import Listener, ignore
from .modelgen import make_model


class DemoError(HublessError):
    """A demo step failed; the message says which."""


def run_cli(home: Path, bootstrap: list[str], *args: str) -> dict[str, Any]:
    """Run `hubless --json ARGS` as a separate process for the consumer identity."""
    command = [sys.executable, "-m", "hubless.cli", "--home", str(home), "--json"]
    for node in bootstrap:
        command += ["--bootstrap", node]
    done = subprocess.run(
        [*command, *args], capture_output=True, text=True, timeout=600, check=False
    )
    if done.returncode != 0:
        raise DemoError(f"`hubless {' '.join(args)}` failed: {done.stderr.strip()[-400:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def run_demo(
    workdir: Path | None = None,
    *,
    say: Callable[[str], None] = print,
    on_event: Listener = ignore,
    nodes: int = 8,
) -> dict[str, Any]:
    """Run the demo; return what the consumer saw. Raises `DemoError` if any check fails."""
    with tempfile.TemporaryDirectory(prefix="hubless-demo-") as scratch:
        root = workdir or Path(scratch)
        say(f"1. starting a local DHT testnet of {nodes} nodes on 127.0.0.1")
        testnet, bootstrap = spawn_testnet(nodes)
        try:
            return _demo(root, bootstrap, say, on_event)
        finally:
            testnet.terminate()
            testnet.wait(30)


def _demo(
    root: Path, bootstrap: list[str], say: Callable[[str], None], on_event: Listener
) -> dict[str, Any]:
    say(f"   bootstrap node: {', '.join(bootstrap)}")
    env = {**os.environ, "HUBLESS_BOOTSTRAP": ",".join(bootstrap)}
    publisher_config = replace(Config.resolve(env, home=root / "publisher"), passphrase=None)
    model = root / "tiny-demo"
    say("2. generating a model: config.json and two safetensors shards of random weights")
    make_model(model, seed=1, size=2 << 20, shards=2)
    with Client(publisher_config, on_event=on_event) as publisher:
        key = publisher.keys.create("default", None).public
        say(f"3. publisher key: {key.text}")
        first = publisher.publish(
            model, "tiny-demo", "v1", key=publisher.keys.load("default", None)
        )
        say(
            f"4. published {first.reference} as seq {first.seq} ({first.files} files, "
            f"{first.size:,} bytes) to {first.dht_nodes} DHT nodes"
        )
        consumer = root / "consumer"
        ref = f"{key.text}/tiny-demo"
        say("5. consumer (a separate process) pulls the latest version")
        v1 = run_cli(consumer, bootstrap, "pull", ref)
        say(
            f"   got {v1['version']}: {v1['fetched_files']} files, "
            f"{v1['downloaded_bytes']:,} bytes downloaded, at {v1['path']}"
        )
        _change_one_shard(model)
        second = publisher.publish(
            model, "tiny-demo", "v2", key=publisher.keys.load("default", None)
        )
        say(f"6. published {second.reference} as seq {second.seq} with one shard changed")
        say("7. consumer pulls v2: only the changed shard should travel")
        v2 = run_cli(consumer, bootstrap, "pull", ref)
        say(
            f"   got {v2['version']}: fetched {v2['fetched_files']} of {v2['files']} files "
            f"({v2['downloaded_bytes']:,} bytes); reused {v2['reused_files']} from the cache"
        )
        old = run_cli(consumer, bootstrap, "pull", f"{ref}@v1")
        say(f"8. consumer pulls {ref[:12]}…/tiny-demo@v1 again from history: {old['path']}")
        history = run_cli(consumer, bootstrap, "history", ref)
        say(
            "9. history: "
            + ", ".join(f"{h['version']} (seq {h['seq']})" for h in history["versions"])
        )
        for result in (v1, v2, old):
            check = run_cli(consumer, bootstrap, "verify", result["path"])
            if not check["ok"]:
                raise DemoError(f"{result['path']} failed verification: {check}")
        say("10. every file of every pulled version verified against the signed manifests")
        if v2["fetched_files"] != 1:
            raise DemoError(f"the update fetched {v2['fetched_files']} files, expected 1")
    return {"v1": v1, "v2": v2, "v1_again": old, "history": history}


def _change_one_shard(model: Path) -> None:
    from .modelgen import write_safetensors

    shard = sorted(model.glob("model-*.safetensors"))[-1]
    data = os.urandom(shard.stat().st_size // 2 // 256 * 256)
    write_safetensors(shard, {"layers.1.weight": ("F32", (len(data) // 256, 64), data)})
