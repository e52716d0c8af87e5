"""Every global option works before and after every command (click alone refuses the latter).

Each command gets an invocation that ends fast without a network (bad input, a missing key,
a stubbed long-running loop); the test checks that the option was not refused and that the
command saw its value. A command added without an invocation here fails the coverage test.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click
import pytest
from hubless.cli.app import App
from hubless.cli.main import cli

from .conftest import Hubless

BAD_REF = "not-a-reference"

# command path → (arguments after the command, expected exit code)
INVOCATIONS: dict[tuple[str, ...], tuple[tuple[str, ...], int]] = {
    ("key", "new"): (("--name", "spare", "--no-passphrase"), 0),
    ("key", "list"): ((), 0),
    ("key", "show"): (("nobody",), 1),
    ("publish",): (("{folder}", "--name", "-bad", "--version", "v1"), 2),
    ("resolve",): ((BAD_REF,), 2),
    ("history",): ((BAD_REF,), 2),
    ("pull",): ((BAD_REF,), 2),
    ("seed",): (("--key", "nobody"), 1),
    ("status",): ((), 0),
    ("verify",): (("{folder}",), 2),
    ("export",): ((BAD_REF, "--magnet"), 2),
    ("list",): ((), 0),
    ("rm",): ((BAD_REF,), 2),
    ("prune",): (("--dry-run",), 0),
    ("import",): (("{folder}", BAD_REF), 2),
    ("follow",): ((BAD_REF,), 2),
    ("unfollow",): ((BAD_REF,), 2),
    ("following",): ((), 0),
    ("models",): ((BAD_REF,), 2),
    ("search",): (("anything",), 0),
    ("testnet",): (("--nodes", "1"), 0),
    ("demo",): ((), 0),
}


# (command, its option) → (arguments after the command, expected exit code): options that
# change what a command does run with every global option too.
OPTION_INVOCATIONS: dict[tuple[str, str], tuple[tuple[str, ...], int]] = {
    ("seed", "--once"): (("--once",), 2),  # without --key: a usage error
    ("publish", "--follow-links"): (
        ("{folder}", "--follow-links", "--name", "-bad", "--version", "v1"),
        2,
    ),
}


def leaf_commands(group: click.Group, prefix: tuple[str, ...] = ()) -> set[tuple[str, ...]]:
    found: set[tuple[str, ...]] = set()
    for name, command in group.commands.items():
        if isinstance(command, click.Group):
            found |= leaf_commands(command, (*prefix, name))
        else:
            found.add((*prefix, name))
    return found


def test_every_command_has_an_invocation_here() -> None:
    assert leaf_commands(cli) == set(INVOCATIONS)


# option → (its arguments, what App.options holds afterwards)
def option_cases(tmp: Path) -> dict[str, tuple[tuple[str, ...], str, Any]]:
    return {
        "--json": (("--json",), "as_json", True),
        "-q": (("-q",), "quiet", True),
        "--quiet": (("--quiet",), "quiet", True),
        "--debug": (("--debug",), "debug", True),
        "--home": (("--home", str(tmp / "other-home")), "home", tmp / "other-home"),
        "--bootstrap": (("--bootstrap", "127.0.0.1:9"), "bootstrap", ("127.0.0.1:9",)),
        "--listen": (("--listen", "127.0.0.1"), "listen", "127.0.0.1"),
        "--upload-limit": (("--upload-limit", "5"), "upload_limit", 5),
        "--offline": (("--offline",), "offline", True),
        "--timeout": (("--timeout", "2.5"), "timeout", 2.5),
    }


@pytest.fixture(autouse=True)
def _no_long_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    """testnet and demo run until stopped or for a minute: stub the loops, keep the command."""
    import hubless.lab.demo
    import hubless.net.testnet

    monkeypatch.setattr(hubless.net.testnet, "run_testnet", lambda *a, **kw: None)
    monkeypatch.setattr(hubless.lab.demo, "run_demo", lambda *a, **kw: {})


@pytest.mark.parametrize("position", ["before", "after"])
@pytest.mark.parametrize("option", list(option_cases(Path())))
@pytest.mark.parametrize("command", list(INVOCATIONS), ids="-".join)
def test_global_option_before_or_after_every_command(
    hubless: Hubless, tmp_path: Path, command: tuple[str, ...], option: str, position: str
) -> None:
    folder = tmp_path / "folder"
    folder.mkdir()
    args, expected = INVOCATIONS[command]
    rest = [a.replace("{folder}", str(folder)) for a in args]
    given, attribute, value = option_cases(tmp_path)[option]
    argv = [*given, *command, *rest] if position == "before" else [*command, *rest, *given]
    done = hubless(*argv, app=App(stop=_stopped))
    assert "No such option" not in done.stderr, done.stderr
    assert done.code == expected, done.stderr
    assert getattr(done.app.options, attribute) == value


@pytest.mark.parametrize("position", ["before", "after"])
@pytest.mark.parametrize("option", list(option_cases(Path())))
@pytest.mark.parametrize("case", list(OPTION_INVOCATIONS), ids="".join)
def test_global_option_around_a_command_option(
    hubless: Hubless, tmp_path: Path, case: tuple[str, str], option: str, position: str
) -> None:
    folder = tmp_path / "folder"
    folder.mkdir()
    args, expected = OPTION_INVOCATIONS[case]
    rest = [a.replace("{folder}", str(folder)) for a in args]
    given, attribute, value = option_cases(tmp_path)[option]
    argv = [*given, case[0], *rest] if position == "before" else [case[0], *rest, *given]
    done = hubless(*argv, app=App(stop=_stopped))
    assert "No such option" not in done.stderr, done.stderr
    assert done.code == expected, done.stderr
    assert getattr(done.app.options, attribute) == value


def test_a_group_below_the_root_takes_them_too(hubless: Hubless) -> None:
    done = hubless("key", "--json", "list")
    assert done.code == 0 and done.stdout.strip() == "[]"


def test_values_given_before_and_after_combine(hubless: Hubless, tmp_path: Path) -> None:
    done = hubless(
        "--bootstrap",
        "127.0.0.1:1",
        "--home",
        tmp_path / "a",
        "key",
        "list",
        "--bootstrap",
        "127.0.0.1:2",
        "--home",
        tmp_path / "b",
    )
    assert done.code == 0, done.stderr
    assert done.app.options.bootstrap == ("127.0.0.1:1", "127.0.0.1:2")
    assert done.app.config.bootstrap == (("127.0.0.1", 1), ("127.0.0.1", 2))
    assert done.app.config.data_dir == (tmp_path / "b").resolve() / "data"


def test_the_readme_example_with_json_after_the_command(hubless: Hubless) -> None:
    done = hubless("resolve", "nonsense", "--json")
    assert done.code == 2 and '"error"' in done.stderr and "not KEY/NAME" in done.stderr


def _stopped() -> Any:
    import threading

    stop = threading.Event()
    stop.set()
    return stop
