"""Network profiles as data: what a session would be told, inspected before it exists."""

from __future__ import annotations

import subprocess
import sys

import pytest
from hubless.core.errors import UsageError
from hubless.net.profile import (
    MAINLINE_ROUTERS,
    NetProfile,
    loopback_violations,
    settings_for,
)

LOOPBACK = (("127.0.0.1", 6881), ("127.0.0.2", 7000))


def test_local_profile_names_only_the_loopback_nodes_it_was_given() -> None:
    settings = settings_for(NetProfile.local(LOOPBACK))
    assert settings["dht_bootstrap_nodes"] == "127.0.0.1:6881,127.0.0.2:7000"
    assert settings["listen_interfaces"] == "127.0.0.1:0"
    assert loopback_violations(settings) == []
    for host, _ in MAINLINE_ROUTERS:
        assert host not in str(settings)


def test_local_profile_with_no_bootstrap_names_none() -> None:
    assert settings_for(NetProfile.local())["dht_bootstrap_nodes"] == ""


@pytest.mark.parametrize("profile", [NetProfile.local(LOOPBACK), NetProfile.mainline()])
def test_lsd_upnp_natpmp_are_off_in_every_profile(profile: NetProfile) -> None:
    settings = settings_for(profile)
    assert settings["enable_lsd"] is False
    assert settings["enable_upnp"] is False
    assert settings["enable_natpmp"] is False
    assert settings["dht_upload_rate_limit"] > 0  # 0 would silence the DHT


def test_local_profile_relaxes_mainline_anti_sybil_rules_and_uses_tcp() -> None:
    lan = settings_for(NetProfile.local((("192.168.7.2", 6881),), host="192.168.7.10"))
    loopback = settings_for(NetProfile.local(LOOPBACK))
    for settings in (lan, loopback):
        for key in (
            "dht_restrict_search_ips",
            "dht_enforce_node_id",
            "dht_prefer_verified_node_ids",
            "enable_outgoing_utp",
            "enable_incoming_utp",
        ):
            assert settings[key] is False, key
        assert settings["allow_multiple_connections_per_ip"] is True
        assert settings["dht_block_ratelimit"] >= 1000
        # A dropped connection to the only seeder is made again within seconds, not 60 s.
        assert settings["min_reconnect_time"] <= 2 and settings["max_failcount"] >= 5
    # A LAN often sits in one /24: one routing entry per /24 would leave a node alone.
    assert lan["dht_restrict_routing_ips"] is False
    # On one host, clients share 127.0.0.1: only one of them may enter a routing table, so
    # an exited client cannot stall lookups (the testnet gives each node its own /24).
    assert loopback["dht_restrict_routing_ips"] is True


def test_mainline_profile_uses_public_routers_and_utp() -> None:
    profile = NetProfile.mainline()
    settings = settings_for(profile)
    assert profile.bootstrap == MAINLINE_ROUTERS
    assert "router.bittorrent.com:6881" in str(settings["dht_bootstrap_nodes"])
    assert settings["enable_outgoing_utp"] is True
    assert not profile.is_loopback
    assert loopback_violations(settings)  # the check does see a mainline session


def test_local_profile_refuses_to_listen_on_every_interface() -> None:
    with pytest.raises(UsageError):
        NetProfile.local(host="0.0.0.0")
    assert NetProfile.local().listen_host == "127.0.0.1"
    assert NetProfile.mainline().listen_host == "0.0.0.0"


def test_every_setting_name_is_one_libtorrent_knows() -> None:
    lt = pytest.importorskip("libtorrent")
    # default_settings() leaves out empty strings such as outgoing_interfaces; a session
    # (loopback, no bootstrap: it contacts nobody) reports every name with its value.
    local = settings_for(NetProfile.local())
    session = lt.session(local)
    try:
        known = session.get_settings()
    finally:
        session.pause()
    for key, value in local.items():
        assert known[key] == value, key
    assert set(settings_for(NetProfile.mainline())) <= set(known)


def test_building_profiles_never_loads_libtorrent() -> None:
    code = (
        "import sys, hubless.net.profile as p; p.settings_for(p.NetProfile.mainline()); "
        "assert 'libtorrent' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.parametrize(
    ("settings", "problem"),
    [
        ({"listen_interfaces": "0.0.0.0:6881"}, "listen_interfaces"),
        ({"listen_interfaces": "[::]:6881s"}, "listen_interfaces"),
        ({"dht_bootstrap_nodes": "127.0.0.1:1,10.0.0.1:2"}, "dht_bootstrap_nodes"),
        ({"outgoing_interfaces": "eth0"}, "outgoing_interfaces"),
        ({"enable_lsd": True}, "enable_lsd"),
    ],
)
def test_loopback_violations_names_each_leak(settings: dict[str, object], problem: str) -> None:
    base: dict[str, object] = {
        "listen_interfaces": "127.0.0.1:0",
        "dht_bootstrap_nodes": "",
        "enable_lsd": False,
        "enable_upnp": False,
        "enable_natpmp": False,
    }
    found = loopback_violations({**base, **settings})
    assert len(found) == 1 and found[0].startswith(problem)


def test_local_profile_is_tuned_for_fan_out() -> None:
    """The settings decision 0011 measured with bench/fanout.py: no SUGGEST messages (every
    downloader asked a slow seed for the same pieces), short request queues at a seed, fast
    bandwidth rounds, and no dropping of seed-to-seed links a metadata fetch needs."""
    settings = settings_for(NetProfile.local(LOOPBACK))
    assert settings["suggest_mode"] == 0
    assert settings["max_allowed_in_request_queue"] == 64
    assert settings["tick_interval"] == 100
    assert settings["close_redundant_connections"] is False
