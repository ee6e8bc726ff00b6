"""Redaction for dumped fixtures: consistent placeholders, types and shapes kept, nothing identifying left."""

from __future__ import annotations

import json

from conftest import FIXTURES, load_fixture

from fleetd.redact import Redactor, redact_responses


def shape(value: object) -> object:
    if isinstance(value, dict):
        return {k: shape(v) for k, v in value.items()}
    if isinstance(value, list):
        return [shape(v) for v in value]
    return type(value).__name__


def test_real_captures_keep_shape_and_lose_identifiers() -> None:
    responses = {p.stem: json.loads(p.read_text()) for p in sorted(FIXTURES.glob("*.json"))}
    redacted = redact_responses(responses)
    assert shape(redacted) == shape(responses)
    text = json.dumps(redacted)
    for secret in (
        "C4:08:28:00:A4:19",  # Whatsminer MAC
        "CE:02:01:00:8C:36",
        "172.16.2.58",  # Whatsminer IP
        "BTM3CS40HD24083100000000000000000",  # Whatsminer serial
        "SMTTYRHBDJAAI019D",  # Antminer board serial
        "8144d5ca79104814",  # Antminer miner_id
        "proto_mining_sw_test",  # pool users
        "test-password",  # pool password
        "020100008c699117",  # Avalon DNA, also inside the estats free text
    ):
        assert secret not in text, secret


def test_versions_and_models_survive() -> None:
    version = load_fixture("antminer_s19pro_version.json")
    out = redact_responses({"rpc_version": version})["rpc_version"]
    assert out == version  # nothing identifying in a version reply


def test_placeholders_are_consistent_across_replies_and_keep_format() -> None:
    responses = {
        "web_get_system_info.cgi": {
            "macaddr": "AA:BB:CC:00:11:22",
            "ipaddress": "10.20.30.40",
            "hostname": "rack7-s19-042",
            "serinum": "JYZZD4BBDJAAI0123",
            "netmask": "255.255.255.0",
            "minertype": "Antminer S19 Pro",
        },
        "rpc_stats": {
            "STATS": [{"Type": "Antminer S19 Pro", "miner_id": "8144d5ca79104814", "sn": 123456}],
            "log": "link up on AA:BB:CC:00:11:22 ip 10.20.30.40 host rack7-s19-042",
        },
        "rpc_pools": {
            "POOLS": [
                {"URL": "stratum+tcp://10.20.0.2:3333", "User": "acct.rack7-042", "Pass": "x"},
                {"URL": "stratum+tcp://pool.example:3333", "User": "acct.rack7-042", "Pass": "s3cret"},
            ]
        },
    }
    out = redact_responses(responses)
    info = out["web_get_system_info.cgi"]
    assert info["macaddr"] == "02:00:00:00:00:01"
    assert info["ipaddress"].startswith("192.0.2.")
    assert info["hostname"] == "miner-1"
    assert len(info["serinum"]) == len("JYZZD4BBDJAAI0123") and info["serinum"].startswith("SN")
    assert info["netmask"] == "255.255.255.0"
    assert info["minertype"] == "Antminer S19 Pro"
    stats = out["rpc_stats"]
    assert stats["STATS"][0]["Type"] == "Antminer S19 Pro"
    assert isinstance(stats["STATS"][0]["sn"], int) and stats["STATS"][0]["sn"] != 123456
    assert stats["log"] == f"link up on 02:00:00:00:00:01 ip {info['ipaddress']} host miner-1"
    pools = out["rpc_pools"]["POOLS"]
    assert pools[0]["User"] == pools[1]["User"] == "user1.worker1"
    assert pools[0]["URL"].startswith("stratum+tcp://192.0.2.") and pools[0]["URL"].endswith(":3333")
    assert pools[1]["URL"] == "stratum+tcp://pool.example:3333"
    assert pools[0]["Pass"] == "x"  # the conventional "no password" stays recognisable
    assert pools[1]["Pass"] == "secret1"


def test_default_host_name_does_not_eat_the_vendor_name() -> None:
    out = redact_responses(
        {"a": {"hostname": "Antminer"}, "b": {"Type": "Antminer S21", "Miner": "Antminer firmware"}}
    )
    assert out["a"]["hostname"] == "miner-1"
    assert out["b"] == {"Type": "Antminer S21", "Miner": "Antminer firmware"}


def test_version_like_values_are_not_taken_for_ips() -> None:
    r = Redactor()
    assert r.redact({"Firmware": "1.0.2.13"}) == {"Firmware": "1.0.2.13"}
    assert r.redact({"note": "peer 1.0.2.13"}) == {"note": "peer 192.0.2.1"}
