"""Slow-degradation faults in the emulator, time-compressed: the daemon's trend job flags the degrading
miners, and only them, in the API and in Prometheus."""

from __future__ import annotations

from pathlib import Path

import aiohttp
from openapi_schema_validator import OAS31Validator

from fleetd import __version__
from fleetd.api import ApiServer
from fleetd.api.openapi import openapi_document
from fleetd.config import parse_config
from fleetd.daemon.core import Daemon
from fleetd.daemon.events import EventKind
from fleetd.health.history import HealthSampler
from fleetd.sim.fleet import Fleet, Group
from tests.conftest import loopback_host, web_port
from tests.daemon.conftest import until

BLOCK = 60
SCALE = 3600.0  # one real second is one emulated hour
BUCKETS = 10  # emulated hours to collect (the detector needs 6)


def _check(name: str, body: object) -> None:
    doc = openapi_document(__version__)
    OAS31Validator({**doc["components"]["schemas"][name], "components": doc["components"]}).validate(body)


def _group(host: str, port: int, fault: str | None = None) -> Group:
    faults = {fault: 1.0} if fault else {}
    return Group("Antminer S19 Pro", 1, host, {"web": port}, faults, ramp_s=0, jitter=0, time_scale=SCALE)


async def test_degrading_board_and_fan_are_flagged_and_healthy_miners_are_not() -> None:
    port = web_port()
    hosts = [loopback_host(BLOCK) for _ in range(5)]
    healthy, board, fan = hosts[:3], hosts[3], hosts[4]
    groups = [_group(h, port) for h in healthy]
    groups += [_group(board, port, "board_degrading"), _group(fan, port, "fan_degrading")]
    async with Fleet(groups):
        config = parse_config(
            {
                "polling": {"interval_s": 0.25, "jitter_s": 0, "timeout_s": 2.0, "connect_timeout_s": 1.0},
                "miners": [{"host": h, "web_port": port} for h in hosts],
            }
        )
        daemon = Daemon(config, storage=False)
        daemon.health_sampler = HealthSampler(bucket_s=1.0)  # a bucket per emulated hour
        api = ApiServer.for_daemon(daemon, listen=f"{loopback_host(BLOCK)}:0")
        await api.start()
        await daemon.start()
        try:

            def buckets() -> int:
                daemon._write_health_hours()
                seen: dict[str, set[float]] = {h: set() for h in hosts}
                for row in getattr(daemon, "health_memory", ()):
                    if row.sums[1]:  # with a chip temperature: polled while mining
                        seen[row.miner_id].add(row.hour_start)
                return min(len(s) for s in seen.values())

            await until(lambda: buckets() >= BUCKETS, within=120, what=f"{BUCKETS} buckets per miner")
            # The buckets are real seconds; the detector reads hours: stretch them back to emulated time.
            rows = [h.to_row() for h in daemon.health_memory]
            t0 = min(r["hour_start"] for r in rows)
            for r in rows:
                r["hour_start"] = t0 + (r["hour_start"] - t0) * SCALE
            now = max(r["hour_start"] for r in rows)
            found = await daemon.run_trends(now=now, rows=rows)

            assert set(found) == {board, fan}, {m: [w.code for w in ws] for m, ws in found.items()}
            (lag,) = found[board]
            assert lag.code == "board_lagging" and lag.subject == "board 2"
            assert lag.slope_per_day < -0.3  # 2 % of the board's hashrate an hour
            assert lag.fleet_median is not None and lag.vs_median is not None and lag.vs_median < 0
            assert lag.time_to_limit_h is not None  # heading for the 70 % where diagnosis calls it degraded
            codes = {w.code: w for w in found[fan]}
            assert set(codes) == {"fan_rpm_rising", "chip_temp_rising"}
            assert codes["fan_rpm_rising"].limit == 6600  # the catalog's S19 Pro fan_max_rpm
            assert codes["chip_temp_rising"].slope_per_day > 5  # 0.4 C per emulated hour
            assert codes["chip_temp_rising"].time_to_limit_h is not None
            kinds = (EventKind.TREND_STARTED, EventKind.TREND_CLEARED)
            assert not [e for e in daemon.events if e.kind in kinds]  # one run is not enough to start
            await daemon.run_trends(now=now + 3600, rows=rows)  # the next hourly run sees them again
            trend_events = [e for e in daemon.events if e.kind in kinds]
            started = {(e.miner_id, e.message.split()[2].rstrip(":")) for e in trend_events}
            assert started == {(board, "board_lagging"), (fan, "fan_rpm_rising"), (fan, "chip_temp_rising")}
            assert len(trend_events) == 3 and all(e.kind is EventKind.TREND_STARTED for e in trend_events)

            async with aiohttp.ClientSession(api.url) as s:
                async with s.get(f"/api/miners/{board}/health") as r:
                    body = await r.json()
                assert [w["code"] for w in body["warnings"]] == ["board_lagging"]
                active = [(w["code"], w["since"]) for w in body["active_warnings"]]
                assert active == [("board_lagging", now + 3600)]
                _check("MinerHealth", body)
                async with s.get(f"/api/miners/{healthy[0]}/health") as r:
                    assert (await r.json())["warnings"] == []
                async with s.get("/api/health") as r:
                    summary = await r.json()
                _check("FleetHealth", summary)
                fleet = summary["warnings"]
                assert fleet["miners"] == 2 and fleet["computed_at"] == now + 3600
                assert {w["miner"] for w in fleet["most_urgent"]} == {board, fan}
                async with s.get("/metrics") as r:
                    text = await r.text()
                async with s.get("/api/events", params={"kind": "trend_started"}) as r:
                    listed = (await r.json())["events"]
                assert {e["miner_id"] for e in listed} == {board, fan} and len(listed) == 3
                assert all("vs the same-model median" in e["message"] for e in listed)
            for hour in (2, 3, 4):  # the trends are gone (no history): cleared after three runs
                await daemon.run_trends(now=now + hour * 3600, rows=[])
            cleared = [e for e in daemon.events if e.kind is EventKind.TREND_CLEARED]
            assert len(cleared) == 3 and {e.miner_id for e in cleared} == {board, fan}
            line = f'fleetd_health_miner_warning{{miner="{board}",code="board_lagging",subject="board 2"'
            assert line in text
            assert 'fleetd_health_warnings{code="fan_rpm_rising",component="fan"' in text
            lines = [ln for ln in text.splitlines() if ln.startswith("fleetd_health_miner_warning")]
            assert lines and not any(f'miner="{h}"' in ln for ln in lines for h in healthy)
        finally:
            await daemon.stop()
            await api.stop()


async def test_health_history_is_stored_and_read_back_by_the_trend_job(tmp_path: Path) -> None:
    port = web_port()
    hosts = [loopback_host(BLOCK) for _ in range(2)]
    async with Fleet([_group(h, port) for h in hosts]):
        config = parse_config(
            {
                "polling": {"interval_s": 0.2, "jitter_s": 0, "timeout_s": 2.0, "connect_timeout_s": 1.0},
                "miners": [{"host": h, "web_port": port} for h in hosts],
            }
        )
        daemon = Daemon(config, state_dir=tmp_path)
        await daemon.start()
        try:
            await until(lambda: daemon.state.up() == 2, within=20, what="2 miners up")
            await until(lambda: daemon.state.last_cycle is not None, within=20, what="a cycle")
            found = await daemon.run_trends()  # flushes the sampler and reads the database
            assert found == {} and daemon.health is not None and daemon.health.trends_at is not None
            assert daemon.storage is not None
            rows = daemon.storage.health_hours()
            assert {r["miner_id"] for r in rows} == set(hosts) and all(r["samples"] > 0 for r in rows)
            assert all(r["chip_temp_n"] > 0 and r["fan_n"] > 0 for r in rows)
        finally:
            await daemon.stop()
