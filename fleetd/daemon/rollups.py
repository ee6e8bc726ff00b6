"""Hourly per-miner totals integrated from poll samples: energy, hashes, time spent mining."""

from __future__ import annotations

from dataclasses import dataclass

from fleetd.daemon.state import MinerRecord
from fleetd.model import Snapshot


@dataclass(frozen=True, slots=True)
class RollupRow:
    """Additive totals of one miner over part of one hour (rows for the same key are summed)."""

    miner_id: str
    hour_start: float  # unix time of the hour's start (UTC)
    energy_kwh: float
    hashes_th: float  # terahashes done
    uptime_s: float  # seconds spent mining
    samples: int
    revenue: float | None = None  # filled when economics prices are known
    cost: float | None = None
    currency: str = ""


class Rollups:
    """Integrates each sample over the time since the previous one; a long gap (miner down) counts nothing."""

    __slots__ = ("_acc", "_last", "max_gap_s")

    def __init__(self, max_gap_s: float) -> None:
        self.max_gap_s = max_gap_s
        self._last: dict[str, float] = {}
        self._acc: dict[tuple[str, int], list[float]] = {}

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
            acc = self._acc[key] = [0.0, 0.0, 0.0, 0.0]
        power = snap.power_w if snap.power_w is not None else rec.nominal_power_w if snap.is_mining else None
        if power:  # measured, else the configured nominal power while mining
            acc[0] += power * dt / 3.6e6
        if snap.hashrate_ths:
            acc[1] += snap.hashrate_ths * dt
        if snap.is_mining:
            acc[2] += dt
        acc[3] += 1

    def forget(self, miner_id: str) -> None:
        self._last.pop(miner_id, None)

    def drain(self) -> list[RollupRow]:
        """Everything accumulated since the last drain; the accumulators start again from zero."""
        acc, self._acc = self._acc, {}
        return [RollupRow(mid, float(hour), a[0], a[1], a[2], int(a[3])) for (mid, hour), a in acc.items()]
