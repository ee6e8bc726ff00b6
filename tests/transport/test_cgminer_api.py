"""The CGMiner API client against raw loopback servers: framing, joins, fallback, STATUS errors."""

from __future__ import annotations

import asyncio
import json

import pytest
from fleetd.drivers.base import Timeouts
from rawserver import raw_server, read_request

from fleetd.transport.cgminer import (
    CGMinerAPI,
    check_status,
    json_value_complete,
    parse_text_reply,
    split_joined,
)
from fleetd.transport.errors import (
    AccessDeniedError,
    CommandRejectedError,
    InvalidCommandError,
    MalformedReplyError,
)

FAST = Timeouts(connect_s=0.5, read_s=0.5)


def status(flag: str, code: int, msg: str) -> dict[str, object]:
    return {"STATUS": [{"STATUS": flag, "When": 1, "Code": code, "Msg": msg, "Description": "cgminer 1.0.0"}]}


SUMMARY = {**status("S", 11, "Summary"), "SUMMARY": [{"GHS 5s": 1.0}], "id": 1}
POOLS = {**status("S", 7, "1 Pool(s)"), "POOLS": [{"POOL": 0}], "id": 1}
INVALID = {**status("E", 14, "Invalid command"), "id": 1}


def miner(replies: dict[str, object], *, joins: bool = True, log: list[bytes] | None = None):
    """A fake cgminer: answers JSON requests from `replies` (by command), NUL-terminated."""

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        req = await read_request(reader, log)
        cmd = json.loads(req)["command"]
        if "+" in cmd:
            if not joins:
                body: object = INVALID
            else:
                body = {c: [replies[c]] for c in cmd.split("+")} | {"id": 1}
        else:
            body = replies.get(cmd, INVALID)
        writer.write(json.dumps(body).encode() + b"\0")
        await writer.drain()

    return handler


async def test_single_command_json_request() -> None:
    log: list[bytes] = []
    async with raw_server(miner({"summary": SUMMARY}, log=log)) as (host, _):
        api = CGMinerAPI(host, timeouts=FAST)
        reply = await api.command("summary")
    assert reply["SUMMARY"] == [{"GHS 5s": 1.0}]
    assert log == [b'{"command":"summary"}']


async def test_parameter_sent() -> None:
    api = CGMinerAPI("h", timeouts=FAST)
    assert api.encode("ascset", "0,softoff") == b'{"command":"ascset","parameter":"0,softoff"}'
    text = CGMinerAPI("h", timeouts=FAST, text=True)
    assert text.encode("pools") == b"pools"
    assert text.encode("ascset", "0,softoff") == b"ascset|0,softoff"


async def test_joined_command_in_one_connection() -> None:
    log: list[bytes] = []
    async with raw_server(miner({"summary": SUMMARY, "pools": POOLS}, log=log)) as (host, _):
        out = await CGMinerAPI(host, timeouts=FAST).commands("summary", "pools")
    assert out == {"summary": SUMMARY, "pools": POOLS}
    assert log == [b'{"command":"summary+pools"}']


async def test_refused_join_falls_back_and_is_remembered() -> None:
    log: list[bytes] = []
    async with raw_server(miner({"summary": SUMMARY, "pools": POOLS}, joins=False, log=log)) as (host, _):
        api = CGMinerAPI(host, timeouts=FAST)
        assert await api.commands("summary", "pools") == {"summary": SUMMARY, "pools": POOLS}
        assert not api.joins
        # A new client for the same host remembers: no joined attempt this time.
        again = CGMinerAPI(host, timeouts=FAST)
        assert await again.commands("summary", "pools") == {"summary": SUMMARY, "pools": POOLS}
    assert log == [
        b'{"command":"summary+pools"}',
        b'{"command":"summary"}',
        b'{"command":"pools"}',
        b'{"command":"summary"}',
        b'{"command":"pools"}',
    ]


async def test_optional_command_may_fail_in_join_and_alone() -> None:
    async with raw_server(miner({"summary": SUMMARY, "estats": INVALID})) as (host, _):
        out = await CGMinerAPI(host, timeouts=FAST).commands("summary", "estats", optional=["estats"])
    assert out == {"summary": SUMMARY}
    async with raw_server(miner({"summary": SUMMARY}, joins=False)) as (host, _):
        out = await CGMinerAPI(host, timeouts=FAST).commands("summary", "estats", optional=["estats"])
    assert out == {"summary": SUMMARY}


async def test_failed_sub_command_raises_typed_error() -> None:
    async with raw_server(miner({"summary": SUMMARY, "estats": INVALID})) as (host, _):
        with pytest.raises(InvalidCommandError) as err:
            await CGMinerAPI(host, timeouts=FAST).commands("summary", "estats")
    assert err.value.command == "estats" and err.value.host == host and err.value.code == 14


async def test_text_form_request_and_reply() -> None:
    log: list[bytes] = []

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader, log)
        writer.write(
            b"STATUS=S,When=1,Code=7,Msg=2 Pool(s),Description=cgminer 4.9|"
            b"POOL=0,URL=stratum+tcp://a:3333,Status=Alive,Accepted=5|POOL=1,URL=x\\,y,Status=Dead|\0"
        )

    async with raw_server(handler) as (host, _):
        reply = await CGMinerAPI(host, timeouts=FAST, text=True).command("pools")
    assert log == [b"pools"]
    assert reply["STATUS"][0]["Code"] == 7
    assert reply["POOLS"] == [
        {"POOL": 0, "URL": "stratum+tcp://a:3333", "Status": "Alive", "Accepted": 5},
        {"POOL": 1, "URL": "x,y", "Status": "Dead"},
    ]


async def test_socket_kept_open_without_nul_detected_complete() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        body = json.dumps(SUMMARY).encode()
        writer.write(body[:10])
        await writer.drain()
        await asyncio.sleep(0.02)
        writer.write(body[10:])
        await reader.read()

    async with raw_server(handler) as (host, _):
        assert await CGMinerAPI(host, timeouts=FAST).command("summary") == SUMMARY


async def test_quirky_reply_decoded() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b'{"STATUS":[{"STATUS":"S","Code":70}],"STATS":[{"a":1}{"b":inf,}],"id":1}\0')

    async with raw_server(handler) as (host, _):
        reply = await CGMinerAPI(host, timeouts=FAST).command("stats")
    assert reply["STATS"] == [{"a": 1}, {"b": None}]


async def test_garbage_reply_is_malformed() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"\x16\x03\x01garbage\0")

    async with raw_server(handler) as (host, _):
        with pytest.raises(MalformedReplyError, match="summary"):
            await CGMinerAPI(host, timeouts=FAST).command("summary")


def test_status_invalid_command() -> None:
    with pytest.raises(InvalidCommandError) as err:
        check_status(INVALID, host="h", command="foo")
    assert str(err.value) == "h (foo): Invalid command (STATUS E, code 14)"


def test_status_access_denied() -> None:
    with pytest.raises(AccessDeniedError) as err:
        check_status(status("E", 45, "Access denied to 'restart' command"), host="h", command="restart")
    assert err.value.code == 45


def test_status_privilege_message() -> None:
    with pytest.raises(AccessDeniedError):
        check_status(status("E", 0, "Privileged command: write access required"), command="x")


def test_status_other_error_and_fatal() -> None:
    with pytest.raises(CommandRejectedError) as err:
        check_status(status("E", 23, "Missing pool id"), command="x")
    assert type(err.value) is CommandRejectedError and err.value.code == 23
    with pytest.raises(CommandRejectedError):
        check_status(status("F", 99, "Fatal"), command="x")


def test_status_whatsminer_style_top_level() -> None:
    with pytest.raises(InvalidCommandError):
        check_status({"STATUS": "E", "When": 1, "Code": 14, "Msg": "invalid cmd", "Description": ""})
    assert check_status({"STATUS": "S", "Msg": "ok"})


def test_status_success_and_info_pass() -> None:
    for flag in ("S", "I", "W"):
        assert check_status(status(flag, 1, "ok"))


def test_status_non_object_is_malformed() -> None:
    with pytest.raises(MalformedReplyError):
        check_status([1, 2], command="x")


def test_split_joined_refusal_and_shape() -> None:
    assert split_joined(INVALID, ["summary"]) is None
    assert split_joined({"summary": [SUMMARY], "id": 1}, ["summary"]) == {"summary": SUMMARY}
    with pytest.raises(MalformedReplyError):
        split_joined({"summary": [SUMMARY, SUMMARY]}, ["summary"])


def test_json_value_complete() -> None:
    assert json_value_complete(b'{"a":[1,{"b":"}"}]}')
    assert not json_value_complete(b'{"a":[1,{"b":"}"}]')
    assert not json_value_complete(b'{"a":"}')
    assert json_value_complete(b'  {"a":1}\n')
    assert not json_value_complete(b"")


def test_text_reply_single_section() -> None:
    reply = parse_text_reply(
        "STATUS=S,When=1,Code=11,Msg=Summary,Description=x|SUMMARY,Elapsed=5,GHS 5s=1.5|"
    )
    assert reply == {
        "STATUS": [{"STATUS": "S", "When": 1, "Code": 11, "Msg": "Summary", "Description": "x"}],
        "SUMMARY": [{"Elapsed": 5, "GHS 5s": 1.5}],
    }


async def test_text_form_against_emulated_antminer() -> None:
    from rawserver import fresh_host

    from fleetd.sim.fleet import Fleet, Group

    async with Fleet([Group("Antminer S19 Pro", count=1, base=fresh_host(), jitter=0.0)]) as miners:
        text = CGMinerAPI(miners[0].host, miners[0].ports["api"], timeouts=FAST, text=True)
        as_json = CGMinerAPI(miners[0].host, miners[0].ports["api"], timeouts=FAST)
        pools_text = await text.command("pools")
        pools_json = await as_json.command("pools")
        with pytest.raises(InvalidCommandError):
            await text.command("nosuchcommand")
    assert pools_text["STATUS"][0]["STATUS"] == "S"
    assert [p["URL"] for p in pools_text["POOLS"]] == [p["URL"] for p in pools_json["POOLS"]]
