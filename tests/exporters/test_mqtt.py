"""MQTT publishing against the real Mosquitto: topics, change-only states, last will, broker down."""

from __future__ import annotations

import json
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import paho.mqtt.client as paho
import pytest

from fleetd.config import MqttConfig, parse_config
from fleetd.daemon.core import Daemon
from fleetd.daemon.state import Health
from fleetd.exporters.mqtt import MqttPublisher, topic_id
from tests.conftest import require_service

from .helpers import clear_retained, free_port, running, until
from .synthetic import fleet

BROKER = ("127.0.0.1", 1883)


class Listener:
    """A paho subscriber to `<prefix>/#` collecting (topic, payload) in arrival order."""

    def __init__(self, prefix: str) -> None:
        self.messages: list[tuple[str, str]] = []
        self._lock = threading.Lock()
        self.client = paho.Client(
            paho.CallbackAPIVersion.VERSION2, client_id=f"listener-{uuid.uuid4().hex[:8]}"
        )
        self.client.on_message = self._on_message
        self.client.connect(*BROKER)
        self.client.subscribe(f"{prefix}/#", qos=1)
        self.client.loop_start()

    def _on_message(self, _c: object, _u: object, msg: paho.MQTTMessage) -> None:
        with self._lock:
            self.messages.append((msg.topic, msg.payload.decode()))

    def on(self, topic: str) -> list[str]:
        with self._lock:
            return [p for t, p in self.messages if t == topic]

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


@pytest.fixture
def prefix() -> Iterator[str]:
    require_service("Mosquitto", *BROKER)
    name = f"fleetd-test-{uuid.uuid4().hex[:10]}"
    yield name
    clear_retained(f"{name}/#")


def test_only_changed_or_due_miners_are_queued() -> None:
    st = fleet(100)
    pub = MqttPublisher(MqttConfig(full_every=10), st)
    pub.on_cycle()
    assert pub.queue_depth == 1 + len(st.miners)  # first cycle: fleet summary and every miner
    pub._pending.clear()
    pub.on_cycle()
    second = set(pub._pending)
    assert "fleetd/fleet" in second and 2 <= len(second) <= 1 + 30  # ~1/10 of the miners: their turn
    pub._pending.clear()
    rec = st.miners["10.0.0.5"]
    rec.health = Health.DOWN
    pub.on_cycle()
    assert "fleetd/miners/10.0.0.5/state" in pub._pending
    assert json.loads(pub._pending["fleetd/miners/10.0.0.5/state"][0])["health"] == "down"
    turns = set()
    for _ in range(10):  # within full_every cycles every miner is republished at least once
        pub._pending.clear()
        pub.on_cycle()
        turns |= set(pub._pending)
    assert len(turns) == 1 + len(st.miners)


def test_full_queue_drops_new_topics_and_counts_them() -> None:
    st = fleet(150)
    pub = MqttPublisher(MqttConfig(queue_size=100), st)
    pub.on_cycle()
    assert pub.queue_depth == 100 and pub.dropped == 1 + len(st.miners) - 100
    pub.on_cycle()  # queued topics are replaced by their newer state, not duplicated
    assert pub.queue_depth == 100
    assert topic_id("a/b+c#") == "a_b_c_"


@pytest.mark.mqtt
async def test_daemon_publishes_status_fleet_and_miner_states(prefix: str, tmp_path: Path) -> None:
    listener = Listener(prefix)
    try:
        mqtt = {"topic_prefix": prefix, "client_id": f"fleetd-{prefix}", "qos": 1}
        async with running(2, tmp_path, api=False, mqtt=mqtt) as (d, _s, miners):
            await until(lambda: d.state.up() == 2, what="2 miners up")
            fleet_topic = f"{prefix}/fleet"
            await until(lambda: any(json.loads(p)["up"] == 2 for p in listener.on(fleet_topic)), what="fleet")
            host = miners[0].host
            state_topic = f"{prefix}/miners/{host}/state"
            await until(lambda: any('"up"' in p for p in listener.on(state_topic)), what="miner state up")
            state = json.loads([p for p in listener.on(state_topic) if '"up"' in p][-1])
            assert state["model"] == "Antminer S19 Pro" and state["site"] == "hall-a"
            assert state["hashrate_ths"] > 50 and state["profit_per_day"] is not None
            summary = json.loads(listener.on(fleet_topic)[-1])
            assert summary["hashrate_ths"] > 100 and summary["cycle"]["polled"] >= 1
            assert listener.on(f"{prefix}/status")[-1] == "online"
            assert d.mqtt is not None and d.mqtt.connected and d.mqtt.published > 0
        await until(lambda: listener.on(f"{prefix}/status")[-1] == "offline", what="offline on stop")
    finally:
        listener.close()


@pytest.mark.mqtt
def test_last_will_on_abrupt_disconnect(prefix: str) -> None:
    listener = Listener(prefix)
    pub = MqttPublisher(
        MqttConfig(topic_prefix=prefix, client_id=f"fleetd-{prefix}", keepalive_s=5), fleet(1)
    )
    status = f"{prefix}/status"
    try:
        pub.start()
        _wait(lambda: listener.on(status) == ["online"], "online")
        assert pub.client is not None
        sock = pub.client.socket()
        assert isinstance(sock, socket.socket)
        sock.shutdown(socket.SHUT_RDWR)  # the connection dies without an MQTT DISCONNECT
        _wait(lambda: "offline" in listener.on(status), "the broker's last will")
        _wait(lambda: listener.on(status)[-1] == "online", "online again after the reconnect")
    finally:
        pub.stop()
        listener.close()


@pytest.mark.mqtt
async def test_unreachable_broker_never_stalls_polling(tmp_path: Path) -> None:
    mqtt = {"port": free_port(), "queue_size": 100}  # nothing listens there
    async with running(3, tmp_path, api=False, mqtt=mqtt) as (d, _s, _m):
        await until(lambda: d.state.up() == 3, what="3 miners up")
        pub = d.mqtt
        assert pub is not None
        first = pub.cycles
        await until(lambda: pub.cycles >= first + 3, what="3 more cycles")
        c = d.state.last_cycle
        assert c is not None and c.ended_at - c.started_at < 0.5 and not c.overran
        assert not pub.connected and pub.queue_depth == 4  # the newest fleet summary and 3 miner states
        started = time.monotonic()
    assert time.monotonic() - started < 5.0  # stopping does not wait for the broker either


def _wait(cond: object, what: str, within: float = 10.0) -> None:
    deadline = time.monotonic() + within
    while not cond():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


async def test_mqtt_changes_apply_after_a_restart() -> None:
    d = Daemon(parse_config({}), storage=False)
    assert "mqtt" in await d.reload(parse_config({"mqtt": {"topic_prefix": "other"}}))
    assert "mqtt" not in await d.reload(parse_config({"mqtt": {"topic_prefix": "other"}}))
