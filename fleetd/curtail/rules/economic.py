"""Economic rule: a losing miner sleeps after `confirm` checks, resumes after `resume_confirm` above the band.

State lives in MinerMemory.streaks: `<name>` counts consecutive checks on the far side of the current
state, `<name>.off` is 1 while the rule holds the miner asleep.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from fleetd.curtail.config import EconomicRule
from fleetd.curtail.model import MinerView, Reason, RuleKind
from fleetd.numbers import MAX_PROFIT_USD_PER_DAY, number


@dataclass(frozen=True, slots=True)
class Verdict:
    off: bool | None  # True: sleep, False: run, None: unknown (keep the remembered target)
    reason: Reason
    count: int  # new streak
    off_flag: int  # new `<name>.off`


def evaluate(rule: EconomicRule, m: MinerView, streaks: Mapping[str, int]) -> Verdict:
    name = rule.name
    off_key = name + ".off"
    was_off = streaks.get(off_key, 0) == 1
    count = streaks.get(name, 0)
    threshold = rule.threshold_usd_per_day
    resume_at = threshold + rule.hysteresis_usd_per_day
    profit = number(m.profit_per_day, -MAX_PROFIT_USD_PER_DAY, MAX_PROFIT_USD_PER_DAY)
    values: dict[str, float | str | None] = {
        "profit_usd_per_day": profit,
        "threshold_usd_per_day": threshold,
        "resume_above_usd_per_day": resume_at,
    }
    if profit is None or m.stale_economics:
        why = "computed from stale prices" if profit is not None else "unknown"
        text = f"profit {why}: keeping the current target"
        return Verdict(None, Reason(RuleKind.ECONOMIC, name, text, values), 0, int(was_off))
    if not was_off:
        count = count + 1 if profit < threshold else 0
        values["checks"] = count
        values["confirm"] = rule.confirm
        if count >= rule.confirm:
            text = f"profit {_usd(profit)}/day below threshold {_usd(threshold)}/day for {count} checks"
            return Verdict(True, Reason(RuleKind.ECONOMIC, name, text, values), 0, 1)
        if count:
            text = (
                f"profit {_usd(profit)}/day below threshold {_usd(threshold)}/day,"
                f" {count} of {rule.confirm} checks to confirm"
            )
        else:
            text = f"profit {_usd(profit)}/day at or above threshold {_usd(threshold)}/day"
        return Verdict(False, Reason(RuleKind.ECONOMIC, name, text, values), count, 0)
    count = count + 1 if profit > resume_at else 0
    values["checks"] = count
    values["resume_confirm"] = rule.resume_confirm
    if count >= rule.resume_confirm:
        text = f"profit {_usd(profit)}/day above {_usd(resume_at)}/day for {count} checks: resuming"
        return Verdict(False, Reason(RuleKind.ECONOMIC, name, text, values), 0, 0)
    if count:
        text = (
            f"profit {_usd(profit)}/day above {_usd(resume_at)}/day,"
            f" {count} of {rule.resume_confirm} checks to resume"
        )
    else:
        text = (
            f"profit {_usd(profit)}/day not above {_usd(resume_at)}/day (threshold plus hysteresis): asleep"
        )
    return Verdict(True, Reason(RuleKind.ECONOMIC, name, text, values), count, 1)


def _usd(x: float) -> str:
    return f"-${-x:,.2f}" if x < 0 else f"${x:,.2f}"
