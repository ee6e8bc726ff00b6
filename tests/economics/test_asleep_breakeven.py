"""A sleeping unit earns nothing: no electricity price breaks it even, so breakeven is n/a, never $0."""

from __future__ import annotations

import json

import pytest

from fleetd.cli import main
from fleetd.economics.unit import economics


def test_zero_revenue_has_no_breakeven_electricity_price() -> None:
    e = economics(0.0, 20.0, 34.0, 60.0, power_source="catalog-sleep")
    assert e.revenue_per_day == 0.0 and e.breakeven_per_mwh is None


def test_profit_mode_sleep_prints_na(capsys: pytest.CaptureFixture[str]) -> None:
    args = ["profit", "--mode", "sleep", "--model", "Antminer S19 Pro", "--hashprice-usd-per-ph-day", "34"]
    args += ["--electricity-usd-per-kwh", "0.06"]
    assert main(args) == 0
    line = next(x for x in capsys.readouterr().out.splitlines() if x.startswith("breakeven electricity"))
    assert line.split()[-1] == "n/a"
    assert main([*args, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["breakeven_usd_per_mwh"] is None
