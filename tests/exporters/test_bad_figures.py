"""One miner's impossible figures (NaN, inf, 1e300, 10**30, negative, text, a raising snapshot) change
nothing in /metrics and MQTT for the other miners, and fleet totals stay finite and exclude them."""

from __future__ import annotations

import json
import re
import subprocess
import uuid

import orjson
import pytest

from fleetd.config import MqttConfig
from fleetd.exporters.mqtt import MqttPublisher, fleet_summary
from fleetd.exporters.prometheus import render
from fleetd.view_errors import VIEW_ERRORS
from tests.conftest import require_binary

from .synthetic import fleet, with_bad_miners
from .test_mqtt import Listener, _wait, prefix  # noqa: F401  (the fixture)

FLEET_FAMILIES = (
    "fleetd_fleet_hashrate_hashes_per_second",
    "fleetd_fleet_expected_hashrate_hashes_per_second",
    "fleetd_fleet_power_watts",
    "fleetd_fleet_revenue_per_day",
    "fleetd_fleet_profit_per_day",
)


def _lines_of(text: str, miner: str) -> list[str]:
    return sorted(line for line in text.splitlines() if f'miner="{miner}"' in line)


def _value(text: str, name: str) -> float:
    m = re.search(rf"^{name}(?:{{[^}}]*}})? (\S+)$", text, re.M)
    assert m, name
    return float(m.group(1))


def test_metrics_of_good_miners_and_fleet_totals_ignore_bad_ones() -> None:
    st = fleet(40)
    clean = render(st, render_s=0.01)
    good = [m for m in st.miners]
    before = VIEW_ERRORS.snapshot()["metrics"]
    bad = with_bad_miners(st)
    text = render(st, render_s=0.01)
    promtool = require_binary("promtool")
    res = subprocess.run([promtool, "check", "metrics"], input=text, capture_output=True, text=True)
    assert res.returncode == 0, res.stdout + res.stderr
    for mid in good:  # every good miner's samples, exactly as without the bad ones
        assert _lines_of(text, mid) == _lines_of(clean, mid), mid
    for name in FLEET_FAMILIES:  # totals: finite, and what the good miners make
        assert _value(text, name) == pytest.approx(_value(clean, name)), name
    assert bad[-1] == "bad-raising" and not _lines_of(text, bad[-1])  # unreadable: skipped whole, counted
    for mid in bad[:-1]:  # the others are there and up, with no impossible hashrate or power sample
        lines = _lines_of(text, mid)
        assert any(line.startswith("fleetd_miner_up{") and line.endswith(" 1") for line in lines), mid
        figures = [v for v in lines if v.startswith(("fleetd_miner_hashrate_", "fleetd_miner_power_watts{"))]
        assert not [v for v in figures if re.search(r" (NaN|[+-]Inf|-\S+)$", v)], figures
    skipped = re.search(r'^fleetd_view_errors_total\{view="metrics"\} (\d+)$', text, re.M)
    assert skipped and int(skipped.group(1)) > before  # the raising and the text ones, counted


def test_mqtt_queues_every_good_miner_and_a_finite_fleet_summary() -> None:
    st = fleet(30)
    clean_pub = MqttPublisher(MqttConfig(), st)
    clean_pub.on_cycle()
    clean = dict(clean_pub._pending)
    clean_summary = fleet_summary(st, 0.0)
    bad = with_bad_miners(st)
    pub = MqttPublisher(MqttConfig(), st)
    pub.on_cycle()
    pending = dict(pub._pending)
    for topic, (payload, _retain) in clean.items():
        if topic.endswith("/state"):
            assert pending[topic][0] == payload, topic
    summary = orjson.loads(pending["fleetd/fleet"][0])
    for key in ("hashrate_ths", "power_w"):
        assert summary[key] == pytest.approx(clean_summary[key]), key
    assert summary["up"] == clean_summary["up"] + len(bad)
    states = {t.split("/")[2]: orjson.loads(p) for t, (p, _r) in pending.items() if t.endswith("/state")}
    assert "bad-raising" not in states  # its state cannot be read: skipped, counted
    for mid in bad[:-1]:  # the others are published, impossible figures as null
        doc = states[mid]
        assert doc["health"] == "up"
        assert doc["hashrate_ths"] is doc["power_w"] is doc["uptime_s"] is None, doc  # -5 C is a temperature
    pub.on_cycle()  # and the next cycle works as well (it used to raise on round(inf))
    assert pub.cycles == 2


@pytest.mark.mqtt
def test_mqtt_publishes_every_good_miner_beside_bad_ones(prefix: str) -> None:  # noqa: F811
    st = fleet(20)
    good = [m for m in st.miners]
    bad = with_bad_miners(st)
    listener = Listener(prefix)
    pub = MqttPublisher(MqttConfig(topic_prefix=prefix, client_id=f"fleetd-{uuid.uuid4().hex[:8]}"), st)
    try:
        pub.start()
        _wait(lambda: pub.connected, "connected")
        pub.on_cycle()
        topics = [f"{prefix}/miners/{m.replace('/', '_')}/state" for m in good]
        _wait(lambda: all(listener.on(t) for t in topics), "every good miner's state", 20.0)
        for mid, topic in zip(good, topics, strict=True):
            doc = json.loads(listener.on(topic)[-1])
            assert doc["id"] == mid
        assert json.loads(listener.on(f"{prefix}/fleet")[-1])["up"] == st.up()
        for mid in bad[:-1]:
            _wait(lambda mid=mid: bool(listener.on(f"{prefix}/miners/{mid}/state")), mid)
        assert not listener.on(f"{prefix}/miners/bad-raising/state")
    finally:
        pub.stop()
        listener.close()


def test_home_assistant_site_states_leave_out_impossible_figures() -> None:
    from fleetd.exporters.mqtt_discovery import site_states

    st = fleet(30)
    clean = site_states(st, None, 0.0)
    bad = with_bad_miners(st)  # all of them on site-0
    sites = site_states(st, None, 0.0)
    for name, s in clean.items():
        for key in ("hashrate_ths", "power_w", "profit_per_day"):
            assert sites[name][key] == pytest.approx(s[key]), (name, key)
    assert sites["site-0"]["up"] == clean["site-0"]["up"] + len(bad)
