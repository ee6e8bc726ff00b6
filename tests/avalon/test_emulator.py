"""The Avalon emulators: replies in the captures' shape and field order, the captured ascset reply."""

from __future__ import annotations

import json
import re

import pytest

from fleetd.sim.avalon import split_mm
from tests.avalon.conftest import Start
from tests.conftest import load_fixture
from tests.sim.helpers import api, api_raw
from tests.sim.test_capture_fidelity import shape_diff

CASES = [
    ("AvalonMiner 15-194", "estats", "avalon_a1566_estats.json", "MM ID0"),
    ("Avalon Q", "stats", "avalon_q_stats.json", "MM ID0:Summary"),
]


@pytest.mark.parametrize(("model", "command", "capture", "key"), CASES)
async def test_stats_have_the_capture_shape_and_key_order(
    start: Start, model: str, command: str, capture: str, key: str
) -> None:
    _, endpoint = await start(model)
    reply = await api(endpoint.host, command)
    captured = load_fixture(capture)
    assert shape_diff(reply, captured) == []
    ours, theirs = split_mm(reply["STATS"][0][key]), split_mm(captured["STATS"][0][key])
    assert ours[0] == theirs[0] and ours[2] == theirs[2]  # the Q's "'STATS':{...}" wrapping
    assert [k for k, _ in ours[1]] == [k for k, _ in theirs[1]]
    assert list(reply["STATS"][0]) == list(captured["STATS"][0])


@pytest.mark.parametrize(
    ("model", "prefix"), [("AvalonMiner 15-194", "avalon_a1566"), ("Avalon Q", "avalon_q")]
)
@pytest.mark.parametrize("command", ["version", "devs"])
async def test_version_and_devs_have_the_capture_shape(
    start: Start, command: str, model: str, prefix: str
) -> None:
    _, endpoint = await start(model)
    reply = await api(endpoint.host, command)
    captured = load_fixture(f"{prefix}_{command}.json")
    section = command.upper()
    assert shape_diff(reply, captured) == []
    assert reply["STATUS"][0]["Code"] == captured["STATUS"][0]["Code"]
    # The Q's captures were key-sorted by their publisher, so only the A1566's carry the firmware's order.
    order = list if prefix == "avalon_a1566" else sorted
    assert order(reply[section][0]) == order(captured[section][0])
    assert order(reply["STATUS"][0]) == order(captured["STATUS"][0])


async def test_softoff_reply_as_captured_and_softon_without_reply(start: Start) -> None:
    _, endpoint = await start("Avalon Q")
    when = (await api(endpoint.host, "version"))["STATUS"][0]["When"]
    reply = await api(endpoint.host, "ascset", f"0,softoff,1:{when + 5}")
    captured = load_fixture("avalon_q_ascset-softoff.json")
    assert shape_diff(reply, captured) == []
    status = reply["STATUS"][0]
    assert (status["STATUS"], status["Code"]) == ("I", 118)
    assert re.fullmatch(rf"ASC 0 set info: success softoff:{when + 5}", status["Msg"])
    raw = await api_raw(
        endpoint.host, json.dumps({"command": "ascset", "parameter": "0,softon,1:0"}).encode()
    )
    assert raw == b""


@pytest.mark.parametrize("what", ["workmode", "worklevel"])
async def test_workmode_and_worklevel_replies_as_captured(start: Start, what: str) -> None:
    _, endpoint = await start("Avalon Q")
    reply = await api(endpoint.host, "ascset", f"0,{what},set,2")
    captured = load_fixture("avalon_q_ascset-workmode.json")
    assert shape_diff(reply, captured) == []
    keys = ("STATUS", "Code", "Msg", "Description")
    assert [reply["STATUS"][0][k] for k in keys] == [captured["STATUS"][0][k] for k in keys]


async def test_softon_reply_when_asked_is_as_captured(start: Start) -> None:
    _, endpoint = await start("Avalon Q", softon_reply=True)
    when = (await api(endpoint.host, "version"))["STATUS"][0]["When"]
    reply = await api(endpoint.host, "ascset", f"0,softon,1:{when + 5}")
    captured = load_fixture("avalon_q_ascset-softon.json")
    assert shape_diff(reply, captured) == []
    assert (reply["STATUS"][0]["STATUS"], reply["STATUS"][0]["Code"]) == ("I", 118)
    assert reply["STATUS"][0]["Msg"] == f"ASC 0 set info: success softon:{when + 5}"


async def test_unknown_command_refused(start: Start) -> None:
    _, endpoint = await start("Avalon Q")
    reply = await api(endpoint.host, "frobnicate")
    assert reply["STATUS"][0]["STATUS"] == "E" and reply["STATUS"][0]["Code"] == 14
