"""Hourly per-miner totals integrated from poll samples: energy, hashes, time mining, revenue and cost."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from fleetd import numbers
from fleetd.daemon.state import MinerRecord
from fleetd.model import Snapshot
from fleetd.records import MIXED, RollupRow

__all__ = ["MIXED", "PowerOf", "PricesAt", "Pricing", "RollupRow", "Rollups", "configured_power"]


@dataclass(frozen=True, slots=True)
class Pricing:
    """Prices to value samples with until `until` (unix time); None where a price is unknown."""

    revenue_per_th: float | None  # currency per terahash done, after pool and dev fees
    cost_per_kwh: float | None  # all-in energy price
    currency: str
    until: float


PowerOf = Callable[[MinerRecord, Snapshot], tuple[float | None, str]]
PricesAt = Callable[[float], Pricing]
_EXPIRED = Pricing(None, None, "", float("-inf"))


def configured_power(rec: MinerRecord, snap: Snapshot) -> tuple[float | None, str]:
    """Measured power, else the configured nominal power while mining."""
    measured = numbers.power_w(snap.power_w)  # NaN, inf or an absurd figure: not measured
    if measured:
        return measured, "measured"
    if snap.is_mining and rec.nominal_power_w:
        return rec.nominal_power_w, "configured"
    return None, "unknown"


class Rollups:
    """Integrates each sample over the time since the previous one; a long gap (miner down) counts nothing.

    Each sample is valued at the prices valid at its time (`prices_at`, asked again once the prices it
    returned expire), so time-of-use and real-time prices that change within an hour are honoured.
    """

    __slots__ = ("_acc", "_last", "_pricing", "max_gap_s", "power_of", "prices_at")

    def __init__(
        self, max_gap_s: float, power_of: PowerOf | None = None, prices_at: PricesAt | None = None
    ) -> None:
        self.max_gap_s = max_gap_s
        self.power_of = power_of or configured_power
        self.prices_at = prices_at
        self._pricing = _EXPIRED
        self._last: dict[str, float] = {}
        self._acc: dict[tuple[str, int], list] = {}  # type: ignore[type-arg]

    def reprice(self) -> None:
        """Ask `prices_at` again at the next sample (prices or their sources changed)."""
        self._pricing = _EXPIRED

    def sample(self, rec: MinerRecord, snap: Snapshot, now: float) -> None:
        prev = self._last.get(rec.id)
        self._last[rec.id] = now
        if prev is None:
            return
        dt = now - prev
        if dt <= 0.0 or dt > self.max_gap_s:
            return
        key = (rec.id, int(now // 3600) * 3600)
        acc = self._acc.get(key)
        if acc is None:
            acc = self._acc[key] = [0.0, 0.0, 0.0, 0, None, None, "", ""]
        pricing = self._pricing
        if self.prices_at is not None and now >= pricing.until:
            pricing = self._pricing = self.prices_at(now)
        power, source = self.power_of(rec, snap)
        power = numbers.power_w(power)  # an impossible figure would poison the miner's hour for good
        if power:
            kwh = power * dt / 3.6e6
            acc[0] += kwh
            if pricing.cost_per_kwh is not None:
                acc[5] = (acc[5] or 0.0) + kwh * pricing.cost_per_kwh
        elif pricing.cost_per_kwh is not None and acc[5] is None:
            acc[5] = 0.0
        hashes = (numbers.hashrate_ths(snap.hashrate_ths) or 0.0) * dt
        acc[1] += hashes
        if pricing.revenue_per_th is not None:
            acc[4] = (acc[4] or 0.0) + hashes * pricing.revenue_per_th
        if snap.is_mining:
            acc[2] += dt
        acc[3] += 1
        if pricing.currency:
            acc[6] = pricing.currency
        acc[7] = source if acc[7] in ("", source) else MIXED

    def forget(self, miner_id: str) -> None:
        self._last.pop(miner_id, None)

    def drain(self) -> list[RollupRow]:
        """Everything accumulated since the last drain; the accumulators start again from zero."""
        acc, self._acc = self._acc, {}
        return [RollupRow(mid, float(hour), *a) for (mid, hour), a in acc.items()]
