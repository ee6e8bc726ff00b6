"""Home Assistant MQTT discovery for fleet and per-site sensors ([mqtt.homeassistant], off by default).

Retained config messages at `<discovery_prefix>/sensor/<node_id>/<object_id>/config`: one device for the
fleet and one per site (sites are the miners' `site` labels), each sensor reading a JSON state topic with a
`value_template`, and available while `<prefix>/status` says "online" (fleetd's last will says
"offline"). Fleet sensors read `<prefix>/fleet` (and `<prefix>/curtailment` for the curtailed count);
sites get their own state topic, `<prefix>/sites/<site>/state`, published each cycle. The configs are
sent on every (re)connect and whenever the set of sites or sensors changes; a site that disappears has
its configs cleared (an empty retained message removes the entity). Built here, queued by MqttPublisher.
"""

from __future__ import annotations

import logging
import re
import zlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import orjson

from fleetd import __version__
from fleetd.curtail.model import Action
from fleetd.daemon.state import FleetState, Health
from fleetd.numbers import MAX_PROFIT_USD_PER_DAY, hashrate_ths, number, power_w
from fleetd.view_errors import VIEW_ERRORS

if TYPE_CHECKING:
    from fleetd.config import MqttConfig
    from fleetd.curtail.status import CurtailStatus

log = logging.getLogger("fleetd.mqtt")

_UNSAFE = re.compile(r"[^A-Za-z0-9_-]")
_AVAILABILITY = {"payload_available": "online", "payload_not_available": "offline"}  # fleetd/status


def slug(name: str) -> str:
    """A discovery object/node id and topic level: [A-Za-z0-9_-] only, distinct for distinct names."""
    clean = _UNSAFE.sub("_", name)
    return clean if clean == name and name else f"{clean}_{zlib.crc32(name.encode()):08x}"


@dataclass(frozen=True, slots=True)
class Sensor:
    """One sensor of a device: the key it reads from its state topic's JSON, and how HA should show it."""

    key: str
    name: str
    unit: str | None = None
    device_class: str | None = None
    icon: str | None = None


HASHRATE = Sensor("hashrate_ths", "Hashrate", "TH/s", icon="mdi:pickaxe")
POWER = Sensor("power_w", "Power", "W", "power")
UP = Sensor("up", "Miners up", icon="mdi:server")
DOWN = Sensor("down", "Miners down", icon="mdi:server-off")
CURTAILED = Sensor("curtailed", "Miners curtailed", icon="mdi:power-sleep")


def profit(currency: str) -> Sensor:
    # Not device_class "monetary": HA allows it only with state_class "total", and this is a rate.
    return Sensor("profit_per_day", "Profit per day", f"{currency}/d", icon="mdi:cash")


def site_states(state: FleetState, curtail: CurtailStatus | None, now: float) -> dict[str, dict[str, Any]]:
    """Per site (miners' `site` label; unlabelled miners belong to none): the site's state JSON."""
    sites: dict[str, dict[str, Any]] = {}
    economics = state.economics is not None
    for mid, rec in state.miners.items():
        name = rec.labels.site
        if not name:
            continue
        s = sites.get(name)
        if s is None:
            s = sites[name] = {"at": now, "site": name, "miners": 0, "up": 0, "down": 0}
            s.update(hashrate_ths=0.0, power_w=0.0)
            if economics:
                s["profit_per_day"] = None  # null (HA: unknown) until a miner of the site has figures
            if curtail is not None:
                s["curtailed"] = 0
        s["miners"] += 1
        if rec.health is Health.UP and rec.snapshot is not None:
            s["up"] += 1
            snap, eco = rec.snapshot, rec.economics
            # A figure that is missing or impossible (NaN, inf, absurd) adds nothing, and a snapshot that
            # cannot be read is skipped (counted): one bad miner must not poison its site's totals.
            try:
                ths = hashrate_ths(snap.hashrate_ths) or 0.0
                watts = eco.power_w if eco is not None and eco.power_w is not None else snap.power_w
                watts = power_w(watts) or 0.0
                profit: float | None = None
                if economics and eco is not None:
                    profit = (
                        number(eco.profit_per_day, -MAX_PROFIT_USD_PER_DAY, MAX_PROFIT_USD_PER_DAY) or 0.0
                    )
            except Exception as exc:
                VIEW_ERRORS.record("mqtt", mid, exc)
                continue
            s["hashrate_ths"] += ths
            s["power_w"] += watts
            if profit is not None:
                s["profit_per_day"] = (s["profit_per_day"] or 0.0) + profit
        elif rec.health is Health.DOWN:
            s["down"] += 1
        if curtail is not None:
            m = curtail.miners.get(mid)
            if m is not None and m.target.action is not Action.RUN:
                s["curtailed"] += 1
    return sites


def _currency(state: FleetState) -> str:
    return next((r.economics.currency for r in state.miners.values() if r.economics is not None), "")


class HaDiscovery:
    """Discovery configs and site states for one MqttPublisher; `cycle` is called from its on_cycle."""

    def __init__(
        self,
        config: MqttConfig,
        status_topic: str,
        enqueue: Callable[[list[tuple[str, bytes]], bool], None],
        curtail: Callable[[], CurtailStatus | None] | None = None,
    ) -> None:
        ha = config.homeassistant
        self.prefix = config.topic_prefix
        self.discovery_prefix = ha.discovery_prefix
        self.node = ha.node_id or slug(config.topic_prefix)
        self.status_topic = status_topic
        self.retain = config.retain
        self._enqueue = enqueue
        self._curtail_of = curtail
        self._published: dict[str, tuple[str, ...]] = {}  # device key -> config topics last published
        self._sites: set[str] = set()  # sites whose state was published
        self.failures = 0

    # --- what to announce ---------------------------------------------------------------------------------
    def _device(self, key: str, name: str, model: str, via: str | None = None) -> dict[str, Any]:
        dev: dict[str, Any] = {
            "identifiers": [f"fleetd_{self.node}{key}"],
            "name": name,
            "manufacturer": "fleetd",
            "model": model,
            "sw_version": __version__,
        }
        if via is not None:
            dev["via_device"] = f"fleetd_{self.node}{via}"
        return dev

    def _config(
        self, sensor: Sensor, object_id: str, state_topic: str, device: dict[str, Any]
    ) -> tuple[str, bytes]:
        body: dict[str, Any] = {
            "name": sensor.name,
            "unique_id": f"fleetd_{self.node}_{object_id}",
            "state_topic": state_topic,
            "value_template": f"{{{{ value_json.{sensor.key} }}}}",
            "state_class": "measurement",
            "availability": [
                {
                    "topic": self.status_topic,
                    "payload_available": "online",
                    "payload_not_available": "offline",
                }
            ],
            "device": device,
            "origin": {"name": "fleetd", "sw_version": __version__},
        }
        if sensor.unit is not None:
            body["unit_of_measurement"] = sensor.unit
        if sensor.device_class is not None:
            body["device_class"] = sensor.device_class
        if sensor.icon is not None:
            body["icon"] = sensor.icon
        topic = f"{self.discovery_prefix}/sensor/{self.node}/{object_id}/config"
        return topic, orjson.dumps(body)

    def _sensors(self, state: FleetState, curtailing: bool) -> list[Sensor]:
        out = [HASHRATE, POWER, UP, DOWN]
        if state.economics is not None:
            out.append(profit(_currency(state)))
        if curtailing:
            out.append(CURTAILED)
        return out

    def configs(
        self, state: FleetState, sites: Iterable[str], curtailing: bool
    ) -> dict[str, list[tuple[str, bytes]]]:
        """Per device ("fleet", "site:<name>"): its sensors' discovery config messages."""
        sensors = self._sensors(state, curtailing)
        fleet = self._device("", "fleetd" if self.node == "fleetd" else f"fleetd {self.node}", "Mining fleet")
        out: dict[str, list[tuple[str, bytes]]] = {"fleet": []}
        for s in sensors:
            topic = f"{self.prefix}/curtailment" if s is CURTAILED else f"{self.prefix}/fleet"
            out["fleet"].append(self._config(s, f"fleet_{s.key}", topic, fleet))
        for name in sites:
            sid = slug(name)
            dev = self._device(f"_site_{sid}", f"Site {name}", "Mining site", via="")
            topic = self.site_topic(name)
            out[f"site:{name}"] = [self._config(s, f"site_{sid}_{s.key}", topic, dev) for s in sensors]
        return out

    def site_topic(self, name: str) -> str:
        return f"{self.prefix}/sites/{slug(name)}/state"

    # --- each cycle ---------------------------------------------------------------------------------------
    def cycle(self, state: FleetState, now: float, full: bool) -> None:
        """Queue the site states; the discovery configs too on a (re)connect (`full`) or when the set of
        sites or sensors changed, and empty retained configs for the sensors and sites that went away."""
        try:
            self._cycle(state, now, full)
        except Exception:  # never at the cost of the publisher's other topics
            self.failures += 1
            if self.failures == 1:
                log.exception("MQTT: Home Assistant discovery failed (further failures counted only)")

    def _cycle(self, state: FleetState, now: float, full: bool) -> None:
        curtail = self._curtail_of() if self._curtail_of is not None else None
        sites = site_states(state, curtail, now)
        configs = self.configs(state, sorted(sites), curtail is not None)
        topics = {dev: tuple(t for t, _ in msgs) for dev, msgs in configs.items()}
        if full or topics != self._published:
            wanted = {t for ts in topics.values() for t in ts}
            gone = [t for ts in self._published.values() for t in ts if t not in wanted]
            self._enqueue([(t, b"") for t in gone], True)
            self._enqueue([m for msgs in configs.values() for m in msgs], True)  # discovery: always retained
            self._published = topics
        gone_sites, self._sites = self._sites - sites.keys(), set(sites)
        if gone_sites and self.retain:  # and their retained state
            self._enqueue([(self.site_topic(n), b"") for n in sorted(gone_sites)], True)
        self._enqueue([(self.site_topic(n), orjson.dumps(s)) for n, s in sites.items()], self.retain)
