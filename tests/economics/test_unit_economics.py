"""Per-unit economics, the power figure's origin, fleet and per-model totals, and the model catalog."""

from __future__ import annotations

import tomllib

import pytest

from fleetd.economics.catalog import DEFAULT_CATALOG, Catalog, CatalogError, normalize
from fleetd.economics.unit import economics, fleet_economics, unit_economics
from fleetd.model import Identity, Mode, Snapshot


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return Catalog.load()


def test_issue_example_spends_about_92_percent_on_power() -> None:
    # hashprice $34/PH/day, $0.06/kWh, 140 TH/s at 3,010 W
    r = economics(140, 3010, 34.0, 60.0)
    assert r.revenue_per_day == pytest.approx(4.76)
    assert r.power_cost_per_day == pytest.approx(3.010 * 24 * 0.06)
    assert r.power_cost_share == pytest.approx(0.92, abs=0.01)
    assert r.efficiency_j_per_th == pytest.approx(21.5)
    assert r.profit_per_day == pytest.approx(4.76 - 4.3344)
    # breakevens: profit is zero there
    assert economics(140, 3010, 34.0, r.breakeven_per_mwh).profit_per_day == pytest.approx(0.0, abs=1e-9)
    assert economics(140, 3010, r.breakeven_hashprice_per_ph_day, 60.0).profit_per_day == pytest.approx(
        0.0, abs=1e-9
    )


def test_fees_reduce_revenue_and_raise_breakeven_hashprice() -> None:
    gross = economics(200, 3500, 50.0, 50.0)
    net = economics(200, 3500, 50.0, 50.0, pool_fee=0.02, dev_fee=0.028)
    assert net.revenue_per_day == pytest.approx(gross.revenue_per_day * 0.98 * 0.972)
    assert net.breakeven_hashprice_per_ph_day == pytest.approx(
        gross.breakeven_hashprice_per_ph_day / (0.98 * 0.972)
    )
    assert net.power_cost_per_day == gross.power_cost_per_day


def test_missing_inputs_give_none_not_zero() -> None:
    r = economics(140, 3010, None, 60.0)
    assert r.revenue_per_day is None and r.profit_per_day is None and r.power_cost_share is None
    assert r.power_cost_per_day == pytest.approx(4.3344)
    r = economics(140, None, 34.0, 60.0)
    assert r.power_cost_per_day is None and r.profit_per_day is None and r.efficiency_j_per_th is None
    assert r.profitable is None


def snap(**kw) -> Snapshot:
    base = {"hashrate_ths": 139.0, "hashrate_avg_ths": 140.0, "is_mining": True, "mode": Mode.NORMAL}
    base.update(kw)
    return Snapshot(**base)


def test_power_measured_first(catalog: Catalog) -> None:
    r = unit_economics(
        snap(power_w=3100.0), Identity("antminer", "Antminer S19 XP"), 34.0, 60.0, catalog, 3300
    )
    assert (r.power_w, r.power_source) == (3100.0, "measured")
    assert r.hashrate_ths == 140.0  # the average, not the 5 s figure
    assert r.model == "Antminer S19 XP"


def test_power_from_catalog_then_configured(catalog: Catalog) -> None:
    r = unit_economics(snap(), Identity("antminer", "Antminer S19 XP"), 34.0, 60.0, catalog, 3300)
    assert (r.power_w, r.power_source) == (3010.0, "catalog")
    assert r.power_cost_share == pytest.approx(0.91, abs=0.01)
    r = unit_economics(snap(), Identity("antminer", "Antminer X99"), 34.0, 60.0, catalog, 3300)
    assert (r.power_w, r.power_source) == (3300, "configured")
    r = unit_economics(snap(), Identity("antminer", "Antminer X99"), 34.0, 60.0, catalog, None)
    assert (r.power_w, r.power_source) == (None, "unknown")
    assert r.profit_per_day is None
    r = unit_economics(snap(mode=Mode.LOW), Identity("whatsminer", "M60S_VK40"), 34.0, 60.0, catalog)
    assert (r.power_w, r.power_source) == (3441.0, "catalog")  # no low-mode figure: normal is used


def test_sleeping_unit_costs_nothing_and_earns_nothing(catalog: Catalog) -> None:
    s = Snapshot(is_mining=False, mode=Mode.SLEEP)
    r = unit_economics(s, Identity("antminer", "Antminer S21"), 34.0, 60.0, catalog)
    assert (r.power_w, r.power_source, r.hashrate_ths) == (0.0, "asleep", 0.0)
    assert r.revenue_per_day == 0.0 and r.power_cost_per_day == 0.0 and r.power_cost_share is None


def test_fleet_totals_and_per_model(catalog: Catalog) -> None:
    xp = Identity("antminer", "Antminer S19 XP")
    s21 = Identity("antminer", "Antminer S21")
    results = [
        unit_economics(snap(), xp, 34.0, 60.0, catalog),
        unit_economics(snap(), xp, 34.0, 80.0, catalog),  # unprofitable at $80/MWh
        unit_economics(snap(hashrate_avg_ths=200.0), s21, 34.0, 60.0, catalog),
        unit_economics(snap(), Identity("x", "Mystery"), 34.0, 60.0, catalog),  # no power figure
    ]
    fleet = fleet_economics(results, fixed_cost_per_day=1.0)
    t = fleet.total
    assert t.units == 4 and t.incomplete == 1 and t.unprofitable == 1
    assert t.revenue_per_day == pytest.approx(sum(r.revenue_per_day for r in results[:3]))
    assert t.power_cost_per_day == pytest.approx(sum(r.power_cost_per_day for r in results[:3]))
    assert t.hashrate_ths == pytest.approx(480.0)
    assert t.power_w == pytest.approx(3010 * 2 + 3500)
    assert fleet.profit_per_day == pytest.approx(t.profit_per_day - 1.0)
    names = [m.label for m in fleet.by_model]
    assert names == ["Antminer S19 XP", "Antminer S21", "Mystery"]
    xp_sum = fleet.by_model[0]
    assert xp_sum.units == 2 and xp_sum.unprofitable == 1
    assert xp_sum.efficiency_j_per_th == pytest.approx(21.5)
    assert xp_sum.power_cost_share == pytest.approx(xp_sum.power_cost_per_day / xp_sum.revenue_per_day)


@pytest.mark.parametrize(
    ("reported", "expected"),
    [
        ("Antminer S19 Pro", "Antminer S19 Pro"),  # as the S19 Pro fixture reports it
        ("Antminer S21", "Antminer S21"),
        ("S19j Pro", "Antminer S19j Pro"),
        ("antminer s19xp", "Antminer S19 XP"),
        ("Whatsminer M50S_VH50", "Whatsminer M50S"),
        ("M60S_VK40", "Whatsminer M60S"),
        ("WhatsMiner M30S+", "Whatsminer M30S+"),
        ("M30S++_VG40", "Whatsminer M30S++"),
        ("AvalonMiner 1566", "Avalon A1566"),
        ("Avalon A1466", "Avalon A1466"),
        ("Antminer T21", "Antminer T21"),
        ("Antminer S21 Pro", "Antminer S21 Pro"),
    ],
)
def test_catalog_lookup(catalog: Catalog, reported: str, expected: str) -> None:
    entry = catalog.find(reported)
    assert entry is not None and entry.name == expected


def test_catalog_misses_and_normalize(catalog: Catalog) -> None:
    assert catalog.find("Antminer L7") is None
    assert catalog.nominal("nothing") is None
    assert normalize("Antminer S19 XP") == normalize("S19-XP") == "s19xp"


def test_catalog_file_has_a_source_for_every_number() -> None:
    data = tomllib.loads(DEFAULT_CATALOG.read_text())
    required = {
        "antminer_s19", "antminer_s19_pro", "antminer_s19j_pro", "antminer_s19_xp", "antminer_s21",
        "antminer_s21_pro", "antminer_t21", "whatsminer_m30s", "whatsminer_m50s", "whatsminer_m60s",
    }  # fmt: skip
    assert required <= set(data["models"])
    assert any(k.startswith("avalon_") for k in data["models"])
    cat = Catalog.from_dict(data)
    for m in cat.models:
        for _, nominal in m.modes:
            assert nominal.source.strip() and 10 < nominal.efficiency_j_per_th < 45, m.name


def test_catalog_errors(tmp_path) -> None:
    with pytest.raises(CatalogError, match="cannot read"):
        Catalog.load(tmp_path / "missing.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("[models.x.normal]\nhashrate_ths = 100\npower_w = 3000\n")
    with pytest.raises(CatalogError, match="source"):
        Catalog.load(bad)
    bad.write_text("models = [")
    with pytest.raises(CatalogError, match="not valid TOML"):
        Catalog.load(bad)
