"""Poll targets: endpoints with shared credentials and timeouts, configured and discovered miners."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from fleetd.config import Config, DiscoveryConfig, MinerConfig
from fleetd.daemon.events import Event, EventKind
from fleetd.daemon.poller import MinerTarget, Poller
from fleetd.daemon.rollups import Rollups
from fleetd.daemon.state import FleetState, Labels
from fleetd.drivers import Endpoint, Timeouts, use_fallbacks

if TYPE_CHECKING:
    from fleetd.storage.store import InventoryRow

log = logging.getLogger("fleetd.daemon")


class Targets:
    """Daemon part: which miners to poll and how to reach them."""

    config: Config
    state: FleetState
    poller: Poller
    rollups: Rollups
    _shared: dict[Any, Any]  # per-config cache: timeouts and resolved credentials

    def _endpoint(self, config: Config, target: MinerConfig | DiscoveryConfig, host: str) -> Endpoint:
        # Secrets are resolved once per credentials set and config (not per miner); objects are shared.
        cache = self._shared
        if cache.get("config") is not config:
            p = config.polling
            cache.clear()
            cache["config"] = config
            cache["timeouts"] = Timeouts(connect_s=p.connect_timeout_s, read_s=p.timeout_s)
        key = ("credentials", config.credentials_name(target))
        creds = cache.get(key)
        if creds is None:
            creds = cache[key] = config.credentials_for(target)
        return Endpoint(host, **target.ports(), credentials=creds, timeouts=cache["timeouts"])

    def _targets(self, config: Config) -> dict[str, MinerTarget]:
        """Every configured miner, plus discovered ones still inside a discovery range (new settings)."""
        wanted: dict[str, MinerTarget] = {}
        for m in config.miners:
            t = MinerTarget(
                host=m.host,
                endpoint=self._endpoint(config, m, m.host),
                driver=m.driver,
                labels=Labels(m.site, m.rack, m.position),
                nominal_power_w=m.nominal_power_w,
                source="config",
                model=m.model,
            )
            wanted[t.id] = t
        for mid, t in self.poller.targets().items():
            if t.source == "discovery" and mid not in wanted:
                d = self._discovery_for(t.host, config)
                if d is not None:
                    wanted[mid] = self._discovered_target(config, d, t.host, t.endpoint.api_port)
        return wanted

    def _apply_targets(self, config: Config, wanted: dict[str, MinerTarget], *, initial: bool) -> None:
        use_fallbacks(config.drivers.fallbacks())  # process-wide: which fallback-only drivers detection tries
        current = self.poller.targets()
        for mid in current:
            if mid in wanted:
                continue
            self.poller.remove(mid)
            self.rollups.forget(mid)
            msg = f"miner {mid} removed: no longer configured or in a discovery range"
            log.info(msg)
            self.emit(Event(EventKind.MINER_REMOVED, msg, mid))
        for mid, t in wanted.items():
            known = mid in current or mid in self.state.miners
            rec = self.poller.add(t)
            if current.get(mid) != t:
                self._store_miner(rec, t)
            if not known and not initial:
                self.emit(Event(EventKind.MINER_ADDED, f"miner {mid} added from the configuration", mid))

    def _restore(self, inventory: list[InventoryRow]) -> None:
        """Seed state from storage: identities (to notice swaps across restarts) and discovered miners."""
        configured = {m.host for m in self.config.miners}
        for row in inventory:
            if row.source == "discovery" and self.config.discovery and row.host not in configured:
                disc = self._discovery_for(row.host, self.config)
                if disc is not None:
                    self.poller.add(self._discovered_target(self.config, disc, row.host, row.api_port))
            rec = self.state.miners.get(row.id)
            if rec is None:
                continue
            if rec.identity is None:
                rec.identity = row.identity
            if row.driver and not rec.driver:
                rec.driver = row.driver

    def _discovery_for(self, host: str, config: Config) -> DiscoveryConfig | None:
        import ipaddress

        for d in config.discovery:
            ts = d.target_set()
            if host in {t.host for t in ts.names}:
                return d
            try:
                addr = ipaddress.ip_address(host)
            except ValueError:
                continue
            for (version, _port), spans in ts.ranges.items():
                if version == addr.version and any(a <= int(addr) <= b for a, b in spans):
                    return d
        return None

    def _discovered_target(self, config: Config, d: DiscoveryConfig, host: str, api_port: int) -> MinerTarget:
        endpoint = self._endpoint(config, d, host)
        if api_port != endpoint.api_port:
            from dataclasses import replace

            endpoint = replace(endpoint, api_port=api_port)
        return MinerTarget(host, endpoint, d.driver, Labels(d.site, d.rack, ""), None, "discovery")
