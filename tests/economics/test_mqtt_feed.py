"""The MQTT price feed against the real Mosquitto broker at 127.0.0.1:1883."""

from __future__ import annotations

import asyncio
import json
import time
import uuid

import paho.mqtt.publish as publish
import pytest

from fleetd.economics.service import MarketPrices
from fleetd.economics.sources.base import SourceError
from fleetd.economics.sources.feed import FeedFormat, MqttFeed
from tests.conftest import require_service

pytestmark = pytest.mark.mqtt


async def publish_and_wait(topic: str, payload: str, prices: MarketPrices, count: int) -> None:
    await asyncio.to_thread(publish.single, topic, payload, qos=1, hostname="127.0.0.1", port=1883)
    for _ in range(100):
        if len(prices.history) >= count or prices.source.error:  # type: ignore[attr-defined]
            return
        await asyncio.sleep(0.02)


async def test_mqtt_feed_pushes_prices_and_goes_stale() -> None:
    require_service("Mosquitto", "127.0.0.1", 1883)
    topic = f"fleetd-test/economics/{uuid.uuid4().hex}"
    fmt = FeedFormat(value_path="price", time_path="ts", unit="per_kwh", interval_s=300)
    feed = MqttFeed("127.0.0.1", topic, fmt, name="site-price")
    prices = MarketPrices(feed, max_age_s=600)
    try:
        await feed.start()
        now = time.time()
        await publish_and_wait(topic, json.dumps({"price": 0.045, "ts": now}), prices, 1)
        r = prices.reading(now + 10)
        assert r.usable and r.value.per_mwh == pytest.approx(45.0) and r.value.source == "site-price"
        assert r.value.start == pytest.approx(now)

        await publish_and_wait(topic, "{garbage", prices, 2)
        r = prices.reading(now + 10)
        assert r.value.per_mwh == pytest.approx(45.0)  # last good value kept
        assert "malformed message" in r.error

        r = prices.reading(now + 300 + 601)  # the feed stopped: no point covers now, the last one ages
        assert r.stale and r.value.per_mwh == pytest.approx(45.0) and r.age_s == pytest.approx(601, abs=1)
    finally:
        await feed.close()


async def test_mqtt_bare_number_payload() -> None:
    require_service("Mosquitto", "127.0.0.1", 1883)
    topic = f"fleetd-test/economics/{uuid.uuid4().hex}"
    feed = MqttFeed("127.0.0.1", topic, FeedFormat(kind="number", unit="cents_per_kwh", interval_s=60))
    prices = MarketPrices(feed, max_age_s=600)
    try:
        await feed.start()
        await publish_and_wait(topic, "4.5", prices, 1)
        r = prices.reading(time.time())
        assert r.usable and r.value.per_mwh == pytest.approx(45.0)
        assert await feed.fetch()  # the drained copy for pull-style callers
    finally:
        await feed.close()


async def test_mqtt_unreachable_broker_is_a_clear_error() -> None:
    feed = MqttFeed("127.19.255.253", "x", FeedFormat(), port=1, connect_timeout_s=2)
    with pytest.raises(SourceError, match=r"cannot connect to 127\.19\.255\.253:1"):
        await feed.start()
