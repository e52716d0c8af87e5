"""Many pulls sharing one home at once: processes (a job array, torchrun ranks) and threads.

One pull downloads, the others wait for it and reuse what it put in the cache: every pull
succeeds with the same snapshot, and the payload crosses the network once (libtorrent's own
byte count, summed over all pulls). Pulls of different models run side by side.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import time
from pathlib import Path

import pytest
from hubless.lab.modelgen import make_model

from tests.conftest import RunningTestnet, read_line, run_python

from . import cli

pytestmark = pytest.mark.e2e

PULLS = 8


def publish_and_seed(
    home: Path,
    testnet: RunningTestnet,
    model: Path,
    name: str,
    processes: list[subprocess.Popen[str]],
) -> dict[str, object]:
    proc = cli.spawn(home, testnet, "publish", model, "--name", name, "--version", "v1", "--seed")
    processes.append(proc)
    return json.loads(read_line(proc, 120))  # type: ignore[no-any-return]


def tree(folder: Path) -> dict[str, str]:
    return {
        p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def finish(procs: list[subprocess.Popen[str]], timeout: float) -> list[dict[str, object]]:
    results = []
    deadline = time.monotonic() + timeout
    for proc in procs:
        out, err = proc.communicate(timeout=max(1.0, deadline - time.monotonic()))
        assert proc.returncode == 0, f"pull exited {proc.returncode}:\n{err}"
        results.append(json.loads(out.strip().splitlines()[-1]))
    return results


def test_eight_processes_pull_one_model_once_and_two_models_side_by_side(
    testnet: RunningTestnet, tmp_path: Path, processes: list[subprocess.Popen[str]]
) -> None:
    publisher = tmp_path / "publisher"
    key = cli.run(publisher, testnet, "key", "new", "--no-passphrase")["public_key"]
    make_model(tmp_path / "big", seed=21, size=12 << 20, shards=3)
    make_model(tmp_path / "small", seed=22, size=2 << 20, shards=2)
    big = publish_and_seed(publisher, testnet, tmp_path / "big", "big", processes)
    publish_and_seed(publisher, testnet, tmp_path / "small", "small", processes)
    payload = int(big["size"])  # type: ignore[call-overload]

    home = tmp_path / "fresh"  # nothing there yet: state.db and the cache are made at once
    pulls = [
        subprocess.Popen(
            cli.command(home, testnet, "pull", f"{key}/big"),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(PULLS)
    ]
    processes.extend(pulls)
    results = finish(pulls, 240)

    paths = {str(r["path"]) for r in results}
    assert len(paths) == 1, paths
    assert tree(Path(paths.pop())) == {**tree(tmp_path / "big"), **_manifest_entry(results[0])}
    downloaded = [int(r["downloaded_bytes"]) for r in results]  # type: ignore[call-overload]
    fetched = [int(r["fetched_files"]) for r in results]  # type: ignore[call-overload]
    print(f"{PULLS} pulls of {payload:,} bytes: downloaded {downloaded}, fetched {fetched}")
    assert sorted(fetched)[:-1] == [0] * (PULLS - 1), fetched  # one pull downloaded ...
    assert payload <= sum(downloaded) < payload + (1 << 20), downloaded  # ... once

    other = tmp_path / "other"
    pair = [
        subprocess.Popen(
            cli.command(other, testnet, "pull", f"{key}/{name}"),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for name in ("big", "small")
    ]
    processes.extend(pair)
    both = finish(pair, 240)
    assert [r["name"] for r in both] == ["big", "small"]
    assert [r["fetched_files"] for r in both] == [4, 3]


THREADS = """
import json, sys, threading
from hubless.services.client import Client
client = Client()
results, errors = [], []
def pull():
    try:
        results.append(client.pull(sys.argv[1]).summary())
    except Exception as exc:  # report every failure, not only the first
        errors.append(repr(exc))
threads = [threading.Thread(target=pull) for _ in range(int(sys.argv[2]))]
for t in threads:
    t.start()
for t in threads:
    t.join()
client.close()
print(json.dumps({"results": results, "errors": errors}))
"""


def test_threads_of_one_process_pull_one_model_once(
    testnet: RunningTestnet,
    tmp_path: Path,
    processes: list[subprocess.Popen[str]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    publisher = tmp_path / "publisher"
    key = cli.run(publisher, testnet, "key", "new", "--no-passphrase")["public_key"]
    make_model(tmp_path / "model", seed=23, size=4 << 20, shards=2)
    published = publish_and_seed(publisher, testnet, tmp_path / "model", "threads", processes)

    monkeypatch.setenv("HUBLESS_HOME", str(tmp_path / "consumer"))
    monkeypatch.setenv("HUBLESS_BOOTSTRAP", testnet.bootstrap_arg)
    out = json.loads(run_python(THREADS, f"{key}/threads", "4", timeout=180))
    assert out["errors"] == []
    results = out["results"]
    assert len({r["path"] for r in results}) == 1
    assert sorted(r["fetched_files"] for r in results) == [0, 0, 0, 3]
    size = int(published["size"])  # type: ignore[call-overload]
    assert size <= sum(r["downloaded_bytes"] for r in results) < size + (1 << 20)


def _manifest_entry(result: dict[str, object]) -> dict[str, str]:
    """The snapshot's `.hubless/manifest`, which the published folder lacks."""
    path = Path(str(result["path"])) / ".hubless" / "manifest"
    return {".hubless/manifest": hashlib.sha256(path.read_bytes()).hexdigest()}
