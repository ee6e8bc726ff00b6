"""Rollups and economics wired into the daemon: power fallbacks, prices per interval, live economics."""

from __future__ import annotations

import asyncio
import itertools
import random
from pathlib import Path

import pytest

from fleetd.config import parse_config
from fleetd.daemon.core import Daemon, next_cycle_delay
from fleetd.daemon.events import Event, EventKind
from fleetd.daemon.rollups import Pricing, Rollups
from fleetd.daemon.state import Health, MinerRecord
from fleetd.model import Identity, Mode, Snapshot

HOUR = 1_795_300_000.0 // 3600 * 3600  # a UTC hour start (2026-11-22, a Sunday)
S19 = Identity("antminer", "Antminer S19 Pro", firmware="2023-01", serial="SN1")
ODD = Identity("antminer", "Antminer X99 Custom", firmware="x")  # not in the catalog
MINING = Snapshot(hashrate_ths=100.0, is_mining=True, mode=Mode.NORMAL)
ASLEEP = Snapshot(hashrate_ths=0.0, is_mining=False, mode=Mode.SLEEP)


def _daemon(economics: dict | None = None, **miner: object) -> Daemon:
    data: dict = {"miners": [{"host": "127.22.0.1"} | miner]}
    if economics is not None:
        data["economics"] = economics
    d = Daemon(parse_config(data), storage=False)
    d.economics = d._build_economics(d.config)
    d.catalog = d._load_catalog()
    d._apply_targets(d.config, d._targets(d.config), initial=True)
    return d


def _feed(d: Daemon, ident: Identity, snaps: list[Snapshot], start: float, step: float = 10.0) -> MinerRecord:
    rec = d.state.miners["127.22.0.1"]
    rec.identity = ident
    for i, snap in enumerate(snaps):
        d.rollups.sample(rec, snap, start + i * step)
    return rec


@pytest.mark.parametrize(
    ("ident", "snap", "miner", "watts", "source"),
    [
        (S19, Snapshot(hashrate_ths=100.0, power_w=3000.0, is_mining=True), {}, 3000.0, "measured"),
        (S19, MINING, {}, 3250.0, "catalog"),  # stock Antminer: no power reading
        (S19, ASLEEP, {}, 20.0, "catalog-sleep"),
        (ODD, MINING, {"model": "Antminer S21"}, 3500.0, "catalog"),  # configured model
        (ODD, MINING, {"nominal_power_w": 3100}, 3100.0, "configured"),
        (S19, MINING, {"nominal_power_w": 3100}, 3250.0, "catalog"),  # catalog before configured
    ],
)
def test_energy_falls_back_to_catalog_then_configured(
    ident: Identity, snap: Snapshot, miner: dict, watts: float, source: str
) -> None:
    d = _daemon(**miner)
    _feed(d, ident, [snap] * 7, HOUR)  # 6 intervals of 10 s
    (row,) = d.rollups.drain()
    assert row.energy_kwh == pytest.approx(watts * 60 / 3.6e6)
    assert row.power_source == source


def test_an_hour_with_two_kinds_of_power_is_mixed() -> None:
    d = _daemon()
    _feed(d, S19, [MINING, MINING, ASLEEP], HOUR)
    (row,) = d.rollups.drain()
    assert row.power_source == "mixed"
    assert row.energy_kwh == pytest.approx((3250 * 10 + 20 * 10) / 3.6e6)


def test_not_mining_and_not_asleep_counts_no_energy() -> None:
    d = _daemon()
    _feed(d, S19, [Snapshot(is_mining=False, mode=Mode.NORMAL)] * 3, HOUR)
    (row,) = d.rollups.drain()
    assert row.energy_kwh == 0.0 and row.power_source == "unknown"


def test_nominal_power_before_the_first_poll_uses_the_configured_model() -> None:
    d = _daemon(model="Antminer S21")
    rec = d.state.miners["127.22.0.1"]
    assert rec.identity is None and rec.model == "Antminer S21"
    assert d.nominal_power(rec) == (3500.0, "catalog")
    d2 = _daemon(nominal_power_w=3000)
    assert d2.nominal_power(d2.state.miners["127.22.0.1"]) == (3000.0, "configured")


def test_each_sample_is_priced_at_the_price_of_its_interval() -> None:
    """A real-time price that changes within the hour: revenue and cost follow it, not one hourly price."""
    asked: list[float] = []

    def prices(now: float) -> Pricing:
        asked.append(now)
        first = now < HOUR + 900
        end = HOUR + 900 if first else HOUR + 1800
        return Pricing(1e-6 if first else 2e-6, 0.02 if first else 0.20, "USD", end)

    rec = MinerRecord("m", "m")
    r = Rollups(1000.0, prices_at=prices)
    snap = Snapshot(hashrate_ths=100.0, power_w=3600.0, is_mining=True)
    for t in range(0, 1800 + 1, 100):  # samples every 100 s across the price change at 900 s
        r.sample(rec, snap, HOUR + t)
    (row,) = r.drain()
    # samples at t < 900 s take the first price, those from 900 s on the second
    first, second = (
        [t for t in range(100, 1801, 100) if t < 900],
        [t for t in range(100, 1801, 100) if t >= 900],
    )
    kwh = 3600.0 * 100 / 3.6e6
    assert row.cost == pytest.approx(len(first) * kwh * 0.02 + len(second) * kwh * 0.20)
    assert row.revenue == pytest.approx(len(first) * 1e4 * 1e-6 + len(second) * 1e4 * 2e-6)
    assert row.currency == "USD"
    assert asked == [HOUR + 100, HOUR + 900, HOUR + 1800]  # asked again only when a price expired


TOU = {
    "pool_fee": 0.0,
    "hashprice": [{"kind": "static", "per_ph_day": 50.0}],
    "tariff": {
        "kind": "tou",
        "timezone": "UTC",
        "default": "offpeak",
        "periods": {"offpeak": 0.04, "peak": 0.12},
        "rules": [{"period": "peak", "months": list(range(1, 13)), "days": "all", "hours": [14]}],
    },
}


async def test_daemon_prices_rollups_with_time_of_use_within_the_hour() -> None:
    d = _daemon(TOU)
    assert d.economics is not None
    await d.economics.refresh_all()
    t0 = HOUR - HOUR % 86400 + 13 * 3600 + 3000  # 13:50 UTC, peak starts at 14:00
    snap = Snapshot(hashrate_ths=100.0, power_w=3600.0, is_mining=True)
    _feed(d, S19, [snap] * 121, t0)  # 20 minutes: 10 off-peak, 10 peak
    rows = sorted(d.rollups.drain(), key=lambda r: r.hour_start)
    assert [r.hour_start for r in rows] == [t0 - 3000, t0 + 600]
    kwh_10min = 3.6 * 600 / 3600
    assert rows[0].cost == pytest.approx(kwh_10min * 0.04, rel=0.02)
    assert rows[1].cost == pytest.approx(kwh_10min * 0.12, rel=0.02)
    assert rows[0].revenue == pytest.approx(100 * 600 / 1000 / 86400 * 50.0, rel=0.02)


async def test_live_economics_per_miner_and_fleet_after_each_cycle() -> None:
    d = _daemon({"pool_fee": 0.0, "hashprice": [{"kind": "static", "per_ph_day": 34.0}],
                 "tariff": {"kind": "flat", "price_per_kwh": 0.06}})  # fmt: skip
    assert d.economics is not None
    await d.economics.refresh_all()
    rec = d.state.miners["127.22.0.1"]
    rec.identity, rec.snapshot, rec.health = S19, MINING, Health.UP
    d._after_cycle(HOUR)
    assert rec.economics is not None and rec.economics.power_source == "catalog"
    assert rec.economics.revenue_per_day == pytest.approx(0.1 * 34.0)
    assert rec.economics.power_cost_per_day == pytest.approx(3.25 * 24 * 0.06)
    assert d.state.economics is not None and d.state.economics.total.units == 1
    rec.health = Health.DOWN  # a miner down earns nothing: no stale figures
    d._after_cycle(HOUR + 30)
    assert rec.economics is None and d.state.economics.total.units == 0


def test_cycle_start_is_jittered_within_bounds() -> None:
    rng = random.Random(4)
    delays = [next_cycle_delay(100.0, 103.0, 30.0, 2.0, rng) for _ in range(200)]
    assert all(27.0 <= x <= 29.0 for x in delays) and max(delays) - min(delays) > 1.0
    assert next_cycle_delay(100.0, 140.0, 30.0, 0.0, rng) == 0.0  # overran: next cycle at once


def test_poll_order_spreads_neighbours() -> None:
    d = _daemon()
    hosts = [f"127.22.9.{i}" for i in range(1, 101)]
    d2 = Daemon(parse_config({"miners": [{"host": h} for h in hosts]}), storage=False)
    d2._apply_targets(d2.config, d2._targets(d2.config), initial=True)
    order = [s.record.id for s in sorted(d2.poller._slots.values(), key=lambda s: s.order)]
    adjacent = sum(1 for a, b in itertools.pairwise(order) if abs(hosts.index(a) - hosts.index(b)) == 1)
    assert sorted(order) == sorted(hosts) and adjacent < 10  # a rack's neighbours are not polled together
    assert d.state.miners  # unrelated daemon still fine


def test_events_are_buffered_while_storage_is_away(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from fleetd.daemon import storage_handoff
    from fleetd.storage.store import Storage

    monkeypatch.setattr(storage_handoff, "UNSTORED_MAX", 5)
    d = Daemon(parse_config({}), state_dir=tmp_path)  # storage wanted, not open yet
    rec = MinerRecord("m1", "127.22.0.9", driver="antminer")
    d._identity_seen(rec, None, S19)
    for i in range(8):
        d.emit(Event(EventKind.MINER_DOWN, f"down {i}", "m1", "warning", at=HOUR + i))
    assert len(d._spool) == 5 and d.unstored_dropped == 4  # append-only: the 4 newest did not fit
    store = Storage(f"sqlite:///{tmp_path / 'fleetd.db'}")
    d.storage = store
    store.open()
    try:
        asyncio.run(d._replay_spool(store))
        assert store.flush(10)
        messages = [e["message"] for e in store.events(limit=20)]
        assert [m for m in messages if m.startswith("down")] == [f"down {i}" for i in range(3, -1, -1)]
        assert any("4 events, identity changes and rollups were lost" in m for m in messages)
        assert len(store.identity_history("m1")) == 1
        assert len(d._spool) == 0 and d.unstored_dropped == 0 and store.dropped == 4
    finally:
        d.storage.close()
