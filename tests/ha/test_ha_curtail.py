"""Curtailment controls survive the loss of the active: two real `fleetd run` on the real PostgreSQL.

The operator pins a miner and starts a demand-response event through the active's API; the active is
killed with SIGKILL; the standby takes over, loads the pin and the event from the database and honours
them without a single power command (everything is already as they want it). A standby's API refuses
curtailment reads and writes with 503 naming the active. On SQLite, a daemon killed and started again keeps
them the same way.
"""

from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp
import psycopg
import pytest

from fleetd.config import HaConfig
from fleetd.sim.fleet import Fleet, Group
from tests.conftest import loopback_host, web_port

from .conftest import CONNINFO, terminate_lock_sessions
from .test_ha_pair import API_PORT, Instance, _polled, _role

BLOCK = 93
HEARTBEAT_S, TAKEOVER_S = 0.5, 3.0
TOKEN = "ha-curtail-token-0123456789"
MODEL = "Antminer S19 Pro"  # about 3.25 kW each


def _config(tmp_path: Path, hosts: list[str], storage: str) -> Path:
    (tmp_path / "token").write_text(TOKEN + "\n")
    port = web_port()
    miners = "".join(f'[[miners]]\nhost = "{h}"\nweb_port = {port}\n\n' for h in hosts)
    cfg = tmp_path / "fleetd.toml"
    cfg.write_text(
        f"{storage}\n\n"
        f'[api]\ntoken = {{ file = "{tmp_path / "token"}" }}\n\n'
        "[polling]\ninterval_s = 0.5\njitter_s = 0\ntimeout_s = 2\nconnect_timeout_s = 0.5\n\n"
        f"{miners}"
        '[economics]\n[[economics.hashprice]]\nkind = "static"\nper_ph_day = 60.0\n'
        '[economics.tariff]\nkind = "flat"\nprice_per_kwh = 0.03\n\n'
        "[curtailment]\nenforce = true\ninterval_s = 1.0\n"
        "[curtailment.ramp]\nmax_miners = 4\nstep_s = 0.2\n"
        "[curtailment.dwell]\nmin_on_s = 0.0\nmin_off_s = 0.0\n"
        "[curtailment.retry]\nattempts = 2\nbackoff_s = 0.3\nverify_timeout_s = 5.0\n"
    )
    return cfg


class Api:
    """The curtailment API of one instance."""

    def __init__(self, inst: Instance) -> None:
        self.base = f"http://{inst.api}:{API_PORT}"
        self.auth = {"Authorization": f"Bearer {TOKEN}"}

    async def call(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        async with (
            aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as s,
            s.request(method, self.base + path, json=body, headers=self.auth) as r,
        ):
            return r.status, await r.json()

    async def status(self) -> dict[str, Any]:
        code, body = await self.call("GET", "/api/curtailment")
        assert code == 200, body
        return body


def _by_id(body: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {m["id"]: m for m in body["miners"]}


async def _until(cond: Any, within: float, what: str, inst: Instance) -> Any:
    deadline = time.monotonic() + within
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = await cond()
        except (aiohttp.ClientError, TimeoutError, AssertionError) as exc:
            last = exc
        else:
            if last:
                return last
        await asyncio.sleep(0.1)
    last = getattr(cond, "seen", None) or last
    raise AssertionError(f"{inst.name}: no {what} within {within} s; last: {last}\n{inst.log()}")


def _honoured(api: Api, hosts: list[str], pin_id: str, event_id: str) -> Any:
    """The first miner pinned to run and running, two others asleep for the DR event, verified."""
    seen: list[Any] = []

    async def check() -> dict[str, Any] | None:
        body = await api.status()
        seen[:] = [body]
        ms = _by_id(body)
        if [p["id"] for p in body["pins"]] != [pin_id] or [e["id"] for e in body["dr_events"]] != [event_id]:
            return None
        if len(ms) != len(hosts) or any(m["in_flight"] for m in ms.values()):
            return None
        pinned = ms[hosts[0]]
        if pinned["target"] != "run" or pinned["actual"] != "running" or pinned["reason"]["rule"] != "pin":
            return None
        asleep = sorted(h for h, m in ms.items() if m["actual"] == "sleeping" and m["target"] == "sleep")
        return body if len(asleep) == 2 and hosts[0] not in asleep else None

    check.seen = seen  # type: ignore[attr-defined]  # the last status, for the failure message
    return check


async def _pin_and_event(api: Api, hosts: list[str]) -> tuple[str, str]:
    code, pin = await api.call("POST", "/api/curtailment/pins", {"action": "run", "miners": [hosts[0]]})
    assert code == 201, pin
    # four miners of about 3.25 kW: at most 7 kW means two asleep; the pinned one may not be one of them
    code, ev = await api.call("POST", "/api/curtailment/dr", {"target_kw": 7.0, "duration_s": 3600})
    assert code == 201, ev
    return pin["id"], ev["id"]


def _asleep(body: dict[str, Any]) -> list[str]:
    return sorted(h for h, m in _by_id(body).items() if m["actual"] == "sleeping")


@pytest.mark.postgres
async def test_kill_9_the_active_and_the_standby_honours_its_pin_and_dr_event(
    pg_url: str, lock_name: str, tmp_path: Path
) -> None:
    hosts = [loopback_host(BLOCK) for _ in range(4)]
    storage = (
        f'[storage]\nurl = "{pg_url}"\n\n[ha]\nenabled = true\nlock_name = "{lock_name}"\n'
        f"heartbeat_s = {HEARTBEAT_S}\ntakeover_s = {TAKEOVER_S}"
    )
    cfg = _config(tmp_path, hosts, storage)
    groups = [Group(MODEL, 1, h, {"web": web_port()}, ramp_s=0, jitter=0) for h in hosts]
    a = Instance("A", cfg, tmp_path / "a", loopback_host(BLOCK))
    b = Instance("B", cfg, tmp_path / "b", loopback_host(BLOCK))
    fleet = Fleet(groups)
    async with fleet:
        try:
            await a.start()
            await a.until(_polled(4), 30, "active role with 4 miners up")
            await b.start()
            await b.until(_role("standby"), 30, "standby role")
            api_a, api_b = Api(a), Api(b)

            pin_id, event_id = await _pin_and_event(api_a, hosts)
            before = await _until(_honoured(api_a, hosts, pin_id, event_id), 30, "pin and DR", a)
            since = await _until(lambda: _rule_since(pg_url, "demand_response"), 10, "fleet memory stored", a)
            asleep = _asleep(before)
            assert all(fleet.state(h).sleeping == (h in asleep) for h in hosts)

            # the standby refuses, naming the active (its lock session), reads and writes alike
            for method, path, body in (
                ("GET", "/api/curtailment", None),
                ("POST", "/api/curtailment/pins", {"action": "sleep", "miners": [hosts[0]]}),
                ("DELETE", f"/api/curtailment/dr/{event_id}", None),
            ):
                code, err = await api_b.call(method, path, body)
                assert code == 503, (method, path, err)
                assert "standby" in err["error"] and f"api {a.api}:{API_PORT}" in err["error"], err

            cli = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "fleetd", "curtail", "status", "--api", api_b.base,
                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
            )  # fmt: skip
            out, err = await cli.communicate()
            assert cli.returncode == 1 and not out, (out, err)
            assert b"HA standby" in err and b"[HTTP 503]" in err, err
            assert f"{a.api}:{API_PORT}".encode() in err, err

            await asyncio.sleep(1.5)  # a few more passes of A's, then it dies at once
            sent = {h: fleet.state(h).power_commands for h in hosts}
            assert a.proc is not None
            a.proc.kill()
            await b.until(_role("active"), TAKEOVER_S + 5, "takeover after A was killed")
            after = await _until(_honoured(api_b, hosts, pin_id, event_id), 30, "pin and DR on B", b)
            assert _asleep(after) == asleep
            await asyncio.sleep(3.0)  # several of B's decisions
            after = await api_b.status()
            assert _asleep(after) == asleep and after["enforce"] is True
            assert await _rule_since(pg_url, "demand_response") == since  # B carried A's fleet memory on
            assert {h: fleet.state(h).power_commands for h in hosts} == sent  # B sent nothing
            assert all(fleet.state(h).sleeping == (h in asleep) for h in hosts)

            # B now takes control writes, into the same database
            code, _ = await api_b.call("DELETE", f"/api/curtailment/dr/{event_id}")
            assert code == 200
            await _until(lambda: _woken(api_b), 30, "the miners woken after the DR event was stopped on B", b)
            code, pin2 = await api_b.call(
                "POST", "/api/curtailment/pins", {"action": "sleep", "miners": [hosts[1]]}
            )
            assert code == 201, pin2
            await _until(lambda: _asleep_only(api_b, [hosts[1]]), 30, "the second pin honoured", b)

            # A comes back as the standby; B loses its lock session and steps down; A takes over again
            await a.start()
            await a.until(_role("standby"), 30, "A as the standby")
            await _until(lambda: _refuses_naming(api_a, b), 10, "A's API naming B", a)
            sent = {h: fleet.state(h).power_commands for h in hosts}
            assert terminate_lock_sessions(HaConfig(lock_name=lock_name).key()) == 1
            await a.until(_role("active"), TAKEOVER_S + 5, "A's takeover after B lost its session")
            await b.until(_role("standby"), 10, "B's step-down")
            body = await _until(lambda: _asleep_only(api_a, [hosts[1]]), 30, "both pins on A", a)
            assert (
                sorted(p["id"] for p in body["pins"]) == sorted([pin_id, pin2["id"]])
                and not body["dr_events"]
            )
            await asyncio.sleep(2.0)
            assert {h: fleet.state(h).power_commands for h in hosts} == sent  # A sent nothing either
            text = await b.metrics()  # no stale curtailment series on the standby
            assert "fleetd_curtail_miner_target{" not in text and "fleetd_curtail_shed_kw" not in text
            assert await _refuses_naming(api_b, a)
            assert await a.stop() == 0, a.log()
            assert await b.stop() == 0, b.log()
        finally:
            for inst in (a, b):
                if inst.proc is not None and inst.proc.returncode is None:
                    inst.proc.kill()
                    await inst.proc.wait()
    for inst in (a, b):
        assert not [line for line in inst.lines if "Traceback" in line], inst.log()


async def _asleep_only(api: Api, hosts: list[str]) -> dict[str, Any] | None:
    """The status once exactly `hosts` are asleep, every other miner running, nothing in flight."""
    body = await api.status()
    ms = body["miners"]
    if any(m["in_flight"] for m in ms) or any(m["actual"] not in ("running", "sleeping") for m in ms):
        return None
    return body if sorted(m["id"] for m in ms if m["actual"] == "sleeping") == sorted(hosts) else None


async def _refuses_naming(api: Api, active: Instance) -> bool:
    code, err = await api.call("GET", "/api/curtailment/pins")
    return code == 503 and f"api {active.api}:{API_PORT}" in err["error"]


async def _rule_since(url: str, rule: str) -> float | None:
    """Since when the pair's stored fleet memory has `rule` in force."""
    schema = url.split("search_path%3D")[1]
    with psycopg.connect(CONNINFO, autocommit=True) as conn:
        row = conn.execute(
            f'SELECT extract(epoch FROM since) FROM "{schema}".curtail_fleet WHERE rule = %s', (rule,)
        ).fetchone()
    return float(row[0]) if row else None


async def _woken(api: Api) -> bool:
    body = await api.status()
    return not body["dr_events"] and all(m["actual"] == "running" for m in body["miners"])


async def test_kill_9_on_sqlite_and_the_restarted_daemon_keeps_the_pin_and_dr_event(tmp_path: Path) -> None:
    hosts = [loopback_host(BLOCK) for _ in range(4)]
    cfg = _config(tmp_path, hosts, "")
    groups = [Group(MODEL, 1, h, {"web": web_port()}, ramp_s=0, jitter=0) for h in hosts]
    addr = loopback_host(BLOCK)
    fleet = Fleet(groups)
    async with fleet:
        first = Instance("first", cfg, tmp_path / "state", addr)
        again = Instance("again", cfg, tmp_path / "state", addr)
        try:
            await first.start()
            await first.until(lambda body: body.get("up") == 4, 30, "4 miners up")
            api = Api(first)
            pin_id, event_id = await _pin_and_event(api, hosts)
            before = await _until(_honoured(api, hosts, pin_id, event_id), 30, "pin and DR", first)
            asleep = _asleep(before)
            assert first.proc is not None
            first.proc.kill()
            await first.proc.wait()
            sent = {h: fleet.state(h).power_commands for h in hosts}
            (tmp_path / "state" / "curtail_controls.json").unlink()  # the database alone keeps them
            await again.start()
            api = Api(again)
            after = await _until(_honoured(api, hosts, pin_id, event_id), 30, "pin and DR", again)
            assert _asleep(after) == asleep
            await asyncio.sleep(2.0)
            assert _asleep(await api.status()) == asleep
            assert {h: fleet.state(h).power_commands for h in hosts} == sent  # nothing sent after the restart
            assert await again.stop() == 0, again.log()
        finally:
            for inst in (first, again):
                if inst.proc is not None and inst.proc.returncode is None:
                    inst.proc.kill()
                    await inst.proc.wait()
