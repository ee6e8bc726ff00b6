"""A daemon polling an emulated miner that replies with impossible numbers (1e100 TH/s and W, 10**30 rpm
and uptime) beside good ones: the good miners' API rows, metrics, MQTT messages and stored rows are all
intact, fleet totals exclude the bad figures, nothing is dropped, and the shutdown is not held up."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import re
import subprocess
import uuid
from pathlib import Path

import aiohttp
import pytest

from fleetd.api import ApiServer
from fleetd.config import parse_config
from fleetd.daemon.core import Daemon
from fleetd.sim.fleet import Fleet, Group
from tests.conftest import loopback_host, require_binary, web_port
from tests.exporters.helpers import ECONOMICS
from tests.exporters.test_mqtt import Listener, prefix  # noqa: F401  (the fixture)

from .conftest import until

BLOCK = 13
GOOD = 3


def _config(hosts: list[str], state_prefix: str) -> object:
    return parse_config(
        {
            "polling": {"interval_s": 0.5, "jitter_s": 0.0, "timeout_s": 2.0, "connect_timeout_s": 0.5},
            "miners": [{"host": h, "web_port": web_port(), "site": "hall-a"} for h in hosts],
            "economics": ECONOMICS,
            "storage": {"latest_state_every_s": 0},
            "mqtt": {"topic_prefix": state_prefix, "client_id": f"fleetd-{uuid.uuid4().hex[:8]}", "qos": 1},
            "curtailment": {
                "enforce": False,
                "interval_s": 1.0,
                "rules": [{"kind": "economic", "name": "unprofitable"}],
            },
        }
    )


async def _get(session: aiohttp.ClientSession, path: str) -> dict:
    async with session.get(path) as resp:
        assert resp.status == 200, (path, await resp.text())
        return await resp.json()


@pytest.mark.mqtt
async def test_a_miner_with_impossible_numbers_changes_nothing_for_the_others(
    tmp_path: Path,
    prefix: str,  # noqa: F811
) -> None:
    hosts = [loopback_host(BLOCK) for _ in range(GOOD + 1)]
    groups = [Group("Antminer S19 Pro", 1, h, {"web": web_port()}, ramp_s=0, jitter=0) for h in hosts]
    fleet = Fleet(groups)
    listener = Listener(prefix)
    async with fleet:
        bad = hosts[-1]
        good = hosts[:-1]
        st = fleet.state(bad)
        st.spec = dataclasses.replace(st.spec, hashrate_ths=1e100, power_w=1e100, fan_rpm=10**30)
        st.started_at = -1e30  # uptime 10**30 s
        d = Daemon(_config(hosts, prefix), state_dir=tmp_path)  # type: ignore[arg-type]
        await d.start()
        server = ApiServer.for_daemon(d, listen="127.0.0.1:0")
        await server.start()
        try:
            assert d.economics is not None
            await d.economics.refresh_all()
            await until(lambda: d.state.up() == len(hosts), what="all miners up")
            first = d.state.last_cycle
            await until(
                lambda: d.state.last_cycle is not first and d.curtail_status is not None, what="a cycle"
            )
            good_ths = sum(d.state.miners[h].snapshot.hashrate_ths for h in good)  # type: ignore[union-attr]
            assert 300 < good_ths < 400

            async with aiohttp.ClientSession(server.url) as session:
                rows = {m["id"]: m for m in (await _get(session, "/api/miners"))["miners"]}
                assert set(rows) == set(hosts)
                for h in good:
                    assert 100 < rows[h]["hashrate_ths"] < 130 and rows[h]["power_est_w"] > 1000
                assert rows[bad]["hashrate_ths"] is None and rows[bad]["uptime_s"] is None
                fleet_doc = await _get(session, "/api/fleet")
                assert 300 < fleet_doc["hashrate_ths"] < 400 and fleet_doc["power_est_w"] < 20_000
                assert fleet_doc["economics"]["profit_per_day"] < 1e6
                assert (await _get(session, f"/api/miners/{bad}"))["id"] == bad
                await _get(session, "/api/health")
                await _get(session, f"/api/miners/{bad}/health")
                curtail = await _get(session, "/api/curtailment")
                assert {m["id"] for m in curtail["miners"]} >= set(good)
                await _get(session, f"/api/curtailment/{bad}")
                async with session.get("/metrics") as resp:
                    text = await resp.text()
            promtool = require_binary("promtool")
            check = [promtool, "check", "metrics"]
            res = await asyncio.to_thread(subprocess.run, check, input=text, capture_output=True, text=True)
            assert res.returncode == 0, res.stdout + res.stderr
            m = re.search(r"^fleetd_fleet_hashrate_hashes_per_second (\S+)$", text, re.M)
            assert m and 300e12 < float(m.group(1)) < 400e12
            for h in good:
                assert re.search(rf'^fleetd_miner_hashrate_hashes_per_second{{miner="{h}".* \S+$', text, re.M)

            def published(h: str) -> bool:
                return any('"up"' in p for p in listener.on(f"{prefix}/miners/{h}/state"))

            await until(lambda: all(published(h) for h in hosts), what="every miner's MQTT state")
            for h in good:
                doc = json.loads(listener.on(f"{prefix}/miners/{h}/state")[-1])
                assert 100 < doc["hashrate_ths"] < 130
            await until(lambda: bool(listener.on(f"{prefix}/fleet")), what="fleet summary")
            assert 300 < json.loads(listener.on(f"{prefix}/fleet")[-1])["hashrate_ths"] < 400

            store = d.storage
            assert store is not None and store.flush(30)
            latest = {r["miner_id"]: r for r in store.latest()}
            assert set(latest) == set(hosts)
            for h in good:
                assert 100 < latest[h]["hashrate_ths"] < 130 and latest[h]["uptime_s"] is not None
            assert latest[bad]["health"] == "up" and latest[bad]["hashrate_ths"] is None
            assert store.dropped == 0
        finally:
            await server.stop()
            store = d.storage
            await d.stop()
            listener.close()
        # The stop wrote everything pending: nothing dropped nor lost at the close deadline.
        assert store is not None and store.dropped == 0 and store._thread is None


async def test_an_unreadable_snapshot_costs_no_other_miner_its_economics_nor_its_diagnosis(
    tmp_path: Path,
) -> None:
    from fleetd.view_errors import VIEW_ERRORS
    from tests.exporters.synthetic import fleet as synthetic_fleet
    from tests.exporters.synthetic import with_bad_miners

    d = Daemon(parse_config({"economics": ECONOMICS}), state_dir=tmp_path, storage=False)
    d.economics = d._build_economics(d.config)
    assert d.economics is not None
    await d.economics.refresh_all()
    d.state = synthetic_fleet(20)
    good = [mid for mid, rec in d.state.miners.items() if rec.snapshot is not None and rec.economics]
    for rec in d.state.miners.values():
        rec.economics = None
    bad = with_bad_miners(d.state)
    d.poller.polled_ids = list(d.state.miners)
    before = VIEW_ERRORS.snapshot()
    now = d.state.last_cycle.ended_at  # type: ignore[union-attr]
    d._after_cycle(now)
    d._health_cycle(now)
    assert all(d.state.miners[mid].economics is not None for mid in good)
    assert d.state.miners["bad-raising"].economics is None
    assert d.state.economics is not None and d.state.economics.total.revenue_per_day < 1e6
    faulty = {mid for mid in good if d.state.miners[mid].snapshot.errors}  # type: ignore[union-attr]
    assert faulty and d.health is not None and d.health.tracked_ids() >= faulty  # diagnosed all the same
    after = VIEW_ERRORS.snapshot()
    assert after["economics"] > before["economics"] and after["health"] > before["health"]
    assert len(bad) == 9
