"""The web CGI client: digest auth against the emulated Antminer, failures against raw servers."""

from __future__ import annotations

import asyncio

import pytest
from fleetd.drivers.base import Timeouts
from rawserver import fresh_host, raw_server, read_request, replying

from fleetd.sim.fleet import Fleet, Group
from fleetd.transport import http
from fleetd.transport.errors import (
    AuthError,
    CommandRejectedError,
    DeviceTimeoutError,
    InvalidCommandError,
    MalformedReplyError,
    UnreachableError,
)
from fleetd.transport.http import WebClient

FAST = Timeouts(connect_s=0.5, read_s=0.5)


def client(host: str, port: int = 80, password: str = "root") -> WebClient:
    return WebClient(host, port, username="root", password=password, timeouts=FAST)


async def test_digest_auth_against_emulated_antminer() -> None:
    async with Fleet([Group("Antminer S21", count=1, base=fresh_host(), jitter=0.0)]) as miners:
        web = client(miners[0].host, miners[0].ports["web"])
        try:
            conf = await web.get_json("/cgi-bin/get_miner_conf.cgi")
            info = await web.get_json("/cgi-bin/get_system_info.cgi")  # reuses the digest session
        finally:
            await web.close()
    assert "pools" in conf and "bitmain-work-mode" in conf
    assert info["minertype"] == "Antminer S21"


async def test_the_hosts_digest_challenge_is_answered_at_once_and_renewed_when_refused() -> None:
    async with Fleet([Group("Antminer S21", count=1, base=fresh_host(), jitter=0.0)]) as miners:
        host, port = miners[0].host, miners[0].ports["web"]
        key = (host, port, "root")
        for _ in range(2):  # two clients, one request each: the second answers the first's challenge
            web = client(host, port)
            try:
                await web.get_json("/cgi-bin/get_system_info.cgi")
            finally:
                await web.close()
        assert http._CHALLENGES[key].nc == 2  # a 401 would have brought a new challenge (nc 1)
        http._CHALLENGES[key].nonce = "00000000:" + "0" * 32  # one the miner never issued (or forgot)
        web = client(host, port)
        try:
            conf = await web.get_json("/cgi-bin/get_miner_conf.cgi")
        finally:
            await web.close()
    assert (
        "pools" in conf
        and http._CHALLENGES[key].nc == 1
        and not http._CHALLENGES[key].nonce.startswith("0000")
    )


def test_digest_challenges_parsed() -> None:
    c = http.parse_challenge('Digest realm="antMiner Configuration", nonce="abc:1", qop="auth,auth-int", x=y')
    assert c is not None and (c.realm, c.nonce, c.qop, c.algorithm) == (
        "antMiner Configuration",
        "abc:1",
        "auth",
        "MD5",
    )
    assert http.parse_challenge('Basic realm="x"') is None
    assert http.parse_challenge('Digest realm="x", nonce="n", algorithm=SHA-512-256') is None
    assert http.parse_challenge('Digest realm="x", nonce="n", qop="auth-int"') is None
    rfc2069 = http.parse_challenge('Digest realm="r", nonce="n"')
    assert rfc2069 is not None and "qop" not in rfc2069.authorization("u", "p", "GET", "/")


async def test_wrong_password_is_auth_error_naming_host_and_path() -> None:
    async with Fleet([Group("Antminer S19 Pro", count=1, base=fresh_host())]) as miners:
        web = client(miners[0].host, miners[0].ports["web"], password="wrong")
        try:
            with pytest.raises(AuthError) as err:
                await web.get_json("/cgi-bin/get_miner_conf.cgi")
        finally:
            await web.close()
    assert str(err.value) == (
        f"{miners[0].host} (/cgi-bin/get_miner_conf.cgi): authentication failed for user 'root' (HTTP 401)"
    )


async def test_unknown_path_is_invalid_command() -> None:
    async with Fleet([Group("Antminer S19 Pro", count=1, base=fresh_host())]) as miners:
        web = client(miners[0].host, miners[0].ports["web"])
        try:
            with pytest.raises(InvalidCommandError) as err:
                await web.get_json("/kaonsu/v1/brief")
        finally:
            await web.close()
    assert err.value.code == 404 and err.value.command == "/kaonsu/v1/brief"


def http_reply(status: str, body: bytes, extra: bytes = b"") -> bytes:
    return (
        f"HTTP/1.1 {status}\r\nContent-Length: {len(body)}\r\nConnection: close\r\n".encode()
        + extra
        + b"\r\n"
        + body
    )


async def test_plain_json_and_quirks_decoded() -> None:
    body = b'{"STATUS":{"STATUS":"S"},"a":[1,],"b":inf}'
    async with raw_server(replying(http_reply("200 OK", body))) as (host, _):
        web = client(host, 4028)
        try:
            assert await web.get_json("/cgi-bin/stats.cgi") == {
                "STATUS": {"STATUS": "S"},
                "a": [1],
                "b": None,
            }
        finally:
            await web.close()


async def test_server_error_is_rejected_with_code() -> None:
    async with raw_server(replying(http_reply("500 Internal Server Error", b"oops"))) as (host, _):
        web = client(host, 4028)
        try:
            with pytest.raises(CommandRejectedError) as err:
                await web.get_json("/cgi-bin/x.cgi")
        finally:
            await web.close()
    assert err.value.code == 500


async def test_garbage_http_is_malformed() -> None:
    async with raw_server(replying(b"\x00\x01garbage that is not HTTP\r\n\r\n")) as (host, _):
        web = client(host, 4028)
        try:
            with pytest.raises(MalformedReplyError) as err:
                await web.get_json("/cgi-bin/summary.cgi")
        finally:
            await web.close()
    assert err.value.host == host and err.value.command == "/cgi-bin/summary.cgi"


async def test_garbage_body_is_malformed() -> None:
    async with raw_server(replying(http_reply("200 OK", b"<html>not json"))) as (host, _):
        web = client(host, 4028)
        try:
            with pytest.raises(MalformedReplyError):
                await web.get_json("/cgi-bin/summary.cgi")
        finally:
            await web.close()


async def test_silent_server_times_out() -> None:
    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        await asyncio.sleep(5)

    async with raw_server(silent) as (host, _):
        web = client(host, 4028)
        try:
            with pytest.raises(DeviceTimeoutError, match=r"/cgi-bin/set_miner_conf\.cgi"):
                await web.post_json("/cgi-bin/set_miner_conf.cgi", {"miner-mode": "1"}, timeout_s=0.3)
        finally:
            await web.close()


async def test_a_slow_acknowledgement_may_take_the_callers_whole_limit() -> None:
    async def slow(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        await asyncio.sleep(1.0)  # longer than FAST's connect + read (a miner applying its configuration)
        writer.write(http_reply("200 OK", b'{"stats":"success"}'))
        await writer.drain()

    async with raw_server(slow) as (host, _):
        web = client(host, 4028)
        try:
            reply = await web.post_json("/cgi-bin/set_miner_conf.cgi", {"miner-mode": "1"}, timeout_s=5.0)
        finally:
            await web.close()
    assert reply == {"stats": "success"}


async def test_a_body_ended_by_closing_is_read_to_the_end() -> None:
    async def in_parts(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b'HTTP/1.1 200 OK\r\nContent-Type: text/html\r\n\r\n{"a": ')
        await writer.drain()
        await asyncio.sleep(0.1)
        writer.write(b"[1, 2]}")
        await writer.drain()
        writer.close()

    async with raw_server(in_parts) as (host, _):
        web = client(host, 4028)
        try:
            assert await web.get_json("/cgi-bin/summary.cgi") == {"a": [1, 2]}
        finally:
            await web.close()


async def test_refused_is_unreachable() -> None:
    host = fresh_host()
    web = client(host, 4028)
    try:
        with pytest.raises(UnreachableError) as err:
            await web.get_json("/cgi-bin/summary.cgi")
    finally:
        await web.close()
    assert err.value.host == host and "cannot connect to port 4028" in str(err.value)


async def test_oversize_body_is_malformed() -> None:
    async with raw_server(replying(http_reply("200 OK", b" " * 5000))) as (host, _):
        web = WebClient(host, 4028, username="root", password="root", timeouts=FAST, max_bytes=1000)
        try:
            with pytest.raises(MalformedReplyError, match="exceeds 1000 bytes"):
                await web.get_json("/")
        finally:
            await web.close()


def test_repr_hides_password() -> None:
    assert "secret" not in repr(WebClient("h", username="root", password="secret", timeouts=FAST))
