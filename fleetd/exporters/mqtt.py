"""MQTT publishing after each poll cycle: fleet summary, per-miner state (when changed), availability.

Topics under the configured prefix: `<prefix>/status` ("online", or "offline": clean stop and the last
will), `<prefix>/fleet` (summary JSON), `<prefix>/miners/<id>/state` (compact JSON); with curtailment,
`<prefix>/curtailment` and `<prefix>/miners/<id>/curtailment` (fleetd.exporters.mqtt_curtail). The event
loop only builds messages; a sender thread hands them to paho, whose own network thread talks to the
broker and reconnects with backoff. Pending messages are kept one per topic (the newest wins), so a
broker that is down holds at most one message per miner; beyond `queue_size` topics new messages are
dropped and counted.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import threading
import time
import zlib
from collections import OrderedDict
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import paho.mqtt.client as paho

from fleetd.daemon.state import CycleStats, FleetState, Health, MinerRecord
from fleetd.numbers import count, finite, hashrate_ths, json_bytes, power_w, temp_c
from fleetd.view_errors import VIEW_ERRORS

if TYPE_CHECKING:
    from fleetd.config import MqttConfig
    from fleetd.curtail.status import CurtailStatus
    from fleetd.exporters.mqtt_discovery import HaDiscovery

log = logging.getLogger("fleetd.mqtt")

RECONNECT_MIN_S = 1
RECONNECT_MAX_S = 60
CONNECT_TIMEOUT_S = 5.0
BACKLOG_MAX = 10_000  # packets paho may hold unsent before the sender waits (a connected but slow broker)


def topic_id(miner_id: str) -> str:
    """A miner id usable as one topic level: no '/', '+', '#'."""
    return miner_id.replace("/", "_").replace("+", "_").replace("#", "_") or "_"


def miner_state(rec: MinerRecord) -> dict[str, Any]:
    """The compact JSON state of one miner."""
    out: dict[str, Any] = {"id": rec.id, "host": rec.host, "health": rec.health.value}
    if rec.labels.site:
        out["site"] = rec.labels.site
    if rec.labels.rack:
        out["rack"] = rec.labels.rack
    ident = rec.identity
    if ident is not None:
        out["model"] = ident.model
        out["vendor"] = ident.vendor
        out["firmware"] = ident.firmware
    snap = rec.snapshot
    if rec.health is Health.UP and snap is not None:
        out.update(  # impossible figures (NaN, inf, out of range, wrong type) as null, as in the API
            mining=snap.is_mining,
            mode=snap.mode.value,
            hashrate_ths=hashrate_ths(snap.hashrate_ths),
            expected_hashrate_ths=hashrate_ths(snap.expected_hashrate_ths),
            power_w=power_w(snap.power_w),
            temp_c=temp_c(snap.temp_c),
            fans_rpm=[count(f.rpm) for f in snap.fans],
            faults=[f.code for f in snap.errors],
            uptime_s=count(snap.uptime_s),
            polled_at=snap.polled_at,
        )
        eco = rec.economics
        if eco is not None:
            out.update(
                power_w=power_w(eco.power_w),
                power_source=eco.power_source,
                profit_per_day=finite(eco.profit_per_day),
                efficiency_j_per_th=finite(eco.efficiency_j_per_th),
                currency=eco.currency,
            )
    else:
        out["failures"] = rec.failures
        out["last_error"] = rec.last_error
        out["last_ok_at"] = rec.last_ok_at
    return out


def fingerprint(rec: MinerRecord) -> tuple[Any, ...]:
    """What must change for a miner's state to be republished before its periodic turn."""
    snap = rec.snapshot
    if rec.health is not Health.UP or snap is None:
        return (rec.health,)
    # Impossible figures (NaN, inf, absurd) count as unknown: round() of them would raise.
    ths = hashrate_ths(snap.hashrate_ths) or 0.0
    expected = hashrate_ths(snap.expected_hashrate_ths) or ths or 1.0
    hr = round(ths / max(expected, 1e-9) * 20)  # 5 % steps of expected
    power = round((power_w(snap.power_w) or 0.0) / 50)  # 50 W steps
    temp = round((temp_c(snap.temp_c) or 0.0) / 3)  # 3 deg C steps
    profitable = rec.economics.profitable if rec.economics is not None else None
    return (rec.health, snap.is_mining, snap.mode, len(snap.errors), hr, power, temp, profitable)


def fleet_summary(state: FleetState, now: float) -> dict[str, Any]:
    up = down = unknown = mining = 0
    ths = watts = 0.0
    for rec in state.miners.values():
        health = rec.health
        if health is Health.UP:
            up += 1
            snap = rec.snapshot
            if snap is None:
                continue
            try:  # one miner's impossible figure (counted as unknown) must not make the totals absurd
                eco = rec.economics
                raw_w = eco.power_w if eco is not None and eco.power_w is not None else snap.power_w
                m, t, w = snap.is_mining is True, hashrate_ths(snap.hashrate_ths), power_w(raw_w)
            except Exception as exc:
                VIEW_ERRORS.record("mqtt", rec.id, exc)
                continue
            mining += m
            ths += t or 0.0
            watts += w or 0.0
        elif health is Health.DOWN:
            down += 1
        else:
            unknown += 1
    out: dict[str, Any] = {
        "at": now,
        "miners": len(state.miners),
        "up": up,
        "down": down,
        "unknown": unknown,
        "mining": mining,
        "hashrate_ths": ths,
        "power_w": watts,
    }
    if state.economics is not None:
        out["profit_per_day"] = state.economics.profit_per_day
        out["revenue_per_day"] = state.economics.total.revenue_per_day
        out["power_cost_per_day"] = state.economics.total.power_cost_per_day
    c = state.last_cycle
    if c is not None:
        out["cycle"] = {
            "ended_at": c.ended_at,
            "duration_s": c.ended_at - c.started_at,
            "polled": c.polled,
            "ok": c.ok,
            "failed": c.failed,
            "skipped": c.skipped,
            "overran": c.overran,
        }
    return out


def new_client(c: MqttConfig, client_id: str) -> paho.Client:
    """A paho client with the [mqtt] section's credentials, TLS and reconnect settings (not connected)."""
    client = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id=client_id, protocol=paho.MQTTv311)
    if c.username is not None or c.password is not None:
        password = c.password.resolve().get_secret_value() if c.password is not None else None
        client.username_pw_set(c.username or "", password)
    if c.tls:
        client.tls_set(ca_certs=c.ca_file or None)
    client.reconnect_delay_set(RECONNECT_MIN_S, RECONNECT_MAX_S)
    client.connect_timeout = CONNECT_TIMEOUT_S
    return client


def default_client_id(c: MqttConfig) -> str:
    return c.client_id or f"fleetd-{socket.gethostname()}"


class MqttPublisher:
    """Start with `start()`, feed with `on_cycle(stats)` (a Daemon.on_cycle hook), end with `stop()`.

    `curtail` (the daemon's curtail_status, read at each cycle) adds the curtailment topics; the daemon's
    curtailment loop may also call `publish_curtailment(status)` after each pass."""

    def __init__(
        self,
        config: MqttConfig,
        state: FleetState | Any,
        curtail: Callable[[], CurtailStatus | None] | None = None,
    ) -> None:
        self.config = config
        self._state_of = state if callable(state) else (lambda: state)
        self.prefix = config.topic_prefix
        self.status_topic = f"{self.prefix}/status"
        self.connected = False
        self.published = 0
        self.dropped = 0
        self.publish_errors = 0  # publishes the client raised on (counted in dropped too)
        self.cycles = 0
        self._pending: OrderedDict[str, tuple[bytes, bool]] = OrderedDict()
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._resync = True  # publish every miner at the next cycle (first one, and after a reconnect)
        self._seen: dict[str, tuple[Any, ...]] = {}
        self._sender: threading.Thread | None = None
        self.client: paho.Client | None = None
        self._curtail_of = curtail
        self._curtail_last: CurtailStatus | None = None
        self._curtail_seen: dict[str, tuple[Any, ...]] = {}
        self._curtail_resync = True
        self._curtail_passes = 0
        self.discovery: HaDiscovery | None = None  # Home Assistant discovery ([mqtt.homeassistant])
        if config.homeassistant.enabled:
            from fleetd.exporters.mqtt_discovery import HaDiscovery

            self.discovery = HaDiscovery(config, self.status_topic, self._enqueue, curtail)

    @property
    def queue_depth(self) -> int:
        return len(self._pending)

    # --- lifecycle -----------------------------------------------------------------------------------------
    def start(self) -> None:
        """Connect in the background (never blocks on the broker); reconnects with backoff by itself."""
        c = self.config
        client = new_client(c, default_client_id(c))
        client.will_set(self.status_topic, b"offline", qos=1, retain=True)
        client.max_queued_messages_set(BACKLOG_MAX)  # QoS 1/2 messages not yet acknowledged
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.connect_async(c.host, c.port, keepalive=c.keepalive_s)
        client.loop_start()
        self.client = client
        self._sender = threading.Thread(target=self._send_loop, name="fleetd-mqtt-send", daemon=True)
        self._sender.start()
        log.info("MQTT: publishing to %s:%d under %s/", c.host, c.port, self.prefix)

    def stop(self, timeout: float = 2.0) -> None:
        """Say "offline", flush briefly, disconnect (blocking: call it in a thread)."""
        client = self.client
        if client is None:
            return
        self._stopping.set()
        self._wake.set()
        if self._sender is not None:
            self._sender.join(timeout)
        if self.connected:
            info = client.publish(self.status_topic, b"offline", qos=1, retain=True)
            with contextlib.suppress(Exception):
                info.wait_for_publish(timeout)
        self.connected = False  # a clean stop: no "reconnecting" warning
        client.disconnect()
        client.loop_stop()
        self.client = None

    def _on_connect(self, client: paho.Client, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
        if reason.is_failure:
            log.warning(
                "MQTT: broker %s:%d refused the connection: %s", self.config.host, self.config.port, reason
            )
            return
        self.connected = True
        self._resync = True
        self._curtail_resync = True
        client.publish(self.status_topic, b"online", qos=1, retain=True)
        log.info("MQTT: connected to %s:%d", self.config.host, self.config.port)
        self._wake.set()

    def _on_disconnect(self, _c: Any, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
        if self.connected:
            log.warning(
                "MQTT: disconnected from %s:%d (%s); reconnecting", self.config.host, self.config.port, reason
            )
        self.connected = False

    # --- publishing ----------------------------------------------------------------------------------------
    def on_cycle(self, _stats: CycleStats | None = None) -> None:
        """Queue the fleet summary and the states that changed or whose periodic turn it is (loop thread)."""
        state = self._state_of()
        now = time.time()
        self.cycles += 1
        full, self._resync = self._resync, False
        every = self.config.full_every
        cycle = self.cycles
        retain = self.config.retain
        seen = self._seen
        messages: list[tuple[str, bytes]] = []
        try:
            messages.append((f"{self.prefix}/fleet", json_bytes(fleet_summary(state, now))))
        except Exception as exc:  # the miners' own states still go out
            VIEW_ERRORS.record("mqtt", "(fleet summary)", exc)
        for mid, rec in state.miners.items():
            try:
                fp = fingerprint(rec)
                due = full or seen.get(mid) != fp or (cycle + zlib.crc32(mid.encode())) % every == 0
                if due:
                    payload = json_bytes(miner_state(rec))
            except Exception as exc:  # one miner's broken record must not stop the others' messages
                VIEW_ERRORS.record("mqtt", mid, exc)
                continue
            if due:
                seen[mid] = fp
                messages.append((f"{self.prefix}/miners/{topic_id(mid)}/state", payload))
        if len(seen) > len(state.miners):  # miners removed from the configuration
            for mid in [m for m in seen if m not in state.miners]:
                del seen[mid]
        self._enqueue(messages, retain)
        if self.discovery is not None:
            self.discovery.cycle(state, now, full)
        if self._curtail_of is not None:
            status = self._curtail_of()
            if status is not None:
                self.publish_curtailment(status)

    def publish_curtailment(self, status: CurtailStatus) -> None:
        """Queue the curtailment summary and the miners' curtailment states that changed or are due (loop
        thread); a status already published is skipped, so the loop and on_cycle may both call it."""
        if status is self._curtail_last and not self._curtail_resync:
            return
        from fleetd.exporters.mqtt_curtail import curtail_messages

        full, self._curtail_resync = self._curtail_resync, False
        self._curtail_last = status
        self._curtail_passes += 1
        messages, cleared = curtail_messages(
            status, self.prefix, self._curtail_seen, time.time(), full, self._curtail_passes, self.config
        )
        retain = self.config.retain
        self._enqueue(messages, retain)
        if cleared and retain:  # an empty retained message removes a gone miner's retained state
            self._enqueue([(t, b"") for t in cleared], True)

    def _enqueue(self, messages: list[tuple[str, bytes]], retain: bool) -> None:
        limit = self.config.queue_size
        dropped = 0
        with self._lock:
            pending = self._pending
            for topic, payload in messages:
                if topic in pending:
                    pending[topic] = (payload, retain)  # the newest state replaces the unsent one
                elif len(pending) < limit:
                    pending[topic] = (payload, retain)
                else:
                    dropped += 1
            before = self.dropped
            self.dropped += dropped
        if dropped and (before == 0 or self.dropped // 10_000 > before // 10_000):
            log.error("MQTT: queue full (broker slow or down): %d messages dropped", self.dropped)
        self._wake.set()

    def _send_loop(self) -> None:
        qos = self.config.qos
        while not self._stopping.is_set():
            self._wake.wait(1.0)
            self._wake.clear()
            while self.connected and not self._stopping.is_set():
                client = self.client
                if client is None:
                    return
                if len(getattr(client, "_out_packet", ())) >= BACKLOG_MAX:  # let paho's thread catch up
                    time.sleep(0.05)
                    continue
                with self._lock:
                    if not self._pending:
                        break
                    topic, (payload, retain) = self._pending.popitem(last=False)
                try:
                    ok = client.publish(topic, payload, qos=qos, retain=retain).rc == paho.MQTT_ERR_SUCCESS
                except Exception as exc:  # a message the client refuses must not end publishing
                    ok = False
                    if not self.publish_errors:
                        log.error("MQTT: publishing %s failed: %s: %s", topic, type(exc).__name__, exc)
                    self.publish_errors += 1
                with self._lock:  # the counters are also written on the event loop's thread
                    if ok:
                        self.published += 1
                    else:  # refused, or the connection dropped between the check and the publish
                        self.dropped += 1
