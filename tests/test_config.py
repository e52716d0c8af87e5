"""Configuration: one HOST:PORT parser, and flag > environment > config file > default."""

from __future__ import annotations

from pathlib import Path

import pytest
from hubless.config import Config, parse_endpoint, parse_endpoints, parse_listen
from hubless.core.errors import UsageError


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("127.0.0.1:6881", (("127.0.0.1", 6881),)),
        ("127.0.0.1:1, 127.0.0.2:2", (("127.0.0.1", 1), ("127.0.0.2", 2))),
        ("127.0.0.1:1 127.0.0.2:2", (("127.0.0.1", 1), ("127.0.0.2", 2))),
        ("[::1]:6881", (("::1", 6881),)),
        ("localhost:80,", (("localhost", 80),)),
        ("", ()),
    ],
)
def test_parse_endpoints(text: str, expected: tuple[tuple[str, int], ...]) -> None:
    assert parse_endpoints(text, "test") == expected


@pytest.mark.parametrize(
    "text",
    [
        "127.0.0.1",
        "127.0.0.1:0",
        "127.0.0.1:x",
        ":80",
        "h:70000",
        "::1",
        "[::1]",
        "a b:1:2",
        "[]:1",
    ],
)
def test_parse_endpoints_refuses(text: str) -> None:
    with pytest.raises(UsageError, match=r"^SOURCE: "):
        parse_endpoints(text, "SOURCE")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("127.0.0.1", ("127.0.0.1", 0)),
        ("127.0.0.1:0", ("127.0.0.1", 0)),
        ("10.0.0.5:6881", ("10.0.0.5", 6881)),
        ("::1", ("::1", 0)),
        ("[::1]", ("::1", 0)),
        ("[fe80::1]:7000", ("fe80::1", 7000)),
        ("lan-host", ("lan-host", 0)),
    ],
)
def test_parse_listen(text: str, expected: tuple[str, int]) -> None:
    assert parse_listen(text, "test") == expected


@pytest.mark.parametrize("text", ["", ":", "127.0.0.1:", "h:65536", "h:-1", "[::1]:x"])
def test_parse_listen_refuses(text: str) -> None:
    with pytest.raises(UsageError):
        parse_listen(text, "test")


def test_parse_endpoint_names_its_source() -> None:
    with pytest.raises(UsageError) as caught:
        parse_endpoint("nowhere", "HUBLESS_BOOTSTRAP")
    assert "HUBLESS_BOOTSTRAP" in caught.value.message and caught.value.hint


def test_listen_from_the_environment_follows_the_flags_rule(tmp_path: Path) -> None:
    # A bare host was accepted from --listen but refused from HUBLESS_LISTEN.
    from_env = Config.resolve({"HUBLESS_LISTEN": "127.0.0.1"}, home=tmp_path)
    from_flag = Config.resolve({}, home=tmp_path, listen="127.0.0.1")
    assert (from_env.listen_host, from_env.listen_port) == ("127.0.0.1", 0)
    assert (from_flag.listen_host, from_flag.listen_port) == ("127.0.0.1", 0)


def write_config(home: Path, text: str) -> Path:
    path = home / "config" / "config.toml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


FILE = """\
# settings for this lab
bootstrap = ["127.0.0.3:3000", "127.0.0.4:4000"]
listen = "127.0.0.9:9000"
upload_limit = 3000
"""


def test_defaults_without_a_config_file(tmp_path: Path) -> None:
    config = Config.resolve({}, home=tmp_path)
    assert config.bootstrap == () and config.listen_host is None and config.upload_limit == 0
    assert config.config_file == tmp_path.resolve() / "config" / "config.toml"


def test_the_config_file_beats_the_defaults(tmp_path: Path) -> None:
    write_config(tmp_path, FILE)
    config = Config.resolve({}, home=tmp_path)
    assert config.bootstrap == (("127.0.0.3", 3000), ("127.0.0.4", 4000))
    assert (config.listen_host, config.listen_port) == ("127.0.0.9", 9000)
    assert config.upload_limit == 3000


def test_the_environment_beats_the_config_file(tmp_path: Path) -> None:
    write_config(tmp_path, FILE)
    env = {
        "HUBLESS_BOOTSTRAP": "127.0.0.2:2000",
        "HUBLESS_LISTEN": "127.0.0.8",
        "HUBLESS_UPLOAD_LIMIT": "2000",
    }
    config = Config.resolve(env, home=tmp_path)
    assert config.bootstrap == (("127.0.0.2", 2000),)
    assert (config.listen_host, config.listen_port) == ("127.0.0.8", 0)
    assert config.upload_limit == 2000
    # Set but empty: no bootstrap node (the public DHT), whatever the file says.
    assert Config.resolve({"HUBLESS_BOOTSTRAP": ""}, home=tmp_path).bootstrap == ()


def test_flags_beat_the_environment(tmp_path: Path) -> None:
    write_config(tmp_path, FILE)
    env = {"HUBLESS_BOOTSTRAP": "127.0.0.2:2000", "HUBLESS_LISTEN": "127.0.0.8"}
    config = Config.resolve(
        {**env, "HUBLESS_UPLOAD_LIMIT": "2000"},
        home=tmp_path,
        bootstrap=("127.0.0.1:1000",),
        listen="127.0.0.7:7000",
        upload_limit=1000,
    )
    assert config.bootstrap == (("127.0.0.1", 1000),)
    assert (config.listen_host, config.listen_port) == ("127.0.0.7", 7000)
    assert config.upload_limit == 1000


def test_home_from_the_environment_chooses_the_config_file(tmp_path: Path) -> None:
    write_config(tmp_path, 'listen = "127.0.0.9"\n')
    config = Config.resolve({"HUBLESS_HOME": str(tmp_path)})
    assert config.listen_host == "127.0.0.9"


@pytest.mark.parametrize(
    ("text", "line", "words"),
    [
        ('listen = "127.0.0.1"\nbootstrap = [127.0.0.1:5]\n', 2, "array"),
        ('listen = "127.0.0.1"\n\nbootstrap = "127.0.0.1:5"\n', 3, "must be a list"),
        ('bootstrap = ["127.0.0.1"]\n', 1, "has no port"),
        ("listen = 7\n", 1, "must be a string"),
        ("\nupload_limit = -5\n", 2, "whole number"),
        ("upload_limit = true\n", 1, "whole number"),
        ('\n\nhome = "/srv"\n', 3, "unknown setting 'home'"),
    ],
)
def test_a_malformed_config_file_names_the_file_and_line(
    tmp_path: Path, text: str, line: int, words: str
) -> None:
    path = write_config(tmp_path, text)
    with pytest.raises(UsageError) as caught:
        Config.resolve({}, home=tmp_path)
    message = caught.value.message
    assert str(path) in message and f"line {line}" in message and words in message, message


def test_a_config_file_that_is_not_text_is_refused(tmp_path: Path) -> None:
    path = write_config(tmp_path, "")
    path.write_bytes(b"listen = \xff\n")
    with pytest.raises(UsageError, match="not UTF-8"):
        Config.resolve({}, home=tmp_path)


def test_a_bad_environment_value_names_the_variable(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="HUBLESS_UPLOAD_LIMIT"):
        Config.resolve({"HUBLESS_UPLOAD_LIMIT": "lots"}, home=tmp_path)
    with pytest.raises(UsageError, match="HUBLESS_BOOTSTRAP"):
        Config.resolve({"HUBLESS_BOOTSTRAP": "127.0.0.1"}, home=tmp_path)


def test_offline_timeout_and_hf_cache_follow_the_same_rule(tmp_path: Path) -> None:
    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "config.toml").write_text(
        "offline = true\ntimeout = 12\nhf_cache = true\n"
    )
    from_file = Config.resolve({}, home=tmp_path)
    assert (from_file.offline, from_file.timeout, from_file.hf_cache) == (True, 12.0, True)
    assert from_file.dht_timeout == from_file.transfer_timeout == from_file.check_timeout == 12
    env = {"HUBLESS_OFFLINE": "0", "HUBLESS_TIMEOUT": "2.5", "HUBLESS_HF_CACHE": "no"}
    from_env = Config.resolve(env, home=tmp_path)
    assert (from_env.offline, from_env.timeout, from_env.hf_cache) == (False, 2.5, False)
    flags = Config.resolve(env, home=tmp_path, offline=True, timeout=1.0, hf_cache=True)
    assert (flags.offline, flags.timeout, flags.hf_cache) == (True, 1.0, True)


def test_without_a_timeout_a_cached_answer_waits_less_than_a_lookup(tmp_path: Path) -> None:
    config = Config.resolve({}, home=tmp_path)
    assert (config.dht_timeout, config.check_timeout, config.transfer_timeout) == (30, 10, 3600)


@pytest.mark.parametrize(
    ("env", "setting"),
    [
        ({"HUBLESS_OFFLINE": "maybe"}, "HUBLESS_OFFLINE"),
        ({"HUBLESS_TIMEOUT": "0"}, "HUBLESS_TIMEOUT"),
        ({"HUBLESS_TIMEOUT": "soon"}, "HUBLESS_TIMEOUT"),
    ],
)
def test_bad_switches_and_timeouts_name_the_variable(
    tmp_path: Path, env: dict[str, str], setting: str
) -> None:
    with pytest.raises(UsageError, match=setting):
        Config.resolve(env, home=tmp_path)


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"HOME": "/h"}, "/h/.cache/huggingface/hub"),
        ({"HOME": "/h", "XDG_CACHE_HOME": "/x"}, "/x/huggingface/hub"),
        ({"HOME": "/h", "HF_HOME": "/hf"}, "/hf/hub"),
        ({"HF_HOME": "/hf", "HUGGINGFACE_HUB_CACHE": "/legacy"}, "/legacy"),
        ({"HF_HUB_CACHE": "/new", "HUGGINGFACE_HUB_CACHE": "/legacy"}, "/new"),
        ({"HF_HUB_CACHE": "$ROOT/hub", "ROOT": "/r"}, "/r/hub"),
    ],
)
def test_the_hugging_face_cache_is_found_as_huggingface_hub_finds_it(
    env: dict[str, str], expected: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from hubless.config import hf_hub_cache

    monkeypatch.setenv("HOME", env.get("HOME", "/h"))
    assert hf_hub_cache(env) == Path(expected)
