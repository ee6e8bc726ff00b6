"""Predictive maintenance: per-miner trends over the hourly health history that precede failures. Pure.

Each metric is fitted with least squares over the window. A trend is reported when its slope is
significant (|t| >= `t_min`) and steeper than the same-model fleet's median slope by the rule's margin,
so a change the whole fleet shares (a hot afternoon in the farm) is not blamed on one miner.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from statistics import median
from typing import Any

from fleetd.health.findings import Severity
from fleetd.health.history import Point
from fleetd.health.limits import DEFAULT, Limits
from fleetd.model import Component

BOARD_LIMIT = 0.70  # diagnosis calls a board at this share of its peers degraded (BOARD_BEHIND)


@dataclass(frozen=True, slots=True)
class TrendRules:
    """Thresholds of the trend detector (the config's [health.trends] sets them)."""

    window_h: float = 24.0
    min_points: int = 6
    t_min: float = 3.0  # slope / its standard error
    min_group: int = 3  # miners of a model needed before the fleet's median slope is subtracted
    chip_temp_c_per_day: float = 1.5  # over ambient
    fan_share_per_day: float = 0.03  # of the miner's mean rpm
    hw_errors_ratio: float = 2.0  # rate at the window's end vs its start and vs the fleet's median
    hw_errors_min_per_h: float = 10.0
    efficiency_share_per_day: float = 0.02  # of the miner's mean J/TH
    board_ratio_per_day: float = 0.02  # drop of the slowest board's share of the median board
    restarts: int = 3  # self-restarts within the window
    critical_within_h: float = 24.0  # a limit reached sooner than this is critical


@dataclass(frozen=True, slots=True)
class Fit:
    slope_per_h: float
    end: float  # fitted value at the newest point
    t_stat: float
    n: int
    start: float  # fitted value at the oldest point


def fit(ts: Sequence[float], ys: Sequence[float]) -> Fit | None:
    """Least-squares line through (hours, value); None with fewer than 3 points or no time spread."""
    n = len(ts)
    if n < 3:
        return None
    mt = sum(ts) / n
    my = sum(ys) / n
    sxx = sxy = 0.0
    for t, y in zip(ts, ys, strict=True):
        dt = t - mt
        sxx += dt * dt
        sxy += dt * (y - my)
    if sxx <= 0:
        return None
    b = sxy / sxx
    a = my - b * mt
    sse = sum((y - a - b * t) ** 2 for t, y in zip(ts, ys, strict=True))
    se = math.sqrt(sse / (n - 2) / sxx) if sse > 1e-12 * max(1.0, my * my) * n else 0.0
    t_stat = b / se if se > 0 else (math.inf if b > 0 else -math.inf if b < 0 else 0.0)
    return Fit(b, a + b * ts[-1], t_stat, n, a + b * ts[0])


@dataclass(frozen=True, slots=True)
class TrendWarning:
    """A trend on one miner that tends to end in a failure."""

    miner_id: str
    code: str  # chip_temp_rising, fan_rpm_rising, hw_errors_rising, efficiency_drifting, board_lagging, ...
    severity: Severity
    component: Component
    metric: str  # the fitted quantity, unit-suffixed
    slope_per_day: float  # in the metric's unit per day (restarts: count in the window)
    window_start: float  # unix seconds
    window_end: float
    value: float  # the metric now (fitted at the window's end)
    fleet_median: float | None  # same-model fleet median of the metric now
    fleet_median_slope_per_day: float | None
    limit: float | None = None
    time_to_limit_h: float | None = None  # extrapolated; None when it does not head for a limit
    subject: str = ""
    cause: str = ""
    action: str = ""

    @property
    def key(self) -> str:
        """What the trend tracker follows from one run of the trend job to the next."""
        return f"{self.code}:{self.subject}" if self.subject else self.code

    @property
    def window_h(self) -> float:
        return (self.window_end - self.window_start) / 3600.0

    @property
    def vs_median(self) -> float | None:
        return None if self.fleet_median is None else self.value - self.fleet_median

    def to_dict(self) -> dict[str, Any]:
        r = _round
        return {
            "code": self.code,
            "severity": str(self.severity),
            "component": str(self.component),
            "subject": self.subject,
            "metric": self.metric,
            "slope_per_day": r(self.slope_per_day),
            "window_start": self.window_start,
            "window_end": self.window_end,
            "window_h": r(self.window_h),
            "value": r(self.value),
            "fleet_median": r(self.fleet_median),
            "vs_median": r(self.vs_median),
            "fleet_median_slope_per_day": r(self.fleet_median_slope_per_day),
            "limit": r(self.limit),
            "time_to_limit_h": r(self.time_to_limit_h),
            "cause": self.cause,
            "action": self.action,
        }


def _round(v: float | None) -> float | None:
    return None if v is None or not math.isfinite(v) else round(v, 4)


# metric name -> how to read it from a Point
def _chip_over_ambient(p: Point) -> float | None:
    if p.chip_temp_c is None:
        return None
    return p.chip_temp_c - p.env_temp_c if p.env_temp_c is not None else p.chip_temp_c


_METRICS: dict[str, Callable[[Point], float | None]] = {
    "chip_temp_c": lambda p: p.chip_temp_c,
    "chip_over_ambient_c": _chip_over_ambient,
    "fan_rpm": lambda p: p.fan_rpm,
    "hw_errors_per_h": lambda p: p.hw_errors_per_h,
    "efficiency_j_per_th": lambda p: p.efficiency_j_per_th,
    "board_ratio": lambda p: p.board_ratio,
}


@dataclass(slots=True)
class _Miner:
    miner_id: str
    model: str
    window: list[Point]
    fits: dict[str, Fit]
    restarts: int


def _analyse(miner_id: str, model: str, pts: Sequence[Point], start: float, rules: TrendRules) -> _Miner:
    window = [p for p in pts if p.t >= start]
    fits: dict[str, Fit] = {}
    for name, get in _METRICS.items():
        ts: list[float] = []
        ys: list[float] = []
        for p in window:
            v = get(p)
            if v is not None:
                ts.append(p.t / 3600.0)
                ys.append(v)
        if len(ts) >= rules.min_points:
            f = fit(ts, ys)
            if f is not None:
                fits[name] = f
    return _Miner(miner_id, model, window, fits, sum(p.restarts for p in window))


def _ttl(value: float, slope_per_h: float, limit: float | None, *, falling: bool = False) -> float | None:
    if limit is None:
        return None
    gap = value - limit if falling else limit - value
    if gap <= 0:
        return 0.0
    rate = -slope_per_h if falling else slope_per_h
    return gap / rate if rate > 0 else None


def detect(
    series: Mapping[str, Sequence[Point]],
    models: Mapping[str, str],
    limits: Callable[[str], Limits],
    now: float,
    rules: TrendRules = TrendRules(),
) -> dict[str, list[TrendWarning]]:
    """Warnings per miner (only miners with any), from each miner's points (oldest first)."""
    start = now - rules.window_h * 3600.0
    analysed = [_analyse(mid, models.get(mid, ""), pts, start, rules) for mid, pts in series.items()]
    groups: dict[str, list[_Miner]] = {}
    for m in analysed:
        groups.setdefault(m.model, []).append(m)
    out: dict[str, list[TrendWarning]] = {}
    for model, members in groups.items():
        stats = _group_stats(members, rules)
        stats["restarts"] = (float(median(m.restarts for m in members)), None)
        lim = limits(model) if model else DEFAULT
        for m in members:
            found = _warnings(m, stats, lim, rules)
            if found:
                out[m.miner_id] = found
    return out


def _group_stats(members: list[_Miner], rules: TrendRules) -> dict[str, tuple[float, float | None]]:
    """Per metric: (median value now, median slope per hour or None when the group is too small)."""
    stats: dict[str, tuple[float, float | None]] = {}
    for name in _METRICS:
        fits = [m.fits[name] for m in members if name in m.fits]
        if not fits:
            continue
        slope = median(f.slope_per_h for f in fits) if len(fits) >= rules.min_group else None
        stats[name] = (median(f.end for f in fits), slope)
    return stats


def _warnings(
    m: _Miner, stats: dict[str, tuple[float, float | None]], lim: Limits, rules: TrendRules
) -> list[TrendWarning]:
    out: list[TrendWarning] = []
    if not m.window:
        return out
    w0, w1 = m.window[0].t, m.window[-1].t

    def excess(name: str) -> tuple[Fit, float] | None:
        """The fit and its slope beyond the fleet's median slope (per hour), when significant."""
        f = m.fits.get(name)
        if f is None or abs(f.t_stat) < rules.t_min:
            return None
        base = stats[name][1]
        return f, f.slope_per_h - (base or 0.0)

    def warning(name: str, code: str, comp: Component, f: Fit, **kw: Any) -> TrendWarning:
        med, base = stats[name]
        ttl = kw.get("time_to_limit_h")
        sev = Severity.CRITICAL if ttl is not None and ttl <= rules.critical_within_h else Severity.WARNING
        return TrendWarning(
            m.miner_id,
            code,
            sev,
            comp,
            name,
            f.slope_per_h * 24.0,
            w0,
            w1,
            f.end,
            med,
            None if base is None else base * 24.0,
            **kw,
        )

    hot = excess("chip_over_ambient_c")
    fan = m.fits.get("fan_rpm")
    fan_slowing = fan is not None and fan.t_stat <= -rules.t_min
    if hot is not None and hot[1] * 24.0 >= rules.chip_temp_c_per_day and not fan_slowing:
        f, _ = hot
        raw = m.fits.get("chip_temp_c")
        now_c = raw.end if raw is not None else f.end
        ttl = _ttl(now_c, f.slope_per_h, lim.chip_temp_max_c)
        out.append(
            warning(
                "chip_over_ambient_c",
                "chip_temp_rising",
                Component.TEMPERATURE,
                f,
                limit=lim.chip_temp_max_c,
                time_to_limit_h=ttl,
                cause=f"Chip temperature rising {f.slope_per_h * 24:.1f} C/day over ambient with fans"
                " not slowing: cooling is degrading (dust, thermal paste, a weakening fan)",
                action="Clean the heatsinks and filters, check the fans and the hot-aisle exhaust",
            )
        )
    fr = excess("fan_rpm")
    if fr is not None and fr[0].end > 0 and fr[1] * 24.0 >= rules.fan_share_per_day * fr[0].end:
        f, _ = fr
        out.append(
            warning(
                "fan_rpm",
                "fan_rpm_rising",
                Component.FAN,
                f,
                limit=lim.fan_max_rpm,
                time_to_limit_h=_ttl(f.end, f.slope_per_h, lim.fan_max_rpm),
                cause=f"Fan speed creeping up {f.slope_per_h * 24:.0f} rpm/day: the firmware is working"
                " harder for the same cooling (clogged filters, worn bearings, rising intake temperature)",
                action="Inspect and clean the fans and filters; plan a fan replacement",
            )
        )
    hw = excess("hw_errors_per_h")
    if hw is not None and hw[1] > 0:
        f, _ = hw
        floor = max(f.start, stats["hw_errors_per_h"][0], 1.0)  # its own start, and the fleet now
        if f.end >= rules.hw_errors_min_per_h and f.end >= rules.hw_errors_ratio * floor:
            out.append(
                warning(
                    "hw_errors_per_h",
                    "hw_errors_rising",
                    Component.BOARD,
                    f,
                    cause=f"Hardware errors rising to {f.end:.0f}/h (from {max(f.start, 0):.0f}/h):"
                    " chips failing or running outside their voltage/frequency margin",
                    action="Check the hashboard temperatures and PSU voltage; consider a lower power mode",
                )
            )
    eff = excess("efficiency_j_per_th")
    if eff is not None and eff[0].end > 0 and eff[1] * 24.0 >= rules.efficiency_share_per_day * eff[0].end:
        f, _ = eff
        out.append(
            warning(
                "efficiency_j_per_th",
                "efficiency_drifting",
                Component.BOARD,
                f,
                cause=f"Efficiency worsening {f.slope_per_h * 24:.2f} J/TH per day: more power for each"
                " terahash (ageing chips, heat, a PSU losing efficiency)",
                action="Compare with the model's nominal J/TH; check temperatures and the PSU",
            )
        )
    br = excess("board_ratio")
    if br is not None and -br[1] * 24.0 >= rules.board_ratio_per_day:
        f, _ = br
        worst = next((p.board_worst for p in reversed(m.window) if p.board_worst is not None), None)
        subject = f"board {worst}" if worst is not None else ""
        out.append(
            warning(
                "board_ratio",
                "board_lagging",
                Component.BOARD,
                f,
                limit=BOARD_LIMIT,
                time_to_limit_h=_ttl(f.end, f.slope_per_h, BOARD_LIMIT, falling=True),
                subject=subject,
                cause=f"{subject.capitalize() or 'One board'} falling behind the others:"
                f" {f.end:.0%} of the median board and dropping {-f.slope_per_h * 24:.1%} a day",
                action="Check the board's connectors and temperature; plan a board repair or swap",
            )
        )
    if m.restarts >= rules.restarts:
        out.append(
            TrendWarning(
                m.miner_id,
                "restarts_repeated",
                Severity.WARNING,
                Component.CONTROL_BOARD,
                "restarts",
                float(m.restarts),
                w0,
                w1,
                float(m.restarts),
                stats["restarts"][0],
                None,
                cause=f"{m.restarts} self-restarts in {(w1 - w0) / 3600 + 1:.0f} h: the firmware or the"
                " PSU resets the miner (overheat protection, a failing PSU, a watchdog)",
                action="Read the miner's kernel log; check the PSU and the power feed",
            )
        )
    return out
