"""The command line as a user meets it: exit codes, one-line errors, --json, no needless imports."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import read_line, stop_process

KEY = "aoqqpp7tzyil4hlq3umoos6atft6jvrqtosq2xy53sdgiesvgg4a"


def hubless(
    home: Path, *args: str, env: dict[str, str] | None = None, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("HUBLESS_")}
    return subprocess.run(
        [sys.executable, "-m", "hubless.cli", "--home", str(home), *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={**clean, **(env or {})},
        input=stdin,
    )


@pytest.mark.parametrize(
    "args",
    [
        ("resolve", "not-a-reference"),
        ("pull", f"{KEY}/bad..name"),
        ("history", f"{KEY}/model@"),
        ("publish", ".", "--name", "-bad", "--version", "v1"),
    ],
)
def test_usage_errors_exit_2_with_one_line_and_no_traceback(
    tmp_path: Path, args: tuple[str, ...]
) -> None:
    done = hubless(tmp_path, "--bootstrap", "127.0.0.1:9", *args)
    assert done.returncode == 2, done.stderr
    assert done.stderr.startswith("error: ")
    assert "Traceback" not in done.stderr
    assert len(done.stderr.strip().splitlines()) <= 2  # the message and a hint


def test_json_errors_are_one_json_object(tmp_path: Path) -> None:
    done = hubless(tmp_path, "--json", "resolve", "nonsense")
    assert done.returncode == 2
    error = json.loads(done.stderr.strip().splitlines()[-1])
    assert "not KEY/NAME" in error["error"] and "hint" in error


def test_debug_shows_the_traceback(tmp_path: Path) -> None:
    done = hubless(tmp_path, "--debug", "resolve", "nonsense")
    assert done.returncode == 2 and "Traceback" in done.stderr


def test_click_usage_errors_exit_2(tmp_path: Path) -> None:
    done = hubless(tmp_path, "publish")
    assert done.returncode == 2 and "Missing argument" in done.stderr


def test_keys_new_list_show_and_passphrases(tmp_path: Path) -> None:
    made = hubless(tmp_path, "--json", "key", "new", env={"HUBLESS_PASSPHRASE": "s3cret horse"})
    assert made.returncode == 0, made.stderr
    info = json.loads(made.stdout)
    assert info["encrypted"] and len(info["public_key"]) == 52
    listed = json.loads(hubless(tmp_path, "--json", "key", "list").stdout)
    assert listed == [{"name": "default", "public_key": info["public_key"], "encrypted": True}]
    shown = hubless(tmp_path, "key", "show")
    assert shown.stdout.strip() == info["public_key"]
    # No passphrase and no terminal: a clear error, not a hang and not a plaintext key.
    refused = hubless(tmp_path, "key", "new", "--name", "second")
    assert refused.returncode == 2 and "HUBLESS_PASSPHRASE" in refused.stderr
    again = hubless(tmp_path, "key", "new")
    assert again.returncode == 1 and "already exists" in again.stderr


def test_wrong_passphrase_is_a_clear_error_before_any_network(tmp_path: Path) -> None:
    hubless(tmp_path, "key", "new", env={"HUBLESS_PASSPHRASE": "right horse"})
    model = tmp_path / "model"
    model.mkdir()
    (model / "config.json").write_text("{}")
    done = hubless(
        tmp_path,
        "--bootstrap",
        "127.0.0.1:9",
        "publish",
        str(model),
        "--name",
        "m",
        "--version",
        "v1",
        env={"HUBLESS_PASSPHRASE": "wrong horse"},
    )
    assert done.returncode == 1
    assert "wrong passphrase" in done.stderr and "Traceback" not in done.stderr


def test_help_does_not_load_libtorrent() -> None:
    code = (
        "import sys\nfrom hubless.cli.main import cli\n"
        "try:\n    cli.main(['--help'], standalone_mode=False)\nexcept SystemExit:\n    pass\n"
        "assert 'libtorrent' not in sys.modules, 'libtorrent was imported'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, timeout=60)


def test_testnet_command_prints_its_bootstrap_as_json(tmp_path: Path) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "hubless.cli", "--json", "testnet", "--nodes", "3"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        info = json.loads(read_line(proc, 30))
        assert info["nodes"] == 3
        host, _, port = info["bootstrap"][0].rpartition(":")
        assert host == "127.0.0.1" and int(port) > 0
    finally:
        stop_process(proc)
    assert proc.returncode == 0  # SIGTERM is a normal way to stop it


@pytest.mark.e2e
def test_the_demo_runs_end_to_end(tmp_path: Path) -> None:
    done = hubless(tmp_path, "demo", "--keep", str(tmp_path / "demo"))
    assert done.returncode == 0, done.stderr[-2000:]
    assert "every file of every pulled version verified" in done.stderr
    assert "fetched 1 of 3 files" in done.stderr
