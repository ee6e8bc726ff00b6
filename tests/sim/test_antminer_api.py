"""The Antminer CGMiner API over real TCP: bytes, STATUS blocks, joined commands, text form."""

from __future__ import annotations

import asyncio
import json

import pytest

from tests.conftest import load_fixture
from tests.sim.helpers import api, api_raw

STATUS_KEYS = ["STATUS", "When", "Code", "Msg", "Description"]


def _shape(obj: object) -> object:
    """Field names, order and types of a reply, without values."""
    if isinstance(obj, dict):
        return [(k, _shape(v)) for k, v in obj.items()]
    if isinstance(obj, list):
        return [_shape(obj[0])] if obj else []
    return type(obj).__name__


async def test_version_bytes_and_status_block(start):
    _, host = await start()
    data = await api_raw(host, b'{"command":"version"}')
    assert data.endswith(b"}\x00") and data.count(b"\x00") == 1
    reply = json.loads(data[:-1])
    assert list(reply) == ["STATUS", "VERSION", "id"]
    status = reply["STATUS"][0]
    assert list(status) == STATUS_KEYS
    assert (status["STATUS"], status["Code"], status["Msg"]) == ("S", 22, "CGMiner versions")
    assert reply["VERSION"][0]["Type"] == "Antminer S19 Pro"
    assert reply["VERSION"][0]["BMMiner"] == "1.0.0"


@pytest.mark.parametrize(
    ("model", "command", "fixture", "section"),
    [
        ("Antminer S21", "version", "antminer_s21_version.json", "VERSION"),
        ("Antminer S21", "summary", "antminer_s21_summary.json", "SUMMARY"),
        ("Antminer S21", "pools", "antminer_s21_pools.json", "POOLS"),
        ("Antminer S21", "devs", "antminer_s21_devs.json", "DEVS"),
    ],
)
async def test_replies_match_capture_exactly_in_shape(start, model, command, fixture, section):
    _, host = await start(model)
    reply = await api(host, command)
    captured = load_fixture(fixture)
    assert _shape(reply[section]) == _shape(captured[section])
    assert list(reply["STATUS"][0]) == list(captured["STATUS"][0])
    assert reply["STATUS"][0]["Code"] == captured["STATUS"][0]["Code"]


@pytest.mark.parametrize(
    ("command", "fixture", "section"),
    [
        ("version", "antminer_s19pro_version.json", "VERSION"),
        ("summary", "antminer_s19pro_summary.json", "SUMMARY"),
        ("stats", "antminer_s19pro_stats.json", "STATS"),
    ],
)
async def test_s19pro_fields_and_types_match_capture(start, command, fixture, section):
    # These captures were key-sorted by their publisher, so compare names and types, not order.
    _, host = await start()
    reply = await api(host, command)
    captured = load_fixture(fixture)
    assert len(reply[section]) == len(captured[section])
    for ours, theirs in zip(reply[section], captured[section], strict=True):
        assert sorted(_shape(ours)) == sorted(_shape(theirs))
    assert reply["STATUS"][0]["Code"] == captured["STATUS"][0]["Code"]


async def test_stats_live_values_are_consistent(start):
    fleet, host = await start()
    stats = (await api(host, "stats"))["STATS"][1]
    boards = [float(stats[f"chain_rate{n}"]) for n in (1, 2, 3)]
    assert sum(boards) == pytest.approx(stats["GHS 5s"], rel=1e-3)
    assert stats["GHS 5s"] == pytest.approx(110_000.0)
    assert stats["rate_unit"] == "GH"
    assert stats["chain_acn1"] == 114 and stats["chain_rate4"] == ""
    assert stats["chain_acs1"].count("o") == 114
    assert stats["Elapsed"] == fleet.state(host).uptime_s()


async def test_joined_command_is_one_object_keyed_by_command(start):
    _, host = await start()
    data = await api_raw(host, b'{"command":"summary+stats+pools"}')
    assert data.endswith(b"\x00")
    reply = json.loads(data[:-1])
    assert list(reply) == ["summary", "stats", "pools", "id"]
    for key, section in (("summary", "SUMMARY"), ("stats", "STATS"), ("pools", "POOLS")):
        assert isinstance(reply[key], list) and len(reply[key]) == 1
        assert list(reply[key][0]) == ["STATUS", section, "id"]


async def test_joined_command_with_an_unknown_part(start):
    _, host = await start()
    reply = json.loads((await api_raw(host, b'{"command":"summary+nope"}'))[:-1])
    assert reply["nope"][0]["STATUS"][0]["Code"] == 14
    assert reply["summary"][0]["STATUS"][0]["Code"] == 11


async def test_invalid_command_status(start):
    _, host = await start()
    reply = await api(host, "estats")
    assert reply == {"STATUS": [reply["STATUS"][0]], "id": 1}
    status = reply["STATUS"][0]
    assert list(status) == STATUS_KEYS
    assert (status["STATUS"], status["Code"], status["Msg"]) == ("E", 14, "Invalid command")


async def test_invalid_json_status(start):
    _, host = await start()
    reader, writer = await asyncio.open_connection(host, 4028)
    writer.write(b'{"command": ')
    writer.write_eof()
    data = await asyncio.wait_for(reader.read(), 3)
    writer.close()
    assert json.loads(data[:-1])["STATUS"][0]["Code"] == 23


async def test_text_form(start):
    _, host = await start()
    data = await api_raw(host, b"summary")
    assert data.endswith(b"|\x00")
    text = data[:-1].decode()
    status, summary = text.rstrip("|").split("|")
    assert status.startswith("STATUS=S,When=") and ",Code=11,Msg=Summary," in status
    assert summary.startswith("SUMMARY,Elapsed=")
    data = await api_raw(host, b"pools|0")
    assert b"|POOL=0,URL=stratum+tcp://" in data
    assert (await api_raw(host, b"bogus")).startswith(b"STATUS=E,When=")


async def test_request_split_and_sent_late_is_answered(start):
    _, host = await start()
    reader, writer = await asyncio.open_connection(host, 4028)
    await asyncio.sleep(1.5)  # a loaded client connects, then writes seconds later
    writer.write(b'{"comm')
    await writer.drain()
    await asyncio.sleep(0.2)
    writer.write(b'and":"version"}')
    data = await asyncio.wait_for(reader.read(), 3)
    writer.close()
    assert data.endswith(b"\x00") and b'"Type":"Antminer S19 Pro"' in data


async def test_parameter_is_accepted(start):
    _, host = await start()
    reply = await api(host, "check", "summary")
    assert reply["CHECK"] == [{"Exists": "Y", "Access": "Y"}]


async def test_joined_parts_agree_with_each_other_under_jitter(start):
    _, host = await start(jitter=0.05)
    reply = json.loads((await api_raw(host, b'{"command":"summary+stats"}'))[:-1])
    summary = reply["summary"][0]["SUMMARY"][0]
    stats = reply["stats"][0]["STATS"][1]
    assert summary["GHS 5s"] == stats["GHS 5s"]
    assert summary["Elapsed"] == stats["Elapsed"]


async def test_s19pro_stats_in_bmminer_field_order(start):
    # Our S19 Pro capture was key-sorted by its publisher; BMMiner 49.0.1.3 emits this order.
    _, host = await start()
    data = await api_raw(host, b'{"command":"stats"}')
    head, item = json.loads(data[:-1])["STATS"]
    assert list(head) == ["BMMiner", "Miner", "CompileTime", "Type"]
    keys = list(item)
    assert keys[:11] == [
        "STATS",
        "ID",
        "Elapsed",
        "Calls",
        "Wait",
        "Max",
        "Min",
        "GHS 5s",
        "GHS av",
        "rate_30m",
        "Mode",
    ]
    assert keys[keys.index("temp1") : keys.index("temp1") + 6] == [
        "temp1",
        "temp2_1",
        "temp2",
        "temp2_2",
        "temp3",
        "temp2_3",
    ]
    assert keys[-2:] == ["miner_version", "miner_id"]
    assert data.startswith(b'{"STATUS":[{"STATUS":"S","When":')
