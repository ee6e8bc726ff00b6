"""Fleet health state for the daemon: diagnosis of each fresh snapshot, tracked for alert fatigue.

No I/O: the daemon feeds it snapshots and turns the returned changes into events.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from fleetd.economics.catalog import Catalog
from fleetd.health.diagnosis import diagnose
from fleetd.health.findings import SEVERITY_RANK, Finding, Severity
from fleetd.health.limits import LimitsLookup
from fleetd.health.tracker import Active, Change, RestartCounter, Tracker
from fleetd.health.trends import TrendWarning
from fleetd.model import Mode, Snapshot


@dataclass(frozen=True, slots=True)
class MinerHealth:
    """One miner's health as the API shows it."""

    miner_id: str
    current: tuple[Finding, ...]  # the latest poll's diagnosis
    active: tuple[Active, ...]  # findings that held long enough to be reported
    warnings: tuple[TrendWarning, ...] = ()  # predictive-maintenance trends (the trend job's last run)
    active_warnings: tuple[Active[TrendWarning], ...] = ()  # those that held long enough to be reported

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
            "warnings": [w.to_dict() for w in self.warnings],
            "active_warnings": [{**a.finding.to_dict(), "since": a.since} for a in self.active_warnings],
        }


def _urgency(w: TrendWarning) -> tuple[int, float, str, str]:
    ttl = w.time_to_limit_h if w.time_to_limit_h is not None else float("inf")
    return (-SEVERITY_RANK[w.severity], ttl, w.miner_id, w.code)


TREND_START_AFTER_S = 1800.0  # a trend warning seen on two hourly runs of the trend job starts
TREND_CLEAR_AFTER_S = 9000.0  # and clears when three runs in a row did not see it


class HealthMonitor:
    def __init__(
        self,
        catalog: Catalog | None,
        tracker: Tracker[Finding] | None = None,
        trend_tracker: Tracker[TrendWarning] | None = None,
    ) -> None:
        self.limits = LimitsLookup(catalog)
        self.catalog = catalog
        self.tracker: Tracker[Finding] = tracker or Tracker()
        self.trend_tracker: Tracker[TrendWarning] = trend_tracker or Tracker(
            TREND_START_AFTER_S, TREND_CLEAR_AFTER_S
        )
        self.restarts = RestartCounter()
        self._current: dict[str, tuple[Finding, ...]] = {}  # only miners with findings
        self._nominal: dict[tuple[str, str], float | None] = {}
        self.warnings: dict[str, tuple[TrendWarning, ...]] = {}  # per miner, from the trend job
        self.trends_at: float | None = None  # when the trend job last ran
        self.trends_duration_s: float | None = None

    def set_warnings(
        self, found: Mapping[str, Sequence[TrendWarning]], at: float, duration_s: float | None = None
    ) -> list[Change[TrendWarning]]:
        """The trend job's result: replaces the previous warnings; the warnings that started or cleared."""
        self.warnings = {m: tuple(sorted(ws, key=_urgency)) for m, ws in found.items() if ws}
        self.trends_at = at
        self.trends_duration_s = duration_s
        changes: list[Change[TrendWarning]] = []
        for mid in sorted(self.warnings.keys() | self.trend_tracker.miners()):
            changes += self.trend_tracker.update(mid, self.warnings.get(mid, ()), at)
        return changes

    def adopt_warnings(self, other: HealthMonitor) -> None:
        """Keep another monitor's trend warnings (a new monitor after the catalog changed)."""
        self.warnings, self.trends_at = other.warnings, other.trends_at
        self.trends_duration_s = other.trends_duration_s
        self.trend_tracker = other.trend_tracker

    def _nominal_ths(self, model: str, mode: Mode) -> float | None:
        key = (model, mode.value)
        if key not in self._nominal:
            nom = self.catalog.nominal(model, mode.value) if self.catalog is not None and model else None
            self._nominal[key] = nom.hashrate_ths if nom is not None else None
        return self._nominal[key]

    def observe(
        self, miner_id: str, snap: Snapshot, now: float, *, vendor: str = "", model: str = ""
    ) -> list[Change[Finding]]:
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

    def forget(self, miner_id: str, now: float) -> list[Change[Any]]:
        """The miner left the fleet: its findings and trend warnings clear."""
        self._current.pop(miner_id, None)
        self.restarts.forget(miner_id)
        self.warnings.pop(miner_id, None)
        changes: list[Change[Any]] = [*self.tracker.forget(miner_id, now)]
        return changes + self.trend_tracker.forget(miner_id, now)

    def miner(self, miner_id: str) -> MinerHealth:
        active = sorted(self.tracker.active(miner_id), key=lambda a: -SEVERITY_RANK[a.finding.severity])
        current = self._current.get(miner_id, ())
        warned = tuple(self.trend_tracker.active(miner_id))
        return MinerHealth(miner_id, current, tuple(active), self.warnings.get(miner_id, ()), warned)

    def tracked_ids(self) -> set[str]:
        return set(self._current) | self.tracker.miners() | self.trend_tracker.miners() | set(self.warnings)

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
            "warnings": self.warnings_summary(worst),
        }

    def warnings_summary(self, worst: int = 20) -> dict[str, Any]:
        """Trend warnings: when computed, counts by code and severity, and the most urgent ones."""
        kinds: Counter[tuple[str, str]] = Counter()
        every: list[TrendWarning] = []
        for ws in self.warnings.values():
            every += ws
            for w in ws:
                kinds[(w.code, str(w.severity))] += 1
        every.sort(key=_urgency)
        return {
            "computed_at": self.trends_at,
            "miners": len(self.warnings),
            "by_code": [
                {"code": code, "severity": sev, "warnings": n}
                for (code, sev), n in sorted(kinds.items(), key=lambda kv: (-kv[1], kv[0]))
            ],
            "most_urgent": [{"miner": w.miner_id, **w.to_dict()} for w in every[:worst]],
        }

    def export_warnings(
        self,
    ) -> tuple[dict[tuple[str, str, str], int], list[tuple[str, TrendWarning]], float | None, float | None]:
        """For Prometheus: counts by (code, component, severity), (miner, warning) rows, when, how long.

        The last run's warnings, plus started ones its hysteresis still holds (missed by a run or two, not
        yet cleared), so a trend flickering across its threshold is one steady series an alert's for: sees.
        """
        kinds: Counter[tuple[str, str, str]] = Counter()
        rows: list[tuple[str, TrendWarning]] = []
        for miner_id, ws in self.warnings.items():
            for w in ws:
                rows.append((miner_id, w))
        for miner_id, active in self.trend_tracker.all_active().items():
            now = {w.key for w in self.warnings.get(miner_id, ())}
            rows += [(miner_id, a.finding) for a in active if a.finding.key not in now]
        for _, w in rows:
            kinds[(w.code, str(w.component), str(w.severity))] += 1
        return dict(kinds), rows, self.trends_at, self.trends_duration_s
