"""Home Assistant MQTT discovery: config messages, per-site states, removal of gone sites; real Mosquitto."""

from __future__ import annotations

import asyncio
import json
import re
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from fleetd.config import ConfigError, MqttConfig, parse_config
from fleetd.daemon.state import Labels
from fleetd.exporters.mqtt import MqttPublisher
from fleetd.exporters.mqtt_curtail import summary
from fleetd.exporters.mqtt_discovery import site_states, slug
from fleetd.sim.fleet import Fleet, Group
from tests.conftest import require_service, web_port

from .curtail import status
from .helpers import ECONOMICS, clear_retained, subnet, until
from .synthetic import fleet
from .test_mqtt_curtail import Listener, _wait

BROKER = ("127.0.0.1", 1883)
REQUIRED = {"name", "unique_id", "state_topic", "value_template", "availability", "device", "state_class"}
TOPIC = re.compile(r"^(?P<prefix>[^/]+)/sensor/(?P<node>[A-Za-z0-9_-]+)/(?P<object>[A-Za-z0-9_-]+)/config$")
TEMPLATE = re.compile(r"^\{\{ value_json\.(\w+) \}\}$")


def _ha(**kw: Any) -> MqttConfig:
    return MqttConfig(homeassistant={"enabled": True, **kw})


def _configs(pending: dict[str, tuple[bytes, bool]], prefix: str = "homeassistant") -> dict[str, Any]:
    return {t: json.loads(p) for t, (p, _) in pending.items() if t.startswith(f"{prefix}/") and p}


# --- building the messages ----------------------------------------------------------------------------------
def test_off_by_default_and_validated() -> None:
    st = fleet(10)
    pub = MqttPublisher(MqttConfig(), st)
    pub.on_cycle()
    assert pub.discovery is None and not [t for t in pub._pending if "homeassistant" in t or "/sites/" in t]
    with pytest.raises(ConfigError) as exc:
        parse_config({"mqtt": {"homeassistant": {"discovery_prefix": "ha/#", "node_id": "a b", "x": 1}}})
    lines = exc.value.errors
    assert any(e.startswith("mqtt.homeassistant.discovery_prefix: ") for e in lines), lines
    assert any(e.startswith("mqtt.homeassistant.node_id: ") for e in lines), lines
    assert any(e.startswith("mqtt.homeassistant.x: unknown key") for e in lines), lines


def test_fleet_and_site_sensors_with_the_required_keys() -> None:
    st = fleet(30)
    pub = MqttPublisher(_ha(), st, lambda: status(st.miners))
    pub.on_cycle()
    configs = _configs(pub._pending)
    assert all(retain for t, (_, retain) in pub._pending.items() if t in configs)  # discovery is retained
    sites = {"site-0", "site-1", "site-2", "a\nb"}  # the synthetic fleet's labels (one with a newline)
    keys = ["hashrate_ths", "power_w", "up", "down", "profit_per_day", "curtailed"]
    objects = {f"fleet_{k}" for k in keys} | {f"site_{slug(s)}_{k}" for s in sites for k in keys}
    assert {TOPIC.match(t)["object"] for t in configs} == objects  # type: ignore[index]
    for topic, body in configs.items():
        m = TOPIC.match(topic)
        assert m is not None and m["node"] == "fleetd", topic
        assert body.keys() >= REQUIRED, topic
        assert body["availability"] == [
            {"topic": "fleetd/status", "payload_available": "online", "payload_not_available": "offline"}
        ]
        assert body["device"]["identifiers"] and body["device"]["manufacturer"] == "fleetd"
        assert TEMPLATE.match(body["value_template"]), body["value_template"]
    power = configs["homeassistant/sensor/fleetd/fleet_power_w/config"]
    assert (power["device_class"], power["unit_of_measurement"], power["state_topic"]) == (
        "power",
        "W",
        "fleetd/fleet",
    )
    assert configs["homeassistant/sensor/fleetd/fleet_hashrate_ths/config"]["unit_of_measurement"] == "TH/s"
    assert (
        configs["homeassistant/sensor/fleetd/fleet_profit_per_day/config"]["unit_of_measurement"] == "USD/d"
    )
    curtailed = configs["homeassistant/sensor/fleetd/fleet_curtailed/config"]
    assert curtailed["state_topic"] == "fleetd/curtailment"
    site = configs["homeassistant/sensor/fleetd/site_site-1_up/config"]
    assert site["state_topic"] == "fleetd/sites/site-1/state"
    assert site["device"]["via_device"] == "fleetd_fleetd" and site["device"]["name"] == "Site site-1"
    assert len({b["unique_id"] for b in configs.values()}) == len(configs)


def test_site_states_add_up_to_the_fleet() -> None:
    st = fleet(30)
    cs = status(st.miners)
    sites = site_states(st, cs, 1.0)
    assert sum(s["miners"] for s in sites.values()) == len(st.miners)
    up = [r for r in st.miners.values() if r.health.value == "up"]
    assert sum(s["up"] for s in sites.values()) == len(up)
    assert sum(s["hashrate_ths"] for s in sites.values()) == pytest.approx(
        sum(r.snapshot.hashrate_ths for r in up)
    )
    fleet_summary = summary(cs, 1.0)
    assert fleet_summary["curtailed"] == len(cs.miners) - fleet_summary["by_target"]["run"] > 0
    assert sum(s["curtailed"] for s in sites.values()) == fleet_summary["curtailed"]
    assert sites["a\nb"]["profit_per_day"] is None  # no figures: unknown, never zero
    assert sites["site-0"]["profit_per_day"] > 0


def test_republished_on_change_of_sites_gone_ones_removed() -> None:
    st = fleet(30)
    pub = MqttPublisher(_ha(node_id="farm-1"), st)
    pub.on_cycle()
    first = _configs(pub._pending)
    assert first and all("/sensor/farm-1/" in t for t in first)
    pub._pending.clear()
    pub.on_cycle()  # nothing changed: site states only
    assert not _configs(pub._pending) and "fleetd/sites/site-0/state" in pub._pending
    pub._pending.clear()
    for mid in [m for m, r in st.miners.items() if r.labels.site == "site-2"]:
        del st.miners[mid]
    pub.on_cycle()
    gone = {t for t in first if "/site_site-2_" in t}
    assert len(gone) == 5
    assert {t for t, (p, r) in pub._pending.items() if p == b"" and r} == gone | {"fleetd/sites/site-2/state"}


def test_a_discovery_failure_never_stops_the_other_topics() -> None:
    st = fleet(6)

    class Odd(str):
        def encode(self, *_a: object, **_k: object) -> bytes:
            raise ValueError("cannot encode")

    st.miners["10.0.0.1"].labels = Labels(site=Odd("hall.a"))  # a name discovery cannot turn into an id
    pub = MqttPublisher(_ha(), st)
    pub.on_cycle()
    assert pub.discovery is not None and pub.discovery.failures == 1
    assert "fleetd/fleet" in pub._pending and "fleetd/miners/10.0.0.2/state" in pub._pending


# --- the real broker ----------------------------------------------------------------------------------------
@pytest.fixture
def node() -> Iterator[str]:
    """A node id of this test's own, and its retained discovery and state topics cleared afterwards."""
    require_service("Mosquitto", *BROKER)
    name = f"t{uuid.uuid4().hex[:10]}"
    yield name
    clear_retained(f"homeassistant/sensor/{name}/#", f"{name}/#")


def _check_on_broker(ha: Listener, states: Listener, node: str, prefix: str) -> dict[str, Any]:
    """Every discovery config is JSON with the required keys, and its state topic carries its value."""
    configs = {
        t: json.loads(p)
        for t, p, _ in list(ha.messages)
        if t.startswith(f"homeassistant/sensor/{node}/") and p
    }
    assert configs
    for topic, body in configs.items():
        assert TOPIC.match(topic) and body.keys() >= REQUIRED, topic
        assert body["availability"][0]["topic"] == f"{prefix}/status"
        key = TEMPLATE.match(body["value_template"])[1]  # type: ignore[index]
        values = [json.loads(p) for p in states.on(body["state_topic"]) if p]
        assert values, f"nothing on {body['state_topic']}"
        value = values[-1][key]
        assert value is None or isinstance(value, int | float), (topic, value)
    assert states.on(f"{prefix}/status")[-1] == "online"
    return configs


@pytest.mark.mqtt
async def test_daemon_announces_sites_and_removes_a_site_that_goes(node: str, tmp_path: Path) -> None:
    base = subnet()
    hosts = [f"{base}{i}" for i in (1, 2, 3)]
    port = web_port()
    groups = [Group("Antminer S19 Pro", 1, h, {"web": port}, ramp_s=0, jitter=0) for h in hosts]
    mqtt = {"topic_prefix": node, "client_id": f"fleetd-{node}", "qos": 1, "homeassistant": {"enabled": True}}
    sites = ["hall-a", "hall-a", "hall-b"]

    def config(n: int) -> Any:
        miners = [{"host": h, "web_port": port, "site": s} for h, s in zip(hosts[:n], sites, strict=False)]
        data = {
            "polling": {"interval_s": 0.5, "jitter_s": 0.0, "timeout_s": 1.0, "connect_timeout_s": 0.5},
            "miners": miners,
            "economics": ECONOMICS,
            "mqtt": mqtt,
        }
        return parse_config(data)

    from fleetd.daemon.core import Daemon

    ha = Listener("homeassistant")
    states = Listener(node)
    try:
        async with Fleet(groups):
            d = Daemon(config(3), state_dir=tmp_path)
            await d.start()
            try:
                assert d.economics is not None
                await d.economics.refresh_all()
                site_b = f"{node}/sites/hall-b/state"

                def b_up() -> bool:
                    return any(json.loads(p)["up"] == 1 for p in states.on(site_b) if p)

                await until(b_up, within=20, what="hall-b's state with its miner up")
                await until(lambda: d.mqtt is not None and d.mqtt.queue_depth == 0, what="queue sent")
                configs = _check_on_broker(ha, states, node, node)
                objects = {TOPIC.match(t)["object"] for t in configs}  # type: ignore[index]
                assert {"fleet_hashrate_ths", "site_hall-a_power_w", "site_hall-b_profit_per_day"} <= objects
                a = [json.loads(p) for p in states.on(f"{node}/sites/hall-a/state") if p][-1]
                assert a["miners"] == 2 and a["site"] == "hall-a"

                await d.reload(config(2))  # hall-b's miner leaves the configuration
                gone = {t for t in configs if "/site_hall-b_" in t}

                def removed() -> bool:
                    return {t for t, p, _ in list(ha.messages) if t in gone and p == ""} == gone

                await until(removed, within=20, what="hall-b's discovery configs removed")
                await until(lambda: states.on(site_b)[-1] == "", what="hall-b's retained state removed")
            finally:
                await d.stop()
        await until(
            lambda: states.on(f"{node}/status")[-1] == "offline", what="offline: entities unavailable"
        )
    finally:
        ha.close()
        states.close()
    late = Listener(f"homeassistant/sensor/{node}")  # what Home Assistant would get on (re)start: retained
    try:
        await until(lambda: bool(late.retained()), what="retained configs")
        await asyncio.sleep(0.3)
        assert not any("/site_hall-b_" in t for t in late.retained())
        assert any("/site_hall-a_" in t for t in late.retained())
    finally:
        late.close()


@pytest.mark.mqtt
def test_configs_are_sent_again_after_a_reconnect(node: str) -> None:
    st = fleet(6)
    pub = MqttPublisher(
        MqttConfig(topic_prefix=node, client_id=f"fleetd-{node}", homeassistant={"enabled": True}), st
    )
    ha = Listener(f"homeassistant/sensor/{node}")

    def configs() -> int:
        return sum(1 for _, p, _ in list(ha.messages) if p)

    try:
        pub.start()
        _wait(lambda: pub.connected, "connected")
        pub.on_cycle()
        assert pub.discovery is not None
        n = sum(len(t) for t in pub.discovery._published.values())
        assert n == 5 * 5  # five sensors on the fleet and on each of its four sites
        _wait(lambda: configs() == n, "every config")
        pub.on_cycle()
        assert pub.client is not None
        sock = pub.client.socket()
        assert isinstance(sock, socket.socket)
        sock.shutdown(socket.SHUT_RDWR)  # the connection dies; paho reconnects
        _wait(lambda: not pub.connected, "disconnected")
        _wait(lambda: pub.connected, "reconnected")
        pub.on_cycle()
        _wait(lambda: configs() == 2 * n, "every config again after the reconnect")
    finally:
        pub.stop()
        ha.close()
