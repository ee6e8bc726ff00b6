"""Curtailment over MQTT: the DR message parser on its own, state out and DR in (real Mosquitto)."""

from __future__ import annotations

import dataclasses
import json
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import paho.mqtt.client as paho
import pytest

from fleetd.config import MqttConfig
from fleetd.curtail.config import DemandResponseMqtt
from fleetd.curtail.model import SLEEP, Actual
from fleetd.daemon.curtail_controls import ControlsStore
from fleetd.daemon.events import Event, EventKind
from fleetd.exporters.mqtt import MqttPublisher
from fleetd.exporters.mqtt_curtail import (
    DR_EVENT_ID,
    DrRejected,
    MqttDemandResponse,
    curtail_messages,
    parse_dr,
)
from tests.conftest import require_service

from .curtail import DR_BLOCK, ECON, status
from .helpers import running, until
from .synthetic import fleet

BROKER = ("127.0.0.1", 1883)
NOW = 1_800_000_000.0
ISO_NOW = "2027-01-15T08:00:00+00:00"  # NOW


# --- the parser ---------------------------------------------------------------------------------------------
def _dr(**fields: Any) -> bytes:
    return orjson.dumps(fields)


def test_parse_a_target_with_unix_or_iso_times() -> None:
    req = parse_dr(_dr(target_kw=1200, end=NOW + 3600, sent_at=NOW - 5), NOW, 300)
    assert req.on and req.target_kw == 1200.0 and req.end == NOW + 3600 and req.sent_at == NOW - 5
    assert req.sites == ()
    req = parse_dr(_dr(target_kw=0, end="2027-01-15T09:00:00Z", sent_at=ISO_NOW, sites=["north"]), NOW, 300)
    assert req.target_kw == 0.0 and req.end == NOW + 3600 and req.sent_at == NOW and req.sites == ("north",)
    req = parse_dr(_dr(on=True, target_kw=5.5, end="2027-01-15T04:00:00-05:00", sent_at=NOW), NOW, 300)
    assert req.end == NOW + 3600
    assert parse_dr(b' {"on": false, "sent_at": 1800000000} ', NOW, 300).on is False


@pytest.mark.parametrize(
    ("payload", "words"),
    [
        (b"1200", "JSON object"),
        (b"{not json", "not JSON"),
        (b"", "not JSON"),
        (_dr(target_kw=1, end=NOW + 60, sent_at=NOW, end_time=1), "unknown keys end_time"),
        (_dr(on="off", sent_at=NOW), "on must be true or false"),
        (_dr(target_kw=1, end=NOW + 60), "sent_at missing"),
        (_dr(end=NOW + 60, sent_at=NOW), "target_kw must be a number"),
        (_dr(target_kw=True, end=NOW + 60, sent_at=NOW), "target_kw must be a number"),
        (_dr(target_kw="12", end=NOW + 60, sent_at=NOW), "target_kw must be a number"),
        (_dr(target_kw=-1, end=NOW + 60, sent_at=NOW), "must not be negative"),
        (_dr(target_kw=1, sent_at=NOW), "end missing"),
        (_dr(target_kw=1, end="2027-01-15T09:00:00", sent_at=NOW), "no UTC offset"),
        (_dr(target_kw=1, end="tomorrow", sent_at=NOW), "not an ISO 8601 time"),
        (_dr(target_kw=1, end=NOW + 60, sent_at=None), "sent_at must be a unix time"),
        (_dr(target_kw=1, end=NOW + 60, sent_at=-5), "out of range"),
        (_dr(target_kw=1, end=NOW + 60, sent_at=NOW + 3600), "in the future"),
        (_dr(target_kw=1, end=NOW + 60, sent_at=NOW, sites="north"), "sites must be a list"),
        (b'{"sites": ["' + b"x" * 5000 + b'"]}', "bytes (at most"),
    ],
)
def test_malformed_messages_are_rejected_with_the_reason(payload: bytes, words: str) -> None:
    with pytest.raises(DrRejected) as err:
        parse_dr(payload, NOW, 300)
    assert err.value.kind == "malformed" and words in str(err.value), str(err.value)


def test_stale_and_expired_messages_are_rejected_with_what_they_asked() -> None:
    with pytest.raises(DrRejected) as err:
        parse_dr(_dr(target_kw=800, end=NOW + 60, sent_at=NOW - 301), NOW, 300)
    assert err.value.kind == "stale" and "301 s ago" in str(err.value)
    assert err.value.request is not None and err.value.request.target_kw == 800
    with pytest.raises(DrRejected) as err:
        parse_dr(_dr(on=False, sent_at=NOW - 900), NOW, 300)
    assert err.value.kind == "stale" and err.value.request is not None and not err.value.request.on
    with pytest.raises(DrRejected) as err:
        parse_dr(_dr(target_kw=800, end=NOW, sent_at=NOW - 1), NOW, 300)
    assert err.value.kind == "expired" and "has passed" in str(err.value)
    assert parse_dr(_dr(target_kw=1, end=NOW + 1, sent_at=NOW + 30), NOW, 300).sent_at == NOW + 30  # skew


# --- DR requests applied to the controls --------------------------------------------------------------------
class _Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> float:
        return self.now


def _dr_handler(tmp_path: Path) -> tuple[MqttDemandResponse, ControlsStore, list[Event], _Clock]:
    clock = _Clock()
    events: list[Event] = []
    controls = ControlsStore(tmp_path / "controls.json", on_event=events.append, clock=clock)
    dr = MqttDemandResponse(
        MqttConfig(), DemandResponseMqtt(topic="site/dr"), controls, events.append, clock=clock
    )
    return dr, controls, events, clock


def _kinds(events: list[Event]) -> list[EventKind]:
    return [e.kind for e in events]


def test_requests_start_replace_and_stop_the_topics_event(tmp_path: Path) -> None:
    dr, controls, events, clock = _dr_handler(tmp_path)
    start = _dr(target_kw=1200, end=NOW + 3600, sent_at=NOW - 1)
    assert dr.handle(start) == "started"
    [ev] = controls.events(NOW)
    assert (ev.id, ev.source, ev.target_kw, ev.end) == (DR_EVENT_ID, "mqtt", 1200.0, NOW + 3600)
    assert dr.handle(start) == "unchanged"  # redelivered: nothing new, no event
    clock.now += 600
    assert dr.handle(start) == "unchanged"  # stale now, but what it asks is in force: no event either
    assert _kinds(events) == [EventKind.CURTAIL_DR_STARTED]
    assert dr.handle(_dr(target_kw=900, end=NOW + 7200, sent_at=clock.now, sites=["north"])) == "started"
    [ev] = controls.events(clock.now)
    assert ev.target_kw == 900 and ev.sites == ("north",)
    assert dr.handle(_dr(on=False, sent_at=clock.now)) == "stopped"
    assert controls.events(clock.now) == () and dr.handle(_dr(on=False, sent_at=clock.now)) == "unchanged"
    assert _kinds(events) == [EventKind.CURTAIL_DR_STARTED] * 2 + [EventKind.CURTAIL_DR_STOPPED]
    assert dr.applied == 3 and dr.ignored == 0


def test_stale_expired_malformed_and_refused_are_ignored_with_one_event_each(tmp_path: Path) -> None:
    dr, controls, events, _clock = _dr_handler(tmp_path)
    stale = _dr(target_kw=1200, end=NOW + 3600, sent_at=NOW - 400)
    assert dr.handle(stale) == "ignored" and dr.handle(stale) == "ignored"  # the second: no new event
    assert dr.handle(_dr(target_kw=1200, end=NOW - 1, sent_at=NOW)) == "ignored"
    assert dr.handle(b"{oops") == "ignored"
    assert dr.handle(_dr(target_kw=2e7, end=NOW + 60, sent_at=NOW)) == "ignored"  # ControlsStore's limit
    assert dr.handle(b"") == "empty"  # a retained message being cleared: nothing to say
    assert controls.events(NOW) == ()
    assert _kinds(events) == [EventKind.CURTAIL_DR_IGNORED] * 4
    texts = [e.message for e in events]
    assert "stale: sent 400 s ago" in texts[0] and "expired" in texts[1] and "malformed" in texts[2]
    assert "refused: target_kw out of range" in texts[3] and all("site/dr" in t for t in texts)
    assert all(e.level == "warning" for e in events) and dr.ignored == 5 and dr.received == 6


# --- state out, without a broker ----------------------------------------------------------------------------
def _topics(messages: list[tuple[str, bytes]]) -> list[str]:
    return [t for t, _ in messages]


def test_curtailment_messages_summary_changes_and_gone_miners() -> None:
    st = fleet(20)
    cs = status(st.miners, now=NOW)
    seen: dict[str, Any] = {}
    cfg = MqttConfig(full_every=10)
    messages, cleared = curtail_messages(cs, "p", seen, NOW, True, 1, cfg)
    assert _topics(messages)[0] == "p/curtailment" and len(messages) == 1 + len(st.miners) and not cleared
    summary = json.loads(messages[0][1])
    assert summary["enforce"] is True and summary["miners"] == len(st.miners)
    assert summary["by_target"]["sleep"] == 4 and summary["by_actual"]["unresponsive"] == 1
    assert summary["unresponsive"] == 1 and summary["not_controllable"] == 1
    assert summary["commands"] == {
        "sent": {"sleep": 4, "limit": 1, "wake": 2},
        "failed": {"sleep": 3},
        "retried": {"sleep": 2},
    }
    assert summary["target_kw"] == 15.0 and summary["load_kw"] == 12.5 and summary["shed_kw"] == 6.75
    assert summary["active_rules"] == ["economic", "strike"] and summary["failsafe"] == ""
    first = next(iter(st.miners))
    state = json.loads(dict(messages)[f"p/miners/{first}/curtailment"])
    assert (
        state["target"] == "sleep" and state["actual"] == "sleeping" and state["reason"]["rule"] == "economic"
    )
    assert (
        state["reason"]["text"] == ECON.text and state["controllable"] is True and state["since"] == NOW - 600
    )
    limited = json.loads(dict(messages)[f"p/miners/{list(st.miners)[2]}/curtailment"])
    assert limited["target"] == "limit 2500 W" and limited["power_limit_w"] == 2500
    # the next pass, nothing changed: the summary and only the miners whose periodic turn it is
    messages, _ = curtail_messages(cs, "p", seen, NOW, False, 2, cfg)
    assert _topics(messages)[0] == "p/curtailment" and len(messages) < 1 + len(st.miners) // 2
    # a miner woken: its state goes out at once; a miner gone: its retained topic is cleared
    second = list(st.miners)[1]
    miners = dict(cs.miners)
    miners[second] = dataclasses.replace(miners[second], actual=Actual.SLEEPING, verified_at=NOW)
    gone = list(st.miners)[-1]
    del miners[gone]
    messages, cleared = curtail_messages(
        dataclasses.replace(cs, miners=miners), "p", seen, NOW, False, 3, cfg
    )
    assert f"p/miners/{second}/curtailment" in _topics(messages)
    assert cleared == [f"p/miners/{gone}/curtailment"] and gone not in seen


def test_publisher_queues_curtailment_once_per_status() -> None:
    st = fleet(5)
    holder: dict[str, Any] = {"status": None}
    pub = MqttPublisher(MqttConfig(), st, lambda: holder["status"])
    pub.on_cycle()
    assert "fleetd/curtailment" not in pub._pending  # no status: no curtailment topics
    holder["status"] = status(st.miners)
    pub.on_cycle()
    assert "fleetd/curtailment" in pub._pending
    assert sum(t.endswith("/curtailment") for t in pub._pending) == 1 + len(st.miners)
    pub._pending.clear()
    pub.publish_curtailment(holder["status"])  # the loop publishing the status on_cycle already did
    assert not pub._pending
    miners = dict(holder["status"].miners)
    gone = next(iter(miners))
    del miners[gone]
    pub.publish_curtailment(dataclasses.replace(holder["status"], miners=miners))
    assert pub._pending[f"fleetd/miners/{gone}/curtailment"] == (b"", True)
    assert json.loads(pub._pending["fleetd/curtailment"][0])["miners"] == len(miners)


# --- the real broker ----------------------------------------------------------------------------------------
class Listener:
    """A paho subscriber to `<prefix>/#` collecting (topic, payload, retained) in arrival order."""

    def __init__(self, prefix: str) -> None:
        self.messages: list[tuple[str, str, bool]] = []
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
            self.messages.append((msg.topic, msg.payload.decode(), bool(msg.retain)))

    def on(self, topic: str) -> list[str]:
        with self._lock:
            return [p for t, p, _ in self.messages if t == topic]

    def retained(self) -> set[str]:
        with self._lock:
            return {t for t, p, r in self.messages if r and p}

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


def _publish(topic: str, payload: bytes, retain: bool = False) -> None:
    c = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id=f"sender-{uuid.uuid4().hex[:8]}")
    c.connect(*BROKER)
    c.loop_start()
    c.publish(topic, payload, qos=1, retain=retain).wait_for_publish(5)
    c.loop_stop()
    c.disconnect()


@pytest.fixture
def prefix() -> Iterator[str]:
    require_service("Mosquitto", *BROKER)
    name = f"fleetd-test-{uuid.uuid4().hex[:10]}"
    yield name
    c = paho.Client(paho.CallbackAPIVersion.VERSION2)  # clear the retained messages the test left
    c.connect(*BROKER)
    c.loop_start()
    seen: list[str] = []
    c.on_message = lambda _c, _u, m: seen.append(m.topic)
    c.subscribe(f"{name}/#")
    time.sleep(0.2)
    for topic in set(seen):
        c.publish(topic, b"", retain=True).wait_for_publish(2)
    c.loop_stop()
    c.disconnect()


def _wait(cond: Any, what: str, within: float = 10.0) -> None:
    deadline = time.monotonic() + within
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


@pytest.mark.mqtt
def test_curtailment_state_is_published_retained(prefix: str) -> None:
    st = fleet(3)
    cs = status(st.miners)
    pub = MqttPublisher(MqttConfig(topic_prefix=prefix, client_id=f"fleetd-{prefix}", qos=1), st, lambda: cs)
    pub.start()
    try:
        _wait(lambda: pub.connected, "connected")
        pub.on_cycle()
        _wait(lambda: pub.queue_depth == 0, "the queue sent")
        late = Listener(prefix)  # subscribes after the fact: gets the retained messages
        try:
            ids = list(st.miners)
            wanted = {f"{prefix}/curtailment"} | {f"{prefix}/miners/{m}/curtailment" for m in ids}
            _wait(lambda: wanted <= late.retained(), "retained curtailment topics")
            summary = json.loads(late.on(f"{prefix}/curtailment")[-1])
            assert summary["by_target"] == {"run": len(ids) - 4, "sleep": 3, "limit": 1}
            state = json.loads(late.on(f"{prefix}/miners/{ids[3]}/curtailment")[-1])
            assert (
                state["actual"] == "unresponsive"
                and state["failures"] == 3
                and state["error"] == "not complied"
            )
        finally:
            late.close()
    finally:
        pub.stop()


@pytest.mark.mqtt
async def test_daemon_takes_dr_requests_from_mqtt_and_publishes_curtailment(
    prefix: str, tmp_path: Path
) -> None:
    topic = f"{prefix}/dr/in"
    mqtt = {"topic_prefix": prefix, "client_id": f"fleetd-{prefix}", "qos": 1}
    curtailment = {"mqtt_dr": {"topic": topic, "max_age_s": 120}}
    listener = Listener(prefix)
    try:
        async with running(1, tmp_path, api=False, block=DR_BLOCK, mqtt=mqtt, curtailment=curtailment) as (
            d,
            _s,
            miners,
        ):
            dr = d.mqtt_dr
            assert dr is not None and d.curtail_controls is not None
            await until(dr.subscribed.is_set, what="subscribed to the DR topic")
            controls = d.curtail_controls
            now = time.time()
            _publish(topic, _dr(target_kw=750, end=now + 3600, sent_at=now), retain=True)
            await until(lambda: bool(controls.events()), what="the DR event")
            [ev] = controls.events()
            assert (ev.id, ev.source, ev.target_kw) == (DR_EVENT_ID, "mqtt", 750.0)
            _publish(topic, _dr(target_kw=500, end=now + 3600, sent_at=now - 3600))
            _publish(topic, b'{"target_kw": "lots"}')
            ignored = lambda: [e for e in d.events if e.kind is EventKind.CURTAIL_DR_IGNORED]  # noqa: E731
            await until(lambda: len(ignored()) == 2, what="two ignored events")
            assert "stale" in ignored()[0].message and "malformed" in ignored()[1].message
            assert [e.target_kw for e in controls.events()] == [750.0]  # unchanged by either
            # curtailment state out through the daemon's publisher (a status set by hand unless the
            # daemon's own loop publishes one)
            if getattr(d, "curtail_status", None) is None:
                d.curtail_status = status([miners[0].host])
            await until(lambda: bool(listener.on(f"{prefix}/curtailment")), what="curtailment summary")
            await until(
                lambda: bool(listener.on(f"{prefix}/miners/{miners[0].host}/curtailment")), what="state"
            )
        assert d.mqtt_dr is None and not dr.connected
        # a restart: the retained request is delivered again and changes nothing (the event was kept)
        async with running(1, tmp_path, api=False, block=DR_BLOCK, mqtt=mqtt, curtailment=curtailment) as (
            d2,
            _s,
            _m,
        ):
            dr2 = d2.mqtt_dr
            assert dr2 is not None and d2.curtail_controls is not None
            await until(lambda: dr2.received >= 1, what="the retained request")
            assert [e.target_kw for e in d2.curtail_controls.events()] == [750.0]
            started = [e for e in d2.events if e.kind is EventKind.CURTAIL_DR_STARTED]
            assert not started and dr2.applied == 0
            _publish(topic, _dr(on=False, sent_at=time.time()), retain=True)
            await until(lambda: not d2.curtail_controls.events(), what="the DR event stopped")  # type: ignore[union-attr]
    finally:
        listener.close()


def test_no_dr_subscriber_without_its_sections(tmp_path: Path) -> None:
    from fleetd.config import parse_config
    from fleetd.exporters.mqtt_curtail import start_dr

    class _D:
        def __init__(self, data: dict[str, Any]) -> None:
            self.config = parse_config(data)
            self.curtail_controls = ControlsStore(tmp_path / "c.json")
            self.events: list[Event] = []
            self.emit = self.events.append

    assert start_dr(_D({"curtailment": {"mqtt_dr": {"topic": "t"}}})) is None  # no [mqtt]
    assert start_dr(_D({"mqtt": {}, "curtailment": {}})) is None  # no mqtt_dr
    assert start_dr(_D({"mqtt": {}})) is None
    assert SLEEP.action.value == "sleep"
