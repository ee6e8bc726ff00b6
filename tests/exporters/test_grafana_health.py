"""The Health dashboard against a real Prometheus: every panel's query returns data from a daemon whose
emulated miners have findings (a failed fan) and trend warnings (a fan creeping up in the history)."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from fleetd.api import ApiServer
from fleetd.daemon.core import Daemon
from fleetd.health.history import SUMS
from fleetd.sim.fleet import Fleet, Group
from tests.conftest import loopback_host, require_binary, web_port

from .dashboards import HEALTH, concrete, load, queries
from .helpers import daemon_config, free_port, until
from .test_prometheus import _query

BLOCK = 61


def _history(miner: str, now: float, fan_rpm_per_h: float = 0.0) -> list[dict[str, Any]]:
    """12 hours of health sums, one sample an hour: steady, or with the fans speeding up."""
    rows = []
    for i in range(12):
        row: dict[str, Any] = dict.fromkeys(SUMS, 0)
        row |= {"samples": 1, "chip_temp_sum_c": 70.0, "chip_temp_n": 1, "board_ratio_sum": 1.0, "board_n": 1}
        row |= {"fan_rpm_sum": 5800.0 + fan_rpm_per_h * i, "fan_n": 1}
        rows.append(row | {"miner_id": miner, "hour_start": now - (11 - i) * 3600.0, "board_worst": 2})
    return rows


@pytest.mark.prometheus
async def test_every_health_panel_returns_data(tmp_path: Path) -> None:
    prometheus = require_binary("prometheus")
    port = web_port()
    hosts = [loopback_host(BLOCK) for _ in range(3)]
    groups = [
        Group("Antminer S19 Pro", 1, hosts[0], {"web": port}, ramp_s=0, jitter=0),
        Group("Antminer S19 Pro", 1, hosts[1], {"web": port}, faults={"fan_failed": 1.0}, ramp_s=0, jitter=0),
        Group("Antminer S19 Pro", 1, hosts[2], {"web": port}, ramp_s=0, jitter=0),
    ]
    async with Fleet(groups):
        d = Daemon(daemon_config(hosts), state_dir=tmp_path / "state")
        await d.start()
        assert d.economics is not None
        await d.economics.refresh_all()
        server = ApiServer.for_daemon(d, listen=f"{loopback_host(BLOCK)}:0")
        await server.start()
        proc = None
        try:
            await until(lambda: d.state.up() == 3, within=20, what="3 miners up")
            await until(lambda: bool(d.health and d.health.tracker.active(hosts[1])), 20, "a finding")
            now = time.time()
            rows = [r for h in hosts for r in _history(h, now, 40.0 if h == hosts[1] else 0.0)]
            found = await d.run_trends(now=now, rows=rows)
            assert [w.code for w in found[hosts[1]]] == ["fan_rpm_rising"] and set(found) == {hosts[1]}
            prom_port = free_port()
            cfg = tmp_path / "prometheus.yml"
            target = server.url.removeprefix("http://")
            cfg.write_text(
                "global:\n  scrape_interval: 500ms\n  scrape_timeout: 500ms\n"
                f"scrape_configs:\n  - job_name: fleetd\n    static_configs:\n      - targets: ['{target}']\n"
            )
            proc = await asyncio.create_subprocess_exec(
                prometheus,
                f"--config.file={cfg}",
                f"--storage.tsdb.path={tmp_path / 'tsdb'}",
                f"--web.listen-address=127.0.0.1:{prom_port}",
                stdout=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.PIPE,
            )
            await _query(prom_port, "fleetd_health_miner_warning", proc)
            empty = []
            async with aiohttp.ClientSession() as s:
                for expr in queries(load(HEALTH)):
                    q = concrete(expr, hosts[1])
                    url = f"http://127.0.0.1:{prom_port}/api/v1/query"
                    async with s.get(url, params={"query": q}) as r:
                        body = await r.json()
                    assert r.status == 200 and body["status"] == "success", (q, body)
                    if not body["data"]["result"]:
                        empty.append(q)
            assert not empty, empty
        finally:
            if proc is not None:
                proc.terminate()
                _, err = await proc.communicate()
                assert proc.returncode == 0, err.decode()[-2000:]
            await server.stop()
            await d.stop()
