"""The Antminer web CGI over real HTTP: digest auth, the CGI paths, 401/404 bytes."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from tests.conftest import load_fixture, web_port
from tests.sim.helpers import cgi, web_client


async def _raw_http(host: str, port: int, request: bytes) -> bytes:
    reader, writer = await asyncio.open_connection(host, port)
    writer.write(request)
    await writer.drain()
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 3)
    writer.close()
    return head


async def test_unauthenticated_root_is_401_with_antminer_realm(start):
    _, host = await start()
    head = await _raw_http(host, web_port(), b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 401 Unauthorized\r\n")
    # as a real S19j Pro answers (lighttpd): challenge first, then the stock 347-byte error page
    assert head.startswith(
        b'HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Digest realm="antMiner Configuration", '
        b'charset="UTF-8", algorithm=MD5, nonce="'
    )
    assert b'", qop="auth"\r\nContent-Type: text/html\r\nContent-Length: 347\r\n' in head


async def test_unauthenticated_cgi_is_401(start):
    _, host = await start()
    async with httpx.AsyncClient() as client:
        resp = await client.get(f"http://{host}:{web_port()}/cgi-bin/stats.cgi")
    assert resp.status_code == 401


async def test_digest_auth_and_system_info(start):
    fleet, host = await start()
    info = await cgi(host, web_port(), "get_system_info")
    assert info["minertype"] == "Antminer S19 Pro"
    assert info["ipaddress"] == host
    assert info["macaddr"] == fleet.state(host).mac
    assert info["serinum"] == fleet.state(host).serial


async def test_wrong_credentials_are_refused(start):
    _, host = await start()
    async with httpx.AsyncClient(auth=httpx.DigestAuth("root", "nope")) as client:
        resp = await client.get(f"http://{host}:{web_port()}/cgi-bin/stats.cgi")
    assert resp.status_code == 401


@pytest.mark.parametrize("path", ["/kaonsu/v1/brief", "/cgi-bin/nothing.cgi", "/api/v1/summary"])
async def test_unknown_paths_are_404_not_json(start, path):
    _, host = await start()
    async with web_client() as client:
        resp = await client.get(f"http://{host}:{web_port()}{path}")
    assert resp.status_code == 404
    with pytest.raises(ValueError):
        resp.json()


async def test_s21_stats_cgi_has_chain_array_like_capture(start):
    _, host = await start("Antminer S21")
    stats = await cgi(host, web_port(), "stats")
    captured = load_fixture("antminer_s21_web-stats.cgi.json")
    assert list(stats) == list(captured)
    assert list(stats["STATS"][0]) == list(captured["STATS"][0])
    chain = stats["STATS"][0]["chain"]
    assert len(chain) == 3
    assert [list(c) for c in chain] == [list(c) for c in captured["STATS"][0]["chain"]]
    assert sum(c["rate_real"] for c in chain) == pytest.approx(200_000.0, rel=1e-3)
    assert stats["STATS"][0]["rate_unit"] == "GH/s"
    assert stats["INFO"]["type"] == "Antminer S21"


async def test_summary_cgi_and_conf_like_capture(start):
    _, host = await start("Antminer S21")
    summary = await cgi(host, web_port(), "summary")
    captured = load_fixture("antminer_s21_web-summary.cgi.json")
    assert list(summary["SUMMARY"][0]) == list(captured["SUMMARY"][0])
    assert [s["status"] for s in summary["SUMMARY"][0]["status"]] == ["s"] * 4
    conf = await cgi(host, web_port(), "get_miner_conf")
    assert list(conf) == list(load_fixture("antminer_s21_web-get_miner_conf.cgi.json"))
    assert conf["bitmain-work-mode"] == "0"


async def test_other_cgi_paths(start):
    _, host = await start()
    port = web_port()
    assert await cgi(host, port, "get_blink_status") == {"blink": False}
    pools = await cgi(host, port, "pools")
    assert pools["POOLS"][0]["status"] == "Alive"
    assert (await cgi(host, port, "get_network_info"))["ipaddress"] == host


async def test_keep_alive_serves_several_requests(start):
    _, host = await start()
    async with web_client() as client:
        for _ in range(3):
            resp = await client.get(f"http://{host}:{web_port()}/cgi-bin/summary.cgi")
            assert resp.status_code == 200


async def test_expect_100_continue(start):
    _, host = await start()
    reader, writer = await asyncio.open_connection(host, web_port())
    writer.write(
        b"POST /cgi-bin/set_miner_conf.cgi HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n"
        b"Expect: 100-continue\r\n\r\n"
    )
    assert await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 3) == b"HTTP/1.1 100 Continue\r\n\r\n"
    writer.write(b"{}")
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 3)
    writer.close()
    assert head.startswith(b"HTTP/1.1 401 ")


async def test_idle_keep_alive_is_closed_like_lighttpd(start, monkeypatch):
    import fleetd.sim.antminer_web as antminer

    monkeypatch.setattr(antminer, "WEB_KEEP_ALIVE_IDLE_S", 0.3)
    _, host = await start()
    reader, writer = await asyncio.open_connection(host, web_port())
    await asyncio.sleep(0.5)  # idle before the first request: still served
    writer.write(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 3)
    length = int(head.split(b"Content-Length: ")[1].split(b"\r\n")[0])
    await reader.readexactly(length)
    assert await asyncio.wait_for(reader.read(), 2) == b""  # closed after the keep-alive idle time
    writer.close()


async def test_absolute_form_target(start):
    _, host = await start()
    async with web_client() as client:
        resp = await client.get(f"http://{host}:{web_port()}/cgi-bin/get_blink_status.cgi")
        assert resp.status_code == 200
    head = await _raw_http(host, web_port(), f"GET http://{host}/cgi-bin/x.cgi HTTP/1.1\r\n\r\n".encode())
    assert head.startswith(b"HTTP/1.1 401 ")
