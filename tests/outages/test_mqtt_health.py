"""MQTT outages show in /metrics: a broker that dies, and publishes that fail, are counted truthfully."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import paho.mqtt.client as paho
import pytest

from tests.conftest import require_binary

from .helpers import config, daemon, fleet, metrics, until

pytestmark = pytest.mark.mqtt


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Broker:
    """A private Mosquitto on a free loopback port, which a test may kill and start again."""

    def __init__(self, binary: str, workdir: Path) -> None:
        self.binary, self.port = binary, _free_port()
        self.conf = workdir / "mosquitto.conf"
        self.conf.write_text(f"listener {self.port} 127.0.0.1\nallow_anonymous true\npersistence false\n")
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen([self.binary, "-c", str(self.conf)], stderr=subprocess.DEVNULL)
        for _ in range(100):
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", self.port), 0.1):
                return
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(0.05)
        raise AssertionError("mosquitto did not start")

    def kill(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()
            self.proc = None


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Broker]:
    b = Broker(require_binary("mosquitto"), tmp_path)
    b.start()
    try:
        yield b
    finally:
        b.kill()


async def test_broker_dying_shows_disconnected_and_counts_what_is_dropped(
    broker: Broker, tmp_path: Path
) -> None:
    async with fleet(3, block=82) as (_f, hosts):
        cfg = config(hosts, mqtt={"port": broker.port, "full_every": 1})
        async with daemon(cfg, tmp_path) as d:
            assert d.mqtt is not None
            d.mqtt.config = d.mqtt.config.model_copy(update={"queue_size": 2})  # below what config allows
            await until(
                lambda: d.mqtt is not None and d.mqtt.connected and d.mqtt.published >= 8, what="publishing"
            )
            assert (await metrics(d))["fleetd_mqtt_connected"] == 1
            broker.kill()
            await until(lambda: d.mqtt is not None and not d.mqtt.connected, what="disconnect noticed")
            assert d.mqtt is not None
            cycles = d.mqtt.cycles
            await until(lambda: d.mqtt is not None and d.mqtt.cycles >= cycles + 3, what="cycles while down")
            m = await metrics(d)
            assert m["fleetd_mqtt_connected"] == 0
            assert m["fleetd_mqtt_dropped_messages_total"] > 0  # 4 topics per cycle, room for 2
            broker.start()
            await until(lambda: d.mqtt is not None and d.mqtt.connected, 30, what="reconnected")
            assert (await metrics(d))["fleetd_mqtt_connected"] == 1


async def test_a_failing_publish_is_counted_and_publishing_goes_on(broker: Broker, tmp_path: Path) -> None:
    async with fleet(2, block=82) as (_f, hosts):
        cfg = config(hosts, mqtt={"port": broker.port, "full_every": 1})
        async with daemon(cfg, tmp_path) as d:
            pub = d.mqtt
            assert pub is not None
            await until(lambda: pub.connected and pub.published >= 3, what="publishing")
            assert pub.client is not None
            real = pub.client.publish
            failures = {"left": 3}

            def flaky(*args: Any, **kwargs: Any) -> paho.MQTTMessageInfo:
                if failures["left"] > 0:
                    failures["left"] -= 1
                    raise ValueError("payload refused by the client library")
                return real(*args, **kwargs)

            pub.client.publish = flaky  # type: ignore[method-assign]
            before = (await metrics(d))["fleetd_mqtt_dropped_messages_total"]
            await until(lambda: failures["left"] == 0, what="the failures")
            published = pub.published
            await until(lambda: pub.published >= published + 3, what="publishing after the failures")
            m = await metrics(d)
            assert m["fleetd_mqtt_dropped_messages_total"] == before + 3
            await asyncio.sleep(0)
