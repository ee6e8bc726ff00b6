"""Health wired into a real daemon polling emulated miners: events, API and Prometheus series."""

from __future__ import annotations

import aiohttp
from openapi_schema_validator import OAS31Validator

from fleetd import __version__
from fleetd.api import ApiServer
from fleetd.api.openapi import openapi_document
from fleetd.config import parse_config
from fleetd.daemon.core import Daemon
from fleetd.daemon.events import EventKind
from fleetd.sim.fleet import Fleet, Group
from tests.conftest import loopback_host, web_port
from tests.daemon.conftest import until

BLOCK = 46


def _check(name: str, body: object) -> None:
    doc = openapi_document(__version__)
    OAS31Validator({**doc["components"]["schemas"][name], "components": doc["components"]}).validate(body)


async def test_faulty_miners_give_findings_events_api_and_metrics() -> None:
    port = web_port()
    hosts = [loopback_host(BLOCK) for _ in range(3)]
    groups = [
        Group("Antminer S19 Pro", 1, hosts[0], {"web": port}, ramp_s=0, jitter=0),
        Group("Antminer S19 Pro", 1, hosts[1], {"web": port}, faults={"fan_failed": 1.0}, ramp_s=0, jitter=0),
        Group("Antminer S19 Pro", 1, hosts[2], {"web": port}, faults={"board_down": 1.0}, ramp_s=0, jitter=0),
    ]
    async with Fleet(groups):
        config = parse_config(
            {
                "polling": {"interval_s": 0.3, "jitter_s": 0, "timeout_s": 1.0, "connect_timeout_s": 0.5},
                "miners": [{"host": h, "web_port": port} for h in hosts],
            }
        )
        daemon = Daemon(config, storage=False)
        api = ApiServer.for_daemon(daemon, listen=f"{loopback_host(BLOCK)}:0")
        await api.start()
        await daemon.start()
        try:

            def started() -> set[tuple[str | None, str]]:
                return {
                    (e.miner_id, e.message.split(":")[0])
                    for e in daemon.events
                    if e.kind is EventKind.FINDING_STARTED
                }

            await until(lambda: len(started()) >= 2, within=20, what="two findings started")
            got = started()
            assert (hosts[1], "critical fan_failed (fan 0)") in got
            assert (hosts[2], "critical board_dead (board 2)") in got
            assert not any(mid == hosts[0] for mid, _ in got)  # the healthy one stays quiet
            async with aiohttp.ClientSession(api.url) as s:
                async with s.get(f"/api/miners/{hosts[1]}/health") as r:
                    body = await r.json()
                assert r.status == 200 and body["status"] == "critical"
                assert (
                    body["active"][0]["code"] == "fan_failed"
                )  # critical first; the firmware's own code too
                _check("MinerHealth", body)
                async with s.get(f"/api/miners/{hosts[0]}/health") as r:
                    assert (await r.json())["status"] == "ok"
                async with s.get("/api/miners/192.0.2.9/health") as r:
                    assert r.status == 404
                async with s.get("/api/health", params={"worst": "5"}) as r:
                    fleet = await r.json()
                _check("FleetHealth", fleet)
                assert fleet["miners_with_findings"] == 2 and fleet["by_severity"]["critical"] >= 2
                assert {w["miner"] for w in fleet["worst"]} == {hosts[1], hosts[2]}
                async with s.get("/api/health", params={"worst": "lots"}) as r:
                    assert r.status == 400
                async with s.get("/metrics") as r:
                    text = await r.text()
            assert f'fleetd_health_miner_finding{{miner="{hosts[1]}",code="fan_failed"' in text
            assert 'fleetd_health_findings{code="board_dead",component="board",severity="critical"} 1' in text
            assert 'fleetd_health_miners_with_findings{severity="critical"} 2' in text
        finally:
            await daemon.stop()
            await api.stop()


async def test_a_flapping_miner_is_one_finding_not_an_event_per_poll() -> None:
    """A fan that fails on every other poll for 20 polls: one finding_started, then one finding_cleared
    once it stays fine for [health.findings] clear_after_s."""
    port = web_port()
    hosts = [loopback_host(BLOCK) for _ in range(2)]
    groups = [Group("Antminer S19 Pro", 1, h, {"web": port}, ramp_s=0, jitter=0) for h in hosts]
    fleet = Fleet(groups)
    async with fleet:
        config = parse_config(
            {
                "polling": {"interval_s": 0.2, "jitter_s": 0, "timeout_s": 1.0, "connect_timeout_s": 0.5},
                "miners": [{"host": h, "web_port": port} for h in hosts],
                "health": {"findings": {"min_duration_s": 0.5, "clear_after_s": 2.0}},
            }
        )
        daemon = Daemon(config, storage=False)
        flappy = fleet.state(hosts[1]).faults
        seen: list[bool] = []  # per cycle: whether the poll just done saw the failed fan

        def flap(_stats: object) -> None:
            mon = daemon.health
            if mon is not None and daemon.state.up() == 2:
                seen.append(any(f.code == "fan_failed" for f in mon.miner(hosts[1]).current))
                if len(seen) < 20:
                    flappy.fan_failed = not flappy.fan_failed
                else:
                    flappy.fan_failed = False

        daemon.on_cycle.append(flap)
        await daemon.start()
        try:

            def events(kind: EventKind) -> list[str | None]:
                return [e.miner_id for e in daemon.events if e.kind is kind]

            await until(lambda: len(seen) >= 20, within=60, what="20 cycles of flapping")
            assert 8 <= sum(seen[:20]) <= 12  # the fan really failed on about every other poll
            await until(lambda: bool(events(EventKind.FINDING_CLEARED)), 30, "the finding cleared")
            assert events(EventKind.FINDING_STARTED) == [hosts[1]]
            assert events(EventKind.FINDING_CLEARED) == [hosts[1]]
        finally:
            await daemon.stop()
