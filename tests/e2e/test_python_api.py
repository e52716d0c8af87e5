"""The Python API a program uses: module-level functions configured from the environment."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from tests.conftest import RunningTestnet, read_line

pytestmark = pytest.mark.e2e

PUBLISHER = """
import json, sys, time
from pathlib import Path
import hubless
from hubless.lab.modelgen import make_model
make_model(Path(sys.argv[1]), seed=5, size=1 << 20, shards=2)
client = hubless._client()
client.keys.create("default", None)
result = hubless.publish(sys.argv[1], "api-model", "v1")
print(json.dumps(result.summary()), flush=True)
hubless.seed()  # serves until the test stops this process
"""

CONSUMER = """
import json, sys
import hubless
path = hubless.pull(sys.argv[1])
res = hubless.history(sys.argv[1])
print(json.dumps({"path": str(path), "versions": [res.latest.manifest.version]}), flush=True)
"""


def test_module_level_api_publishes_and_pulls(
    testnet: RunningTestnet, tmp_path: Path, spawn_python: object
) -> None:
    def env(home: str) -> dict[str, str]:
        return {"HUBLESS_HOME": str(tmp_path / home), "HUBLESS_BOOTSTRAP": testnet.bootstrap_arg}

    spawn = spawn_python  # the fixture stops every process at teardown
    publisher = spawn(PUBLISHER, str(tmp_path / "model"), env=env("alice"))  # type: ignore[operator]
    published = json.loads(read_line(publisher, 60))
    consumer = spawn(CONSUMER, f"{published['publisher']}/api-model", env=env("bob"))  # type: ignore[operator]
    pulled = json.loads(read_line(consumer, 60))
    assert pulled["versions"] == ["v1"]
    for name in ("config.json", "model-00001-of-00002.safetensors"):
        mine = (tmp_path / "model" / name).read_bytes()
        theirs = (Path(pulled["path"]) / name).read_bytes()
        assert hashlib.sha256(mine).digest() == hashlib.sha256(theirs).digest()
    assert Path(pulled["path"]).is_relative_to(tmp_path / "bob")
