"""The command line as a user meets it: exit codes, one-line errors, --json, no needless imports.

Most tests run in-process (the `hubless` fixture); those about the real program (imports,
signals, the installed entry point, shell completion) run it as a separate process.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import read_line, stop_process

from .conftest import Hubless

KEY = "aoqqpp7tzyil4hlq3umoos6atft6jvrqtosq2xy53sdgiesvgg4a"
ROOT = Path(__file__).resolve().parents[2]


def hubless_process(
    home: Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("HUBLESS_")}
    return subprocess.run(
        [sys.executable, "-m", "hubless.cli", "--home", str(home), *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={**clean, **(env or {})},
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
    hubless: Hubless, args: tuple[str, ...]
) -> None:
    done = hubless("--bootstrap", "127.0.0.1:9", *args)
    assert done.code == 2, done.stderr
    assert done.stderr.startswith("error: ")
    assert "Traceback" not in done.stderr
    assert len(done.stderr.strip().splitlines()) <= 2  # the message and a hint


def test_json_errors_are_one_json_object(hubless: Hubless) -> None:
    done = hubless("--json", "resolve", "nonsense")
    assert done.code == 2
    error = json.loads(done.stderr.strip().splitlines()[-1])
    assert "not KEY/NAME" in error["error"] and "hint" in error


def test_debug_shows_the_traceback(hubless: Hubless) -> None:
    done = hubless("--debug", "resolve", "nonsense")
    assert done.code == 2 and "Traceback" in done.stderr


def test_click_usage_errors_exit_2(hubless: Hubless) -> None:
    done = hubless("publish")
    assert done.code == 2 and "Missing argument" in done.stderr


def test_keys_new_list_show_and_passphrases(hubless: Hubless) -> None:
    made = hubless("--json", "key", "new", env={"HUBLESS_PASSPHRASE": "s3cret horse"})
    assert made.code == 0, made.stderr
    info = json.loads(made.stdout)
    assert info["encrypted"] and len(info["public_key"]) == 52
    listed = json.loads(hubless("--json", "key", "list").stdout)
    assert listed == [{"name": "default", "public_key": info["public_key"], "encrypted": True}]
    shown = hubless("key", "show")
    assert shown.stdout.strip() == info["public_key"]
    # No passphrase and no terminal: a clear error, not a hang and not a plaintext key.
    refused = hubless("key", "new", "--name", "second")
    assert refused.code == 2 and "HUBLESS_PASSPHRASE" in refused.stderr
    again = hubless("key", "new")
    assert again.code == 1 and "already exists" in again.stderr


def test_wrong_passphrase_is_a_clear_error_before_any_network(
    hubless: Hubless, tmp_path: Path
) -> None:
    hubless("key", "new", env={"HUBLESS_PASSPHRASE": "right horse"})
    model = tmp_path / "model"
    model.mkdir()
    (model / "config.json").write_text("{}")
    done = hubless(
        "--bootstrap",
        "127.0.0.1:9",
        "publish",
        model,
        "--name",
        "m",
        "--version",
        "v1",
        env={"HUBLESS_PASSPHRASE": "wrong horse"},
    )
    assert done.code == 1
    assert "wrong passphrase" in done.stderr and "Traceback" not in done.stderr


def test_a_bare_listen_host_is_accepted_from_the_environment(hubless: Hubless) -> None:
    done = hubless("key", "list", env={"HUBLESS_LISTEN": "127.0.0.1"})
    assert done.code == 0, done.stderr
    assert (done.app.config.listen_host, done.app.config.listen_port) == ("127.0.0.1", 0)


def test_settings_come_from_the_config_file(hubless: Hubless, home: Path) -> None:
    (home / "config").mkdir(parents=True)
    (home / "config" / "config.toml").write_text('bootstrap = ["127.0.0.5:5000"]\n')
    done = hubless("key", "list")
    assert done.code == 0 and done.app.config.bootstrap == (("127.0.0.5", 5000),)
    flagged = hubless("key", "list", "--bootstrap", "127.0.0.6:6000")
    assert flagged.app.config.bootstrap == (("127.0.0.6", 6000),)


def test_a_malformed_config_file_is_a_usage_error_naming_file_and_line(
    hubless: Hubless, home: Path
) -> None:
    path = home / "config" / "config.toml"
    path.parent.mkdir(parents=True)
    path.write_text('listen = "127.0.0.1"\nbootstrap = 127.0.0.1:9\n')
    done = hubless("key", "list")
    assert done.code == 2 and str(path) in done.stderr and "line 2" in done.stderr


def test_help_does_not_load_libtorrent() -> None:
    code = (
        "import sys\nfrom hubless.cli.main import cli\n"
        "try:\n    cli.main(['--help'])\nexcept SystemExit:\n    pass\n"
        "assert 'libtorrent' not in sys.modules, 'libtorrent was imported'\n"
        "heavy = [m for m in sys.modules if m.startswith(('hubless.services.', 'hubless.store'))"
        " and m not in ('hubless.services.intervals', 'hubless.services.events')]\n"
        "assert not heavy, f'--help imported {heavy}'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, timeout=60)


def test_the_installed_program_takes_global_options_after_the_command(tmp_path: Path) -> None:
    done = hubless_process(tmp_path, "resolve", "nonsense", "--json")
    assert done.returncode == 2
    assert "not KEY/NAME" in json.loads(done.stderr.strip().splitlines()[-1])["error"]


def test_shell_completion_works_and_is_documented(tmp_path: Path) -> None:
    env = {"_HUBLESS_COMPLETE": "bash_complete", "COMP_WORDS": "hubless re", "COMP_CWORD": "1"}
    done = hubless_process(tmp_path, env=env)
    assert done.returncode == 0 and "plain,resolve" in done.stdout
    script = hubless_process(tmp_path, env={"_HUBLESS_COMPLETE": "bash_source"})
    assert "_hubless_completion" in script.stdout
    line = 'eval "$(_HUBLESS_COMPLETE=bash_source hubless)"'
    assert line in hubless_process(tmp_path, "--help").stdout
    assert line in (ROOT / "README.md").read_text()


def test_testnet_command_prints_its_bootstrap_as_json(tmp_path: Path) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "hubless.cli", "testnet", "--nodes", "3", "--json"],
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
    done = hubless_process(tmp_path, "demo", "--keep", str(tmp_path / "demo"))
    assert done.returncode == 0, done.stderr[-2000:]
    assert "every file of every pulled version verified" in done.stderr
    assert "fetched 1 of 3 files" in done.stderr


def test_the_command_lines_default_key_is_the_key_stores() -> None:
    from hubless.cli.app import DEFAULT_KEY, ENV_PASSPHRASE
    from hubless.config import ENV_PASSPHRASE as CONFIG_ENV_PASSPHRASE
    from hubless.store.keystore import DEFAULT_KEY as STORE_DEFAULT_KEY

    assert (DEFAULT_KEY, ENV_PASSPHRASE) == (STORE_DEFAULT_KEY, CONFIG_ENV_PASSPHRASE)
