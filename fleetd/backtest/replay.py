"""The replay: a simulated clock and an instant-verify fleet driven by the curtailment policy and planner.

The policy decides at the start of every price interval (and every `decide_every_s` within it, when
shorter); each decision's commands go out in the planner's ramp steps, and a command takes effect the
moment it is sent (the simulated miners verify instantly). Money is integrated over time: energy at the
all-in price (market + adders), revenue at a constant hashprice after pool and dev fees.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from types import MappingProxyType

from fleetd.backtest.prices import PriceSeries
from fleetd.backtest.rules import decide, plan_step
from fleetd.curtail.config import CurtailmentConfig
from fleetd.curtail.model import (
    RUN,
    Action,
    Actual,
    Controls,
    Decision,
    FleetMemory,
    MinerMemory,
    MinerView,
    PricePoint,
    PriceView,
    Target,
)
from fleetd.curtail.ramp import ControlState
from fleetd.economics.hashprice import fee_factor

HISTORY = 96  # price intervals the policy sees (a day of 15-minute intervals)
MAX_STEPS_PER_INTERVAL = 10_000  # a planner that never finishes must not hang the replay
_ACTUAL = {Action.RUN: Actual.RUNNING, Action.SLEEP: Actual.SLEEPING, Action.LIMIT: Actual.LIMITED}


class BacktestError(ValueError):
    """Inputs the replay cannot run on."""


@dataclass(frozen=True, slots=True)
class FleetModel:
    """`count` identical miners of one catalog model."""

    name: str
    count: int
    hashrate_ths: float
    power_w: float
    sleep_power_w: float = 0.0
    site: str = ""
    can_limit: bool = False


@dataclass(frozen=True, slots=True)
class Money:
    energy_mwh: float = 0.0
    energy_cost: float = 0.0
    revenue: float = 0.0

    @property
    def profit(self) -> float:
        return self.revenue - self.energy_cost


@dataclass(slots=True)
class _Acc:
    energy_wh: float = 0.0
    cost: float = 0.0  # energy_wh x $/MWh, divided by 1e6 at the end
    revenue: float = 0.0
    run_s: float = 0.0  # miner-seconds hashing

    def money(self) -> Money:
        return Money(self.energy_wh / 1e6, self.cost / 1e6, self.revenue)


@dataclass(frozen=True, slots=True)
class ModelResult:
    name: str
    miners: int
    uptime: float
    actual: Money
    baseline: Money
    switches_max: int
    switches_mean: float


@dataclass(frozen=True, slots=True)
class RuleResult:
    rule: str
    miner_hours: float  # hours asleep (or limited) because of this rule, summed over miners
    cost_saved: float
    revenue_lost: float

    @property
    def net(self) -> float:
        return self.cost_saved - self.revenue_lost


@dataclass(frozen=True, slots=True)
class Sample:
    """One price interval, for the plot."""

    start: float
    price_usd_per_mwh: float  # all-in
    load_mw: float  # mean over the interval
    curtailed_share: float  # of the fleet's miner-time, asleep or limited


@dataclass(frozen=True, slots=True)
class BacktestResult:
    start: float
    end: float
    hours: float  # replayed (gaps excluded)
    miners: int
    hashprice_usd_per_ph_day: float
    actual: Money
    baseline: Money
    uptime: float  # share of miner-time hashing
    curtailed_hours: float  # hours with at least one miner curtailed
    switches_max: int  # on/off transitions of the busiest miner
    switches_mean: float
    decisions: int  # policy passes
    commands: int
    by_model: tuple[ModelResult, ...]
    by_rule: tuple[RuleResult, ...]
    samples: tuple[Sample, ...] = field(repr=False, default=())
    source: str = ""
    location: str = ""
    gaps: int = 0

    @property
    def cost_saved(self) -> float:
        return self.baseline.energy_cost - self.actual.energy_cost

    @property
    def cost_saved_share(self) -> float | None:
        return self.cost_saved / self.baseline.energy_cost if self.baseline.energy_cost else None

    @property
    def revenue_lost(self) -> float:
        return self.baseline.revenue - self.actual.revenue

    @property
    def revenue_lost_share(self) -> float | None:
        return self.revenue_lost / self.baseline.revenue if self.baseline.revenue else None

    @property
    def net_gain(self) -> float:
        return self.actual.profit - self.baseline.profit


@dataclass(slots=True)
class _Miner:
    id: str
    model: int  # index into the fleet models
    state: ControlState
    rule: str = ""  # the rule that curtailed it, while curtailed
    switches: int = 0
    power_w: float = 0.0  # current draw
    ths: float = 0.0  # current hashrate


def replay(
    series: PriceSeries,
    fleet: Sequence[FleetModel],
    config: CurtailmentConfig,
    *,
    hashprice_usd_per_ph_day: float,
    pool_fee: float = 0.0,
    dev_fee: float = 0.0,
    adders_usd_per_mwh: float = 0.0,
    decide_every_s: float | None = None,
    controls: Controls | None = None,
) -> BacktestResult:
    """Replay `series` over `fleet` under `config`'s rules; see the module docstring for the model."""
    if not series.intervals:
        raise BacktestError("the price history is empty")
    if not fleet or sum(m.count for m in fleet) == 0:
        raise BacktestError("the fleet is empty")
    if decide_every_s is not None and decide_every_s <= 0:
        raise BacktestError("the decision interval must be positive")
    controls = controls or Controls()
    net = fee_factor(pool_fee, dev_fee)
    usd_per_th_s = hashprice_usd_per_ph_day * net / 1000 / 86400  # revenue per TH/s per second
    start0 = series.intervals[0].start
    miners: list[_Miner] = []
    for k, fm in enumerate(fleet):
        for j in range(fm.count):
            st = ControlState(Actual.RUNNING, RUN, start0, start0 - 1e9)
            miners.append(_Miner(f"{_slug(fm.name)}-{j + 1}", k, st, power_w=fm.power_w, ths=fm.hashrate_ths))
    by_id = {m.id: m for m in miners}
    acc = [_Acc() for _ in fleet]
    base = [_Acc() for _ in fleet]
    rule_acc: dict[str, list[float]] = {}  # rule -> [miner-seconds, saved Wh x $/MWh, revenue lost]
    memory: dict[str, MinerMemory] = {}
    fleet_mem = FleetMemory()
    points = [PricePoint(i.start, i.usd_per_mwh + adders_usd_per_mwh) for i in series.intervals]
    samples: list[Sample] = []
    decisions_n = commands_n = 0
    curtailed_s = 0.0
    full_ths = [fm.hashrate_ths * fm.count for fm in fleet]
    # Aggregates kept current as miners change state, so that accounting costs O(models) per segment.
    draw_w = [fm.power_w * fm.count for fm in fleet]
    hash_ths = list(full_ths)
    curtailed: dict[str, dict[str, int]] = {}  # rule -> miner id -> model index (only while curtailed)
    pending: tuple[Decision, ...] = ()
    next_step = float("inf")

    def account(t0: float, t1: float, price: float) -> tuple[float, float, float]:
        dt = t1 - t0
        if dt <= 0:
            return 0.0, 0.0, 0.0
        for k, fm in enumerate(fleet):
            wh = draw_w[k] * dt / 3600
            a = acc[k]
            a.energy_wh += wh
            a.cost += wh * price
            a.revenue += hash_ths[k] * usd_per_th_s * dt
            a.run_s += hash_ths[k] / fm.hashrate_ths * dt if fm.hashrate_ths else 0.0
            b = base[k]
            bwh = fm.power_w * fm.count * dt / 3600
            b.energy_wh += bwh
            b.cost += bwh * price
            b.revenue += full_ths[k] * usd_per_th_s * dt
            b.run_s += fm.count * dt
        n_curtailed = 0
        for rule, ids in curtailed.items():
            if not ids:
                continue
            r = rule_acc.setdefault(rule, [0.0, 0.0, 0.0])
            for mid, k in ids.items():
                m, fm = by_id[mid], fleet[k]
                r[0] += dt
                r[1] += (fm.power_w - m.power_w) * dt / 3600 * price
                r[2] += (fm.hashrate_ths - m.ths) * usd_per_th_s * dt
            n_curtailed += len(ids)
        energy = sum(draw_w) * dt
        return energy, n_curtailed * dt, dt if n_curtailed else 0.0

    def apply(cmd_target: Target, m: _Miner, rule: str, now: float) -> None:
        fm = fleet[m.model]
        actual = _ACTUAL[cmd_target.action]
        if actual is Actual.SLEEPING:
            power, ths = fm.sleep_power_w, 0.0
        elif actual is Actual.LIMITED and cmd_target.power_limit_w is not None:
            power = min(fm.power_w, float(cmd_target.power_limit_w))
            ths = fm.hashrate_ths * power / fm.power_w  # assumed linear: J/TH unchanged under a limit
        else:
            power, ths = fm.power_w, fm.hashrate_ths
        draw_w[m.model] += power - m.power_w
        hash_ths[m.model] += ths - m.ths
        if m.rule:
            curtailed.get(m.rule, {}).pop(m.id, None)
        m.rule = rule if actual is not Actual.RUNNING else ""
        if m.rule:
            curtailed.setdefault(m.rule, {})[m.id] = m.model
        changed = actual is not m.state.actual
        m.switches += changed
        m.power_w, m.ths = power, ths
        m.state = ControlState(actual, cmd_target, now, now if changed else m.state.changed_at)

    views: dict[str, MinerView] = {}
    reasons: dict[str, str] = {}
    for i, iv in enumerate(series.intervals):
        price = points[i].usd_per_mwh
        history = tuple(points[max(0, i - HISTORY + 1) : i + 1])
        every = decide_every_s or (iv.end - iv.start)
        next_decide = iv.start
        t = iv.start
        energy_ws = curtailed_ms = 0.0
        steps = 0
        while True:
            nxt = min(next_decide, next_step)
            if nxt >= iv.end:
                e, c, any_s = account(t, iv.end, price)
                energy_ws, curtailed_ms, curtailed_s = energy_ws + e, curtailed_ms + c, curtailed_s + any_s
                break
            e, c, any_s = account(t, nxt, price)
            energy_ws, curtailed_ms, curtailed_s = energy_ws + e, curtailed_ms + c, curtailed_s + any_s
            t = nxt
            if t >= next_decide:
                views = {m.id: _view(m, fleet, price, usd_per_th_s) for m in miners}
                pv = PriceView(
                    price, points[i].start, False, iv.end - iv.start, history, hashprice_usd_per_ph_day
                )
                plan = decide(list(views.values()), pv, config, controls, memory, fleet_mem, t)
                memory, fleet_mem = dict(plan.memory), plan.fleet
                pending = plan.decisions
                reasons = {d.miner_id: d.reason.rule for d in pending}
                decisions_n += 1
                next_decide = t + every
            states = MappingProxyType({m.id: m.state for m in miners})
            step = plan_step(pending, states, views, config, t)
            for cmd in step.commands:
                apply(cmd.target, by_id[cmd.miner_id], reasons.get(cmd.miner_id, ""), t)
            commands_n += len(step.commands)
            steps += 1
            if step.waiting and step.next_step_at is not None and steps < MAX_STEPS_PER_INTERVAL:
                next_step = max(step.next_step_at, t + 1e-3)
            else:
                next_step = float("inf")
        span = iv.end - iv.start
        samples.append(Sample(iv.start, price, energy_ws / span / 1e6, curtailed_ms / span / len(miners)))
    return _result(
        series,
        fleet,
        miners,
        acc,
        base,
        rule_acc,
        samples,
        hashprice_usd_per_ph_day,
        decisions_n,
        commands_n,
        curtailed_s,
    )


def _view(m: _Miner, fleet: Sequence[FleetModel], price: float, usd_per_th_s: float) -> MinerView:
    fm = fleet[m.model]
    profit = fm.hashrate_ths * usd_per_th_s * 86400 - fm.power_w * 24 / 1e6 * price
    return MinerView(
        m.id,
        site=fm.site,
        model=fm.name,
        hashrate_ths=fm.hashrate_ths,
        power_w=fm.power_w,
        sleep_power_w=fm.sleep_power_w,
        profit_per_day=profit,
        efficiency_j_per_th=fm.power_w / fm.hashrate_ths,
        can_sleep=True,
        can_limit=fm.can_limit,
    )


def _slug(name: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in name.lower()).strip("-")


def _result(
    series: PriceSeries,
    fleet: Sequence[FleetModel],
    miners: list[_Miner],
    acc: list[_Acc],
    base: list[_Acc],
    rule_acc: dict[str, list[float]],
    samples: list[Sample],
    hashprice: float,
    decisions_n: int,
    commands_n: int,
    curtailed_s: float,
) -> BacktestResult:
    hours = series.span_s / 3600
    by_model = []
    for k, fm in enumerate(fleet):
        sw = [m.switches for m in miners if m.model == k]
        by_model.append(
            ModelResult(
                fm.name,
                fm.count,
                acc[k].run_s / base[k].run_s if base[k].run_s else 0.0,
                acc[k].money(),
                base[k].money(),
                max(sw, default=0),
                sum(sw) / len(sw) if sw else 0.0,
            )
        )
    by_rule = tuple(RuleResult(rule, v[0] / 3600, v[1] / 1e6, v[2]) for rule, v in sorted(rule_acc.items()))
    total = Money(
        *(sum(getattr(r.actual, f) for r in by_model) for f in ("energy_mwh", "energy_cost", "revenue"))
    )
    baseline = Money(
        *(sum(getattr(r.baseline, f) for r in by_model) for f in ("energy_mwh", "energy_cost", "revenue"))
    )
    run_s = sum(a.run_s for a in acc)
    all_s = sum(b.run_s for b in base)
    switches = [m.switches for m in miners]
    return BacktestResult(
        start=series.intervals[0].start,
        end=series.intervals[-1].end,
        hours=hours,
        miners=len(miners),
        hashprice_usd_per_ph_day=hashprice,
        actual=total,
        baseline=baseline,
        uptime=run_s / all_s if all_s else 0.0,
        curtailed_hours=curtailed_s / 3600,
        switches_max=max(switches),
        switches_mean=sum(switches) / len(switches),
        decisions=decisions_n,
        commands=commands_n,
        by_model=tuple(by_model),
        by_rule=by_rule,
        samples=tuple(samples),
        source=series.source,
        location=series.location,
        gaps=series.gaps,
    )
