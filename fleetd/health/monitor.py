"""Fleet health state for the daemon: diagnosis of each fresh snapshot, tracked for alert fatigue.

No I/O: the daemon feeds it snapshots and turns the returned changes into events.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any

from fleetd.economics.catalog import Catalog
from fleetd.health.diagnosis import diagnose
from fleetd.health.findings import SEVERITY_RANK, Finding, Severity
from fleetd.health.limits import LimitsLookup
from fleetd.health.tracker import Active, Change, RestartCounter, Tracker
from fleetd.model import Mode, Snapshot


@dataclass(frozen=True, slots=True)
class MinerHealth:
    """One miner's health as the API shows it."""

    miner_id: str
    current: tuple[Finding, ...]  # the latest poll's diagnosis
    active: tuple[Active, ...]  # findings that held long enough to be reported

    @property
    def worst(self) -> Severity | None:
        sev = [a.finding.severity for a in self.active]
        return max(sev, key=SEVERITY_RANK.__getitem__) if sev else None

    def to_dict(self) -> dict[str, Any]:
        return {
            "miner": self.miner_id,
            "status": str(self.worst) if self.worst else "ok",
            "active": [{**a.finding.to_dict(), "since": a.since} for a in self.active],
            "current": [f.to_dict() for f in self.current],
        }


class HealthMonitor:
    def __init__(self, catalog: Catalog | None, tracker: Tracker | None = None) -> None:
        self.limits = LimitsLookup(catalog)
        self.catalog = catalog
        self.tracker = tracker or Tracker()
        self.restarts = RestartCounter()
        self._current: dict[str, tuple[Finding, ...]] = {}  # only miners with findings
        self._nominal: dict[tuple[str, str], float | None] = {}

    def _nominal_ths(self, model: str, mode: Mode) -> float | None:
        key = (model, mode.value)
        if key not in self._nominal:
            nom = self.catalog.nominal(model, mode.value) if self.catalog is not None and model else None
            self._nominal[key] = nom.hashrate_ths if nom is not None else None
        return self._nominal[key]

    def observe(
        self, miner_id: str, snap: Snapshot, now: float, *, vendor: str = "", model: str = ""
    ) -> list[Change]:
        """Diagnose a fresh snapshot; the findings that started or cleared."""
        restarts = self.restarts.update(miner_id, snap.uptime_s, now)
        found = diagnose(
            snap,
            self.limits(model, vendor),
            vendor=vendor,
            nominal_ths=self._nominal_ths(model, snap.mode),
            restarts=restarts,
        )
        if found:
            self._current[miner_id] = found
        else:
            self._current.pop(miner_id, None)
        return self.tracker.update(miner_id, found, now)

    def forget(self, miner_id: str, now: float) -> list[Change]:
        self._current.pop(miner_id, None)
        self.restarts.forget(miner_id)
        return self.tracker.forget(miner_id, now)

    def miner(self, miner_id: str) -> MinerHealth:
        active = sorted(self.tracker.active(miner_id), key=lambda a: -SEVERITY_RANK[a.finding.severity])
        return MinerHealth(miner_id, self._current.get(miner_id, ()), tuple(active))

    def tracked_ids(self) -> set[str]:
        return set(self._current) | set(self.tracker.all_active())

    def counts(self) -> tuple[Counter[tuple[str, str, str]], dict[str, Counter[str]]]:
        """Active findings by (code, component, severity), and per miner by severity."""
        kinds: Counter[tuple[str, str, str]] = Counter()
        per_miner: dict[str, Counter[str]] = {}
        for miner_id, active in self.tracker.all_active().items():
            c = per_miner[miner_id] = Counter()
            for a in active:
                f = a.finding
                kinds[(f.code, str(f.component), str(f.severity))] += 1
                c[str(f.severity)] += 1
        return kinds, per_miner

    def export(self) -> tuple[dict[tuple[str, str, str], int], dict[str, list[tuple[str, str, str]]]]:
        """For Prometheus: active findings by (code, component, severity); per miner (code, subject, sev)."""
        kinds: Counter[tuple[str, str, str]] = Counter()
        per_miner: dict[str, list[tuple[str, str, str]]] = {}
        for miner_id, active in self.tracker.all_active().items():
            rows = per_miner[miner_id] = []
            for a in active:
                f = a.finding
                kinds[(f.code, str(f.component), str(f.severity))] += 1
                rows.append((f.code, f.subject, str(f.severity)))
        return dict(kinds), per_miner

    def summary(self, worst: int = 20) -> dict[str, Any]:
        """The fleet summary: findings by kind and severity, and the worst miners."""
        kinds, per_miner = self.counts()
        by_severity: Counter[str] = Counter()
        for (_, _, sev), n in kinds.items():
            by_severity[sev] += n

        def rank(item: tuple[str, Counter[str]]) -> tuple[int, int, int, str]:
            c = item[1]
            return (-c["critical"], -c["warning"], -c["info"], item[0])

        ranked = sorted(per_miner.items(), key=rank)[:worst]
        return {
            "miners_with_findings": len(per_miner),
            "by_severity": {s.value: by_severity.get(s.value, 0) for s in Severity},
            "by_kind": [
                {"code": code, "component": comp, "severity": sev, "findings": n}
                for (code, comp, sev), n in sorted(kinds.items(), key=lambda kv: (-kv[1], kv[0]))
            ],
            "worst": [{"miner": m, **{s.value: c.get(s.value, 0) for s in Severity}} for m, c in ranked],
        }
