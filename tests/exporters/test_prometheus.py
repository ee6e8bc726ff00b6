"""GET /metrics: valid exposition (promtool), every family present, and a real Prometheus scrape."""

from __future__ import annotations

import asyncio
import dataclasses
import gzip
import subprocess
import time
from pathlib import Path

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from fleetd.api import ApiServer
from fleetd.daemon.state import FleetState, Health
from fleetd.exporters.prometheus import FAMILIES, Exporter, escape, render
from tests.conftest import require_binary

from .curtail import CURTAIL_BLOCK, status
from .dashboards import DASHBOARDS, concrete, load, queries
from .helpers import free_port, running, until
from .synthetic import fleet


def _samples(text: str) -> dict[str, list[tuple[dict[str, str], float]]]:
    out: dict[str, list[tuple[dict[str, str], float]]] = {}
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            out.setdefault(s.name, []).append((s.labels, s.value))
    return out


@pytest.mark.prometheus
def test_render_has_every_family_and_promtool_accepts_it() -> None:
    text = render(fleet(20), render_s=0.01)
    promtool = require_binary("promtool")
    res = subprocess.run([promtool, "check", "metrics"], input=text, capture_output=True, text=True)
    assert res.returncode == 0, res.stdout + res.stderr
    samples = _samples(text)
    daemon_only = {
        n
        for n in FAMILIES
        if n.startswith(
            ("fleetd_storage", "fleetd_mqtt", "fleetd_cycles_total", "fleetd_health", "fleetd_ha_")
        )
    }
    daemon_only |= {"fleetd_cycle_overruns_total", "fleetd_economics_info", "fleetd_price_age_seconds"}
    daemon_only |= {"fleetd_price_stale", "fleetd_hashprice_per_petahash_day"}
    daemon_only |= {"fleetd_electricity_price_per_megawatt_hour"}
    # prometheus_client's parser drops the _total suffix from counter family names but not from samples
    assert set(FAMILIES) - daemon_only <= set(samples)
    up = {lb["health"]: v for lb, v in samples["fleetd_miners"]}
    assert up == {"up": 20, "down": 0, "unknown": 1}
    hr = {lb["miner"]: v for lb, v in samples["fleetd_miner_hashrate_hashes_per_second"]}
    assert hr["10.0.0.0"] == pytest.approx(110e12)
    labels = samples["fleetd_miner_up"][0][0]
    assert set(labels) == {"miner", "host", "site", "rack", "model", "vendor"}
    boards = [
        lb["board"]
        for lb, _ in samples["fleetd_miner_board_chip_temperature_celsius"]
        if lb["miner"] == "10.0.0.0"
    ]
    assert boards == ["0", "1", "2"]
    power = samples["fleetd_miner_power_watts"][0][0]
    assert power["source"] == "measured"
    odd = next(lb for lb, _ in samples["fleetd_miner_up"] if lb["host"] == "odd.example")
    assert odd["miner"] == 'odd"id\\x' and odd["site"] == "a\nb"  # escaped and parsed back intact


def test_options_drop_per_miner_and_component_series() -> None:
    st = fleet(5)
    no_parts = _samples(render(st, components=False))
    assert (
        "fleetd_miner_board_temperature_celsius" not in no_parts
        and "fleetd_miner_fan_speed_rpm" not in no_parts
    )
    assert "fleetd_miner_up" in no_parts
    fleet_only = _samples(render(st, per_miner=False))
    assert not [n for n in fleet_only if n.startswith("fleetd_miner_")]
    assert fleet_only["fleetd_fleet_power_watts"][0][1] == pytest.approx(5 * 3250.0)


def test_empty_state_and_escaping() -> None:
    text = render(FleetState())
    assert 'fleetd_miners{health="up"} 0' in text and "fleetd_cycle_duration_seconds" not in text
    assert escape('a"b\\c\nd') == 'a\\"b\\\\c\\nd'


async def test_metrics_route_caches_per_cycle_and_serves_gzip() -> None:
    st = fleet(3)
    server = ApiServer(st, listen="127.0.0.1:0")
    await server.start()
    try:
        async with aiohttp.ClientSession(auto_decompress=False) as s:
            async with s.get(server.url + "/metrics", headers={"Accept-Encoding": "identity"}) as r:
                assert r.status == 200 and r.headers["Content-Type"].startswith("text/plain; version=0.0.4")
                first = await r.read()
            async with s.get(server.url + "/metrics", headers={"Accept-Encoding": "gzip"}) as r:
                assert r.headers["Content-Encoding"] == "gzip"
                assert gzip.decompress(await r.read()) == first  # same cycle: the cached rendering
            st.miners["10.0.0.1"].health = Health.DOWN  # a change without a cycle end: the cached body
            async with s.get(server.url + "/metrics", headers={"Accept-Encoding": "identity"}) as r:
                assert await r.read() == first
            c = st.last_cycle
            assert c is not None
            st.last_cycle = dataclasses.replace(c, ended_at=c.ended_at + 30)  # the next cycle ended
            async with s.get(server.url + "/metrics", headers={"Accept-Encoding": "identity"}) as r:
                fresh = (await r.read()).decode()
        assert b"process_resident_memory_bytes" in first and b"fleetd_miner_info{" in first
        assert 'fleetd_miners{health="down"} 1' in fresh
    finally:
        await server.stop()


async def test_metrics_disabled_answers_404(tmp_path: Path) -> None:
    async with (
        running(1, tmp_path, metrics={"enabled": False}) as (_d, server, _m),
        aiohttp.ClientSession() as s,
        s.get(server.url + "/metrics") as r,
    ):
        assert r.status == 404 and "disabled" in (await r.json())["error"]


async def test_daemon_metrics_include_prices_storage_and_cycles(tmp_path: Path) -> None:
    async with running(2, tmp_path) as (d, _server, _m):
        await until(lambda: d.state.up() == 2 and d.state.economics is not None, what="2 miners up")
        exp = Exporter(lambda: d.state)
        exp.bind(d)
        await until(lambda: exp.cycles >= 1, what="a cycle counted")
        samples = _samples(exp.render_now().decode())
    assert samples["fleetd_hashprice_per_petahash_day"][0][1] == 50.0
    assert samples["fleetd_electricity_price_per_megawatt_hour"][0][1] == pytest.approx(50.0)
    assert {lb["price"]: v for lb, v in samples["fleetd_price_stale"]} == {"hashprice": 0, "electricity": 0}
    assert samples["fleetd_economics_info"][0][0]["currency"] == "USD"
    assert samples["fleetd_storage_up"][0][1] == 1 and "fleetd_storage_dropped_writes_total" in samples
    assert samples["fleetd_cycles_total"][0][1] >= 1
    profits = [v for _, v in samples["fleetd_miner_profit_per_day"]]
    assert len(profits) == 2 and all(v == v for v in profits)  # not NaN
    # stock S19 Pro firmware reports no power: the catalog's figure, labelled so
    assert samples["fleetd_miner_power_watts"][0][0]["source"] == "catalog"


@pytest.mark.prometheus
async def test_real_prometheus_scrapes_the_daemon(tmp_path: Path) -> None:
    # ~6 s: Prometheus hands new targets to its scrapers only every 5 s, whatever the scrape interval.
    prometheus = require_binary("prometheus")
    async with running(6, tmp_path / "state", block=CURTAIL_BLOCK) as (d, server, _m):
        await until(lambda: d.state.up() == 6, what="6 miners up")
        # the curtailment dashboard's series: a status set by hand where the daemon's loop puts its own
        d.curtail_status = status(d.state.miners)
        port = free_port()
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
            f"--web.listen-address=127.0.0.1:{port}",
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
        )
        try:
            result = await _query(port, 'fleetd_miners{health="up"}', proc)
            assert [float(r["value"][1]) for r in result] == [6.0]
            hr = await _query(port, "sum(fleetd_miner_hashrate_hashes_per_second)", proc)
            assert float(hr[0]["value"][1]) > 6 * 50e12  # six S19 Pros hashing (~110 TH/s each)
            up = await _query(port, 'up{job="fleetd"}', proc)
            assert float(up[0]["value"][1]) == 1.0
            await _dashboard_queries_run(port, d.state.miners)
            await _curtailment_queries_return_data(port, d.state.miners, proc)
        finally:
            proc.terminate()
            _, err = await proc.communicate()
    assert proc.returncode == 0, err.decode()[-2000:]


async def _query(port: int, query: str, proc: asyncio.subprocess.Process, within: float = 20.0) -> list:
    """Prometheus' instant query result, waiting until the first scrape has landed."""
    deadline = time.monotonic() + within
    async with aiohttp.ClientSession() as s:
        while time.monotonic() < deadline:
            assert proc.returncode is None, "prometheus exited"
            try:
                url = f"http://127.0.0.1:{port}/api/v1/query"
                async with s.get(url, params={"query": query}) as r:
                    body = await r.json()
                    if r.status == 200 and body["data"]["result"]:
                        return body["data"]["result"]
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.2)
    raise AssertionError(f"prometheus returned nothing for {query} within {within} s")


async def _dashboard_queries_run(port: int, miners: dict) -> None:
    """Prometheus accepts every query of the shipped dashboards; the miner dashboard's return data."""
    miner = next(iter(miners))
    empty = []
    async with aiohttp.ClientSession() as s:
        for name in DASHBOARDS:
            if name == CURTAILMENT:
                continue  # every query returns data: _curtailment_queries_return_data
            for expr in queries(load(name)):
                q = concrete(expr, miner)
                async with s.get(f"http://127.0.0.1:{port}/api/v1/query", params={"query": q}) as r:
                    body = await r.json()
                assert r.status == 200 and body["status"] == "success", (name, q, body)
                if not body["data"]["result"]:
                    empty.append(q)
    # Empty here: what needs history (rates) or a problem (miners down, overruns), MQTT (not configured),
    # and what stock S19 Pro firmware does not report (ambient temperature, power limit).
    allowed = ("rate(", "== 0", "overruns", "mqtt", "ambient", "power_limit")
    assert all(any(a in q for a in allowed) for q in empty), empty


CURTAILMENT = "fleetd-curtailment.json"


async def _curtailment_queries_return_data(port: int, miners: dict, proc: asyncio.subprocess.Process) -> None:
    """Every query of the curtailment dashboard returns data (rates once two scrapes have landed)."""
    miner = next(iter(miners))
    for expr in queries(load(CURTAILMENT)):
        result = await _query(port, concrete(expr, miner), proc)
        if (
            "fleetd_curtail_miner_target" in expr
            and "unresponsive" not in expr
            and "label_values" not in expr
        ):
            assert len(result) == len(miners), expr  # one row per miner, joined with its verified state
            assert all("actual" in r["metric"] and "target" in r["metric"] for r in result)
