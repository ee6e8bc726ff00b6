"""Curtailment over MQTT: state out (summary and per-miner topics) and demand-response requests in.

Out, under the [mqtt] prefix (retained per [mqtt] retain): `<prefix>/curtailment` (fleet summary JSON, every
pass) and `<prefix>/miners/<id>/curtailment` (target, verified state, reason; when changed, else every
`full_every` passes). Built here, queued by MqttPublisher.publish_curtailment.

In: `[curtailment.mqtt_dr] topic` carries JSON `{"target_kw": 1200, "end": <unix or ISO 8601>, "sent_at":
<unix or ISO 8601>}` (optional `"sites": [...]`, `"on": true`) to start or replace the topic's single DR
event, or `{"on": false, "sent_at": ...}` to stop it. A message sent more than `max_age_s` ago, one whose end
has passed, or a malformed one is ignored with a curtail_dr_ignored event. The subscriber uses the [mqtt]
connection settings with its own client id (`<client_id>-dr`).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import math
import threading
import time
import zlib
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

import orjson

from fleetd.curtail.model import Action, Actual
from fleetd.curtail.status import CurtailStatus, MinerCurtailStatus
from fleetd.daemon.curtail_controls import ControlsError, ControlsStore
from fleetd.daemon.events import Event, EventKind
from fleetd.exporters.mqtt import default_client_id, new_client, topic_id
from fleetd.exporters.prometheus_curtail import wants_change

if TYPE_CHECKING:
    import paho.mqtt.client as paho

    from fleetd.config import MqttConfig
    from fleetd.curtail.config import DemandResponseMqtt

log = logging.getLogger("fleetd.mqtt.curtail")

DR_EVENT_ID = "mqtt"  # the DR topic drives one event, replaced by each new request
FUTURE_SKEW_S = 60.0  # a sent_at this far ahead of our clock is refused (it would never go stale)
MAX_PAYLOAD = 4096
_KEYS = frozenset({"on", "target_kw", "end", "sent_at", "sites"})


# --- state out ----------------------------------------------------------------------------------------------
def summary(status: CurtailStatus, now: float) -> dict[str, Any]:
    """The fleet curtailment summary JSON."""
    by_target = {a.value: 0 for a in Action}
    by_actual = {a.value: 0 for a in Actual}
    unresponsive = not_controllable = 0
    for m in status.miners.values():
        by_target[m.target.action.value] += 1
        by_actual[m.actual.value] += 1
        unresponsive += m.actual is Actual.UNRESPONSIVE
        not_controllable += not m.controllable and wants_change(m)
    return {
        "at": now,
        "decided_at": status.decided_at,
        "enforce": status.enforce,
        "failsafe": status.failsafe,
        "active_rules": list(status.active_rules),
        "load_kw": status.load_kw,
        "target_kw": status.target_kw,
        "shed_kw": status.shed_kw,
        "miners": len(status.miners),
        "curtailed": len(status.miners) - by_target[Action.RUN.value],  # asked to sleep or limit power
        "by_target": by_target,
        "by_actual": by_actual,
        "unresponsive": unresponsive,
        "not_controllable": not_controllable,
        "commands": {
            "sent": dict(status.sent),
            "failed": dict(status.failed),
            "retried": dict(status.retried),
        },
        "dr_events": [
            {"id": e.id, "target_kw": e.target_kw, "start": e.start, "end": e.end, "source": e.source}
            for e in status.controls.events
        ],
        "pins": len(status.controls.pins),
    }


def miner_state(m: MinerCurtailStatus) -> dict[str, Any]:
    """One miner's curtailment state JSON."""
    return {
        "id": m.miner_id,
        "target": str(m.target),
        "action": m.target.action.value,
        "power_limit_w": m.target.power_limit_w,
        "actual": m.actual.value,
        "reason": {"kind": m.reason.kind.value, "rule": m.reason.rule, "text": m.reason.text},
        "since": m.since,
        "verified_at": m.verified_at or None,
        "controllable": m.controllable,
        "in_flight": m.in_flight,
        "waiting": m.waiting,
        "failures": m.failures,
        "error": m.last_error,
    }


def fingerprint(m: MinerCurtailStatus) -> tuple[Any, ...]:
    """What must change for a miner's curtailment state to be republished before its periodic turn (the
    reason's text is left out: its figures move every pass)."""
    return (
        m.target,
        m.actual,
        m.reason.kind,
        m.reason.rule,
        m.controllable,
        m.in_flight,
        m.waiting,
        m.failures,
        m.last_error,
    )


def curtail_messages(
    status: CurtailStatus,
    prefix: str,
    seen: dict[str, tuple[Any, ...]],
    now: float,
    full: bool,
    passes: int,
    config: MqttConfig,
) -> tuple[list[tuple[str, bytes]], list[str]]:
    """The messages of one pass (summary first) and the topics of miners gone from the status; updates
    `seen` (miner id -> fingerprint last published)."""
    every = config.full_every
    messages = [(f"{prefix}/curtailment", orjson.dumps(summary(status, now)))]
    for mid, m in status.miners.items():
        fp = fingerprint(m)
        if full or seen.get(mid) != fp or (passes + zlib.crc32(mid.encode())) % every == 0:
            seen[mid] = fp
            messages.append((f"{prefix}/miners/{topic_id(mid)}/curtailment", orjson.dumps(miner_state(m))))
    cleared = []
    if len(seen) > len(status.miners):  # every miner of the status is in `seen` by now
        for mid in [m for m in seen if m not in status.miners]:
            del seen[mid]
            cleared.append(f"{prefix}/miners/{topic_id(mid)}/curtailment")
    return messages, cleared


# --- demand response in -------------------------------------------------------------------------------------
class DrRejected(ValueError):
    """A DR message that is not acted on: `kind` is "malformed", "stale" or "expired"."""

    def __init__(self, kind: str, why: str, request: DrRequest | None = None) -> None:
        super().__init__(f"{kind}: {why}")
        self.kind = kind
        self.request = request


@dataclass(frozen=True, slots=True)
class DrRequest:
    """A valid DR message: start (or replace) the event with a kW target until `end`, or stop it."""

    on: bool
    sent_at: float
    target_kw: float | None = None
    end: float | None = None
    sites: tuple[str, ...] = ()


def _when(value: Any, what: str) -> float:
    """A unix time (number) or an ISO 8601 time with an offset, as unix time."""
    if isinstance(value, str):
        try:
            dt = datetime.fromisoformat(value.strip())
        except ValueError:
            raise DrRejected("malformed", f"{what} {value!r} is not an ISO 8601 time") from None
        if dt.tzinfo is None:
            raise DrRejected("malformed", f"{what} {value!r} has no UTC offset (add Z or +00:00)")
        return dt.timestamp()
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise DrRejected("malformed", f"{what} must be a unix time or an ISO 8601 string, got {value!r}")
    if not 0 < value < 1e11:
        raise DrRejected("malformed", f"{what} out of range: {value!r}")
    return float(value)


def parse_dr(payload: bytes | str, now: float, max_age_s: float) -> DrRequest:
    """The request a DR message carries, judged at `now`; DrRejected when malformed, stale or expired."""
    if len(payload) > MAX_PAYLOAD:
        raise DrRejected("malformed", f"payload of {len(payload)} bytes (at most {MAX_PAYLOAD})")
    try:
        data = orjson.loads(payload)
    except orjson.JSONDecodeError as exc:
        raise DrRejected("malformed", f"not JSON ({exc})") from None
    if not isinstance(data, dict):
        raise DrRejected("malformed", f"expected a JSON object, got {type(data).__name__}")
    unknown = sorted(set(data) - _KEYS)
    if unknown:
        raise DrRejected(
            "malformed", f"unknown keys {', '.join(unknown)} (known: {', '.join(sorted(_KEYS))})"
        )
    on = data.get("on", True)
    if not isinstance(on, bool):
        raise DrRejected("malformed", f"on must be true or false, got {on!r}")
    if "sent_at" not in data:
        raise DrRejected("malformed", "sent_at missing (needed to tell a fresh request from a stale one)")
    sent_at = _when(data["sent_at"], "sent_at")
    if sent_at > now + FUTURE_SKEW_S:
        raise DrRejected("malformed", f"sent_at is {sent_at - now:.0f} s in the future (clocks disagree?)")
    if not on:
        request = DrRequest(on=False, sent_at=sent_at)
    else:
        target = data.get("target_kw")
        if isinstance(target, bool) or not isinstance(target, int | float) or not math.isfinite(target):
            raise DrRejected("malformed", f"target_kw must be a number of kW, got {target!r}")
        if target < 0:
            raise DrRejected("malformed", f"target_kw must not be negative, got {target!r}")
        if "end" not in data:
            raise DrRejected("malformed", "end missing (every DR request needs an expiry)")
        end = _when(data["end"], "end")
        sites = data.get("sites", [])
        if not isinstance(sites, list) or not all(isinstance(s, str) and s.strip() for s in sites):
            raise DrRejected("malformed", f"sites must be a list of site names, got {sites!r}")
        request = DrRequest(True, sent_at, float(target), end, tuple(s.strip() for s in sites))
        if end <= now:
            raise DrRejected("expired", f"end {_iso(end)} has passed", request)
    age = now - sent_at
    if age > max_age_s:
        raise DrRejected("stale", f"sent {age:.0f} s ago (max_age_s {max_age_s:g})", request)
    return request


def _iso(t: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))


class MqttDemandResponse:
    """Subscribes to the DR topic and applies its requests to the ControlsStore on the event loop.

    `start()` on the event loop's thread (it never blocks on the broker; paho reconnects by itself);
    `stop()` blocks: call it in a thread."""

    def __init__(
        self,
        mqtt: MqttConfig,
        dr: DemandResponseMqtt,
        controls: ControlsStore,
        emit: Callable[[Event], None],
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.mqtt = mqtt
        self.topic = dr.topic
        self.max_age_s = dr.max_age_s
        self.controls = controls
        self._emit = emit
        self._clock = clock
        self.connected = False
        self.subscribed = threading.Event()
        self.received = self.applied = self.ignored = 0
        self._ignored_seen: OrderedDict[bytes, None] = OrderedDict()  # digests: one event per message
        self._loop: asyncio.AbstractEventLoop | None = None
        self.client: paho.Client | None = None

    def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        client = new_client(self.mqtt, default_client_id(self.mqtt) + "-dr")
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_subscribe = self._on_subscribe
        client.on_message = self._on_message
        client.connect_async(self.mqtt.host, self.mqtt.port, keepalive=self.mqtt.keepalive_s)
        client.loop_start()
        self.client = client
        log.info(
            "MQTT: demand-response requests from %s on %s:%d", self.topic, self.mqtt.host, self.mqtt.port
        )

    def stop(self) -> None:
        client, self.client = self.client, None
        if client is None:
            return
        self.connected = False
        client.disconnect()
        client.loop_stop()

    # --- paho's thread -------------------------------------------------------------------------------------
    def _on_connect(self, client: paho.Client, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
        if reason.is_failure:
            log.warning(
                "MQTT DR: broker %s:%d refused the connection: %s", self.mqtt.host, self.mqtt.port, reason
            )
            return
        self.connected = True
        client.subscribe(self.topic, qos=1)

    def _on_subscribe(self, _c: Any, _u: Any, _mid: Any, _reasons: Any, _p: Any) -> None:
        self.subscribed.set()

    def _on_disconnect(self, _c: Any, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
        if self.connected:
            log.warning("MQTT DR: disconnected (%s); reconnecting", reason)
        self.connected = False
        self.subscribed.clear()

    def _on_message(self, _c: Any, _u: Any, msg: paho.MQTTMessage) -> None:
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
            loop.call_soon_threadsafe(self.handle, bytes(msg.payload))

    # --- the event loop's thread ---------------------------------------------------------------------------
    def handle(self, payload: bytes) -> str:
        """Apply one message: "started", "stopped", "unchanged", "ignored" or "empty"."""
        self.received += 1
        if not payload.strip():  # a retained message being cleared
            return "empty"
        now = self._clock()
        try:
            req = parse_dr(payload, now, self.max_age_s)
        except DrRejected as exc:
            if exc.kind == "stale" and exc.request is not None and self._in_force(exc.request):
                return "unchanged"  # the retained request redelivered after a reconnect or restart
            return self._ignore(str(exc), payload)
        if not req.on:
            ev = self.controls.stop_event(DR_EVENT_ID, source="mqtt")
            if ev is None:
                return "unchanged"
            self.applied += 1
            return "stopped"
        if self._in_force(req):
            return "unchanged"
        assert req.target_kw is not None and req.end is not None
        try:
            self.controls.start_event(
                req.target_kw, req.end, sites=req.sites, source="mqtt", event_id=DR_EVENT_ID
            )
        except ControlsError as exc:
            return self._ignore(f"refused: {exc}", payload)
        self.applied += 1
        return "started"

    def _in_force(self, req: DrRequest) -> bool:
        """Whether the topic's event already is what `req` asks for."""
        current = next((e for e in self.controls.scheduled_events() if e.id == DR_EVENT_ID), None)
        if not req.on:
            return current is None
        return (
            current is not None
            and current.target_kw == req.target_kw
            and current.end == req.end
            and current.sites == req.sites
        )

    def _ignore(self, why: str, payload: bytes) -> str:
        self.ignored += 1
        digest = hashlib.blake2b(payload, digest_size=16).digest()
        if digest in self._ignored_seen:  # the same message again (redelivered): one event is enough
            return "ignored"
        self._ignored_seen[digest] = None
        if len(self._ignored_seen) > 100:
            self._ignored_seen.popitem(last=False)
        msg = f"MQTT DR message on {self.topic} ignored: {why}"
        log.warning("%s", msg)
        self._emit(Event(EventKind.CURTAIL_DR_IGNORED, msg, level="warning"))
        return "ignored"


# --- the daemon's hooks -------------------------------------------------------------------------------------
def start_dr(daemon: Any) -> MqttDemandResponse | None:
    """Start the DR subscriber of a Daemon with [mqtt], [curtailment.mqtt_dr] and its ControlsStore."""
    config = daemon.config
    controls = getattr(daemon, "curtail_controls", None)
    if config.mqtt is None or config.curtailment is None or controls is None:
        return None
    section = config.curtailment_config()
    if section is None or section.mqtt_dr is None:
        return None
    try:
        dr = MqttDemandResponse(config.mqtt, section.mqtt_dr, controls, daemon.emit)
        dr.start()
    except Exception as exc:  # e.g. an unreadable TLS CA file: the rest goes on without inbound DR
        log.error("MQTT demand response disabled: %s: %s", type(exc).__name__, exc)
        return None
    return dr


async def stop_dr(daemon: Any) -> None:
    """Stop a Daemon's DR subscriber, if it has one."""
    dr = getattr(daemon, "mqtt_dr", None)
    if dr is not None:
        daemon.mqtt_dr = None
        await asyncio.to_thread(dr.stop)


__all__ = [
    "DR_EVENT_ID",
    "DrRejected",
    "DrRequest",
    "MqttDemandResponse",
    "curtail_messages",
    "miner_state",
    "parse_dr",
    "start_dr",
    "stop_dr",
    "summary",
]
