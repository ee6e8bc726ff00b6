"""Each fault and quirk, seen over real sockets; fault fractions in fleet plans."""

from __future__ import annotations

import asyncio
import json
import time

import httpx
import pytest

from fleetd.sim.fleet import Group, plan
from tests.conftest import web_port
from tests.sim.helpers import api, api_raw, cgi, web_client


async def test_slow(start):
    _, host = await start(faults={"slow": 1.0}, slow_s=0.4)
    t0 = time.monotonic()
    await api(host, "version")
    assert time.monotonic() - t0 >= 0.4
    t0 = time.monotonic()
    await cgi(host, web_port(), "summary")
    assert time.monotonic() - t0 >= 0.4


async def test_dead_accepts_and_never_answers(start):
    _, host = await start(faults={"dead": 1.0})
    reader, writer = await asyncio.open_connection(host, 4028)
    writer.write(b'{"command":"version"}')
    await writer.drain()
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(reader.read(1), 0.5)
    writer.close()
    async with httpx.AsyncClient(timeout=0.5) as client:
        with pytest.raises(httpx.ReadTimeout):
            await client.get(f"http://{host}:{web_port()}/")


async def test_malformed(start):
    _, host = await start(faults={"malformed": 1.0})
    data = await api_raw(host, b'{"command":"summary"}')
    assert data.endswith(b"\x00")
    with pytest.raises(ValueError):
        json.loads(data[:-1])
    async with web_client() as client:
        resp = await client.get(f"http://{host}:{web_port()}/cgi-bin/stats.cgi")
    assert resp.status_code == 200
    with pytest.raises(ValueError):
        resp.json()


async def test_wrong_password(start):
    _, host = await start(faults={"wrong_password": 1.0})
    async with web_client() as client:
        resp = await client.get(f"http://{host}:{web_port()}/cgi-bin/stats.cgi")
    assert resp.status_code == 401
    assert (await api(host, "version"))["VERSION"][0]["Type"] == "Antminer S19 Pro"  # the API has no auth


async def test_board_down(start):
    _, host = await start(faults={"board_down": 1.0})
    stats = (await api(host, "stats"))["STATS"][1]
    assert (stats["chain_acn3"], stats["chain_rate3"], stats["chain_acs3"]) == (0, "0.00", "")
    assert stats["chain_acn1"] == 114
    assert stats["GHS 5s"] == pytest.approx(110_000.0 * 2 / 3)
    assert stats["total_acn"] == 228
    chain = (await cgi(host, web_port(), "stats"))["STATS"][0]["chain"]
    assert chain[2]["asic_num"] == 0 and chain[2]["rate_real"] == 0.0


async def test_fan_failed(start):
    _, host = await start(faults={"fan_failed": 1.0})
    stats = (await api(host, "stats"))["STATS"][1]
    assert stats["fan1"] == 0 and stats["fan2"] > 0
    summary = await cgi(host, web_port(), "summary")
    fans = next(s for s in summary["SUMMARY"][0]["status"] if s["type"] == "fans")
    assert fans["status"] == "e"


async def test_overheat(start):
    _, host = await start(faults={"overheat": 1.0})
    stats = (await api(host, "stats"))["STATS"][1]
    assert max(int(t) for t in stats["temp_chip1"].split("-")) >= 95
    summary = await cgi(host, web_port(), "summary")
    assert next(s for s in summary["SUMMARY"][0]["status"] if s["type"] == "temp")["status"] == "e"


async def test_ignore_power_commands_acks_and_does_nothing(start):
    fleet, host = await start(faults={"ignore_power_commands": 1.0})
    ack = await cgi(host, web_port(), "set_miner_conf", {"miner-mode": 1, "bitmain-work-mode": "1"})
    assert ack["stats"] == "success"
    assert (await cgi(host, web_port(), "get_miner_conf"))["bitmain-work-mode"] == "1"  # it claims so
    assert (await api(host, "summary"))["SUMMARY"][0]["GHS 5s"] == pytest.approx(110_000.0)
    assert not fleet.state(host).sleeping


@pytest.mark.parametrize(
    ("quirk", "command", "needle"),
    [
        ("brace", "stats", b"}{"),
        ("trailing_comma", "stats", b",}"),
        ("inf", "summary", b'"Device Hardware%":inf'),
        ("pool_stale", "pools", b'"Pool Stale%%":'),
        ("leading_comma", "pools", b'"POOLS":[,{'),
    ],
)
async def test_quirks(start, quirk, command, needle):
    _, host = await start(quirks=frozenset({quirk}))
    data = await api_raw(host, json.dumps({"command": command}).encode())
    assert needle in data and data.endswith(b"\x00")
    joined = await api_raw(host, json.dumps({"command": f"{command}+version"}).encode())
    assert needle in joined


async def test_without_quirks_replies_are_clean_json(start):
    _, host = await start()
    for command in ("stats", "summary", "pools"):
        data = await api_raw(host, json.dumps({"command": command}).encode())
        json.loads(data[:-1])
    assert b'"Pool Stale%":' in await api_raw(host, b'{"command":"pools"}')


async def test_s21_pools_have_the_double_percent_key_as_captured(start):
    _, host = await start("Antminer S21")
    assert "Pool Stale%%" in (await api(host, "pools"))["POOLS"][0]


async def test_no_nul_quirk_leaves_socket_open(start):
    _, host = await start(quirks=frozenset({"no_nul"}))
    reader, writer = await asyncio.open_connection(host, 4028)
    writer.write(b'{"command":"version"}')
    await writer.drain()
    data = b""
    while not data.endswith(b"}"):
        data += await asyncio.wait_for(reader.read(4096), 2)
    assert b"\x00" not in data
    json.loads(data)
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(reader.read(1), 0.3)  # no EOF: the firmware keeps the socket open
    writer.close()


def test_fault_fractions_pick_exact_counts_deterministically():
    groups = [Group("Antminer S19 Pro", 10, "127.11.250.1", faults={"dead": 0.3, "slow": 0.5}, slow_s=2.0)]
    plans = plan(groups)
    assert sum(p.faults.dead for p in plans) == 3
    assert sum(p.faults.slow_s == 2.0 for p in plans) == 5
    assert [p.faults for p in plan(groups)] == [p.faults for p in plans]


@pytest.mark.parametrize(
    ("faults", "message"),
    [({"melted": 0.1}, "unknown fault 'melted'"), ({"dead": 1.5}, "within 0..1")],
)
def test_bad_faults_are_refused(faults, message):
    with pytest.raises(ValueError, match=message):
        plan([Group("Antminer S19 Pro", 2, "127.11.250.1", faults=faults)])


async def test_slow_reply_survives_a_half_closed_request(start):
    _, host = await start(faults={"slow": 1.0}, slow_s=0.3)
    reader, writer = await asyncio.open_connection(host, 4028)
    writer.write(b'{"command":"version"}')
    writer.write_eof()  # like `echo ... | nc -q1 host 4028`
    data = await asyncio.wait_for(reader.read(), 3)
    writer.close()
    assert data.endswith(b"}\x00")
