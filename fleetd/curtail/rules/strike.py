"""Price strike: sleep the scope while the all-in price is above a strike, with Foreman's window semantics.

As Foreman documents its strike-price automation (support.foreman.mn, "How Do I Configure Automated
Curtailment at a Strike Price?"): curtail after N consecutive price windows above the low strike, at once
on any window above the high strike, and resume once the price has been below the resume level for M
consecutive windows. fleetd's window is the market's settlement interval (PriceView.interval_s). The state is
replayed from PriceView.history on every pass, so it survives restarts; FleetMemory only carries it past the
start of a short history. A missing or unusable interval breaks both runs (it neither confirms nor resumes).
"""

from __future__ import annotations

from dataclasses import dataclass

from fleetd.curtail.config import PriceStrikeRule
from fleetd.curtail.model import PriceView, Reason, RuleKind
from fleetd.numbers import number

_MAX_PRICE = 1e7  # $/MWh; beyond any market cap, so a corrupt value


@dataclass(frozen=True, slots=True)
class StrikeState:
    active: bool
    reason: Reason


def intervals(prices: PriceView) -> list[float | None]:
    """The price per interval, oldest first; None for an unusable value or a gap between intervals."""
    points = list(prices.history)
    if prices.now_usd_per_mwh is not None and (not points or points[-1].start < prices.at):
        out_now = True
    else:
        out_now = False
    step = prices.interval_s if prices.interval_s > 0 else 900.0
    seq: list[float | None] = []
    last: float | None = None
    for p in points:
        if last is not None and p.start - last > 1.5 * step:
            seq.append(None)
        seq.append(number(p.usd_per_mwh, -_MAX_PRICE, _MAX_PRICE))
        last = p.start
    if out_now:
        if last is not None and prices.at - last > 1.5 * step:
            seq.append(None)
        seq.append(number(prices.now_usd_per_mwh, -_MAX_PRICE, _MAX_PRICE))
    return seq


def evaluate(rule: PriceStrikeRule, seq: list[float | None], was_active: bool) -> StrikeState:
    strike = rule.strike_usd_per_mwh
    high = rule.high_strike_usd_per_mwh
    resume = rule.resume_below_usd_per_mwh if rule.resume_below_usd_per_mwh is not None else strike
    active = False
    resumed = False
    above = below = 0
    how = ""
    for p in seq:
        if p is None:
            above = below = 0
            continue
        above = above + 1 if p > strike else 0
        below = below + 1 if p < resume else 0
        if not active:
            if high is not None and p > high:
                active, how = True, "high"
            elif above >= rule.for_intervals:
                active, how = True, "strike"
        elif below >= rule.resume_after_intervals:
            active, resumed = False, True
    if not active and was_active and not resumed and below < rule.resume_after_intervals:
        active, how = True, "memory"  # activated before the start of the history we have
    now = seq[-1] if seq else None
    values: dict[str, float | str | None] = {
        "price_usd_per_mwh": now,
        "strike_usd_per_mwh": strike,
        "high_strike_usd_per_mwh": high,
        "resume_below_usd_per_mwh": resume,
        "intervals_above": above,
        "intervals_below": below,
    }
    if active:
        if how == "high" and above and high is not None and now is not None and now > high:
            text = f"price {_p(now)} above high strike {_p(high)}: curtailed at once"
        elif below:
            text = (
                f"price {_p(now)} below {_p(resume)} for {below} of {rule.resume_after_intervals}"
                " intervals needed to resume: still curtailed"
            )
        else:
            text = (
                f"price {_p(now)} above strike {_p(strike)} ({above} intervals, {rule.for_intervals}"
                f" to curtail) or not yet below {_p(resume)}: curtailed"
            )
        return StrikeState(True, Reason(RuleKind.PRICE_STRIKE, rule.name, text, values))
    if above:
        text = f"price {_p(now)} above strike {_p(strike)} for {above} of {rule.for_intervals} intervals"
    elif resumed and below:
        text = f"price {_p(now)} below {_p(resume)} for {below} intervals: resumed"
    else:
        text = f"price {_p(now)} not above strike {_p(strike)}"
    return StrikeState(False, Reason(RuleKind.PRICE_STRIKE, rule.name, text, values))


def _p(x: float | None) -> str:
    return "unknown" if x is None else f"${x:,.2f}/MWh"
