"""`fleetd backtest` end to end: table, --json, --plot, and one-line errors."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

from fleetd.cli import main

DATA = Path(__file__).parent / "data"
RT = str(DATA / "ercot_rt_fall_back.csv")
SAMPLE = str(Path(__file__).parents[2] / "config" / "backtest-prices.csv")  # shipped; the README uses it
FLEET = "Antminer S19 Pro=10,Antminer S21=5"
BASE = ["--fleet", FLEET, "--strike", "90", "--hashprice-usd-per-ph-day", "50"]


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["backtest", *args])
    out, err = capsys.readouterr()
    return code, out, err


def test_json_on_ercot_rt_has_the_shape_operators_publish(capsys):
    code, out, err = run(capsys, "--prices", RT, "--settlement-point", "HB_HOUSTON", *BASE, "--json")
    assert code == 0, err
    d = json.loads(out)
    assert d["prices"] == {"source": "ercot-rt", "settlement_point": "HB_HOUSTON"}
    assert d["period"]["hours"] == 25 and d["miners"] == 15
    # A $90 strike on real-time prices: the fleet runs most of the time, and the few spike hours it
    # sits out carry a far larger share of the energy bill than of the revenue.
    assert d["uptime"] >= 0.85
    assert d["energy_cost_saved_share"] >= 3 * d["revenue_lost_share"] > 0
    assert d["net_gain_usd"] > 0
    assert d["curtailed"]["energy_mwh"] < d["always_on"]["energy_mwh"]
    assert [m["model"] for m in d["by_model"]] == ["Antminer S19 Pro", "Antminer S21"]
    assert [m["miners"] for m in d["by_model"]] == [10, 5]
    (rule,) = d["by_rule"]
    assert rule["rule"] == "strike_90" and rule["energy_cost_saved_usd"] == d["energy_cost_saved_usd"]
    assert d["switches_per_miner"]["max"] >= 2
    assert "interim_policy" not in d  # the real decide and plan_step, nothing else


def test_shipped_sample_two_weeks_same_shape(capsys):
    code, out, err = run(capsys, "--prices", SAMPLE, *BASE, "--json")
    assert code == 0, err
    d = json.loads(out)
    assert d["prices"]["source"] == "csv" and d["period"]["hours"] == 336
    assert d["uptime"] >= 0.9 and d["energy_cost_saved_share"] >= 4 * d["revenue_lost_share"] > 0


def test_table_by_default(capsys):
    code, out, err = run(capsys, "--prices", RT, "--settlement-point", "HB_HOUSTON", *BASE)
    assert code == 0, err
    for text in (
        "uptime",
        "energy cost saved",
        "revenue lost",
        "net gain",
        "switches per miner",
        "strike_90",
    ):
        assert text in out
    assert "Antminer S21" in out and "HB_HOUSTON" in out


def test_config_rules_and_fleet_from_file(tmp_path, capsys):
    cfg = tmp_path / "fleetd.toml"
    cfg.write_text(
        '[[miners]]\nhost = "127.0.0.1"\nmodel = "Antminer S19 Pro"\n\n'
        '[[economics.hashprice]]\nkind = "static"\nper_ph_day = 50\n\n'
        '[[curtailment.rules]]\nkind = "economic"\nname = "loss"\nconfirm = 1\n'
    )
    code, out, err = run(
        capsys, "--prices", RT, "--settlement-point", "HB_HOUSTON", "--config", str(cfg), "--json"
    )
    assert code == 0, err
    d = json.loads(out)
    assert d["miners"] == 1 and d["hashprice_usd_per_ph_day"] == 50
    assert [r["rule"] for r in d["by_rule"]] == ["loss"]


def test_svg_plot(tmp_path, capsys):
    plot = tmp_path / "bt.svg"
    code, _, err = run(capsys, "--prices", RT, "--settlement-point", "HB_HOUSTON", *BASE, "--plot", str(plot))
    assert code == 0, err
    svg = plot.read_text()
    assert svg.lstrip().startswith(("<svg", "<?xml")) and svg.rstrip().endswith("</svg>")
    assert svg.count("<polyline") == 3  # price, fleet load, curtailed share
    assert "strike" in svg.lower()  # the strike line is labelled
    assert f"plot written to {plot}" in err


def test_png_plot_or_a_clear_error_without_matplotlib(tmp_path, capsys):
    plot = tmp_path / "bt.png"
    code, _, err = run(capsys, "--prices", RT, "--settlement-point", "HB_HOUSTON", *BASE, "--plot", str(plot))
    if importlib.util.find_spec("matplotlib") is None:
        assert code == 2 and "needs matplotlib" in err and len(err.strip().splitlines()) == 1
        assert not plot.exists()
    else:
        assert code == 0, err
        assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--prices", "/nonexistent/prices.csv"], "cannot read /nonexistent/prices.csv"),
        (["--prices", RT], "holds 2 settlement points; pick one with --settlement-point"),
        (["--prices", SAMPLE, "--plot", "out.pdf"], "the plot is written as .svg or .png"),
    ],
)
def test_errors_are_one_line(capsys, args, message):
    code, out, err = run(capsys, *args, *BASE)
    assert code == 2 and out == ""
    assert message in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1


def test_bad_row_error_names_the_line(tmp_path, capsys):
    p = tmp_path / "p.csv"
    p.write_text(
        "timestamp,price_usd_per_mwh\n2025-08-04T00:00:00Z,10\n2025-08-04T00:15:00Z,12\n2025-08-04T00:30:00Z,x\n"
    )
    code, _, err = run(capsys, "--prices", str(p), *BASE)
    assert code == 2
    assert err.startswith(f"fleetd backtest: {p}: line 4: ") and len(err.strip().splitlines()) == 1


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--fleet", FLEET, "--hashprice-usd-per-ph-day", "50"], "no curtailment rules"),
        (["--strike", "90", "--hashprice-usd-per-ph-day", "50"], "no fleet"),
        (
            ["--fleet", "Antminer S19 Pro=ten", "--strike", "90", "--hashprice-usd-per-ph-day", "50"],
            "not a whole number",
        ),
        (["--fleet", FLEET, "--strike", "90"], "no hashprice"),
    ],
)
def test_missing_inputs_are_one_line(capsys, args, message):
    code, _, err = run(capsys, "--prices", SAMPLE, *args)
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1
