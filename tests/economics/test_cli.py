"""`fleetd profit` and `fleetd whatif`."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from fleetd.cli import main
from fleetd.economics.hashprice import hashprice_per_ph_day

REQUIRED_KEYS = {
    "hashprice_usd_per_ph_day",
    "revenue_usd_per_day",
    "power_cost_usd_per_day",
    "profit_usd_per_day",
    "power_cost_share",
    "efficiency_j_per_th",
    "breakeven_usd_per_mwh",
}


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_profit_json_issue_example(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(
        capsys,
        "profit", "--json", "--hashrate-ths", "140", "--power-w", "3010",
        "--hashprice-usd-per-ph-day", "34", "--electricity-usd-per-kwh", "0.06",
    )  # fmt: skip
    assert code == 0
    data = json.loads(out)
    assert set(data) >= REQUIRED_KEYS
    assert data["power_cost_share"] == pytest.approx(0.92, abs=0.01)
    assert data["revenue_usd_per_day"] == pytest.approx(4.76)
    assert data["efficiency_j_per_th"] == pytest.approx(21.5)
    assert data["breakeven_usd_per_mwh"] == pytest.approx(4.76 / 0.07224)
    assert data["power_source"] == "configured"


def test_profit_from_network_inputs_and_model(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(
        capsys,
        "profit", "--json", "--model", "S21", "--btc-price", "90000", "--difficulty", "1.5e14",
        "--fees-btc-per-block", "0.03", "--height", "925000", "--electricity-usd-per-kwh", "0.05",
        "--pool-fee", "2%",
    )  # fmt: skip
    assert code == 0
    data = json.loads(out)
    hp = hashprice_per_ph_day(1.5e14, 3.125, 0.03, 90000)
    assert data["hashprice_usd_per_ph_day"] == pytest.approx(hp)
    assert data["revenue_usd_per_day"] == pytest.approx(0.2 * hp * 0.98)
    assert (data["hashrate_ths"], data["power_w"], data["power_source"]) == (200.0, 3500.0, "catalog")
    assert data["model"] == "Antminer S21" and data["subsidy_btc"] == 3.125


def test_profit_table(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(
        capsys,
        "profit", "--hashrate-ths", "140", "--power-w", "3010",
        "--hashprice-usd-per-ph-day", "34", "--electricity-usd-per-kwh", "0.06",
    )  # fmt: skip
    assert code == 0
    assert "power cost share       91.1%" in out
    assert "profit / day           $0.43" in out
    assert "21.5 J/TH" in out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--hashrate-ths", "140", "--electricity-usd-per-kwh", "0.06",
          "--hashprice-usd-per-ph-day", "3"], "--power-w"),
        (["--model", "L7", "--electricity-usd-per-kwh", "0.06"], "not in the catalog"),
        (["--hashrate-ths", "1", "--power-w", "1", "--electricity-usd-per-kwh", "0.06"], "--btc-price"),
        (
            ["--hashrate-ths", "1", "--power-w", "1", "--electricity-usd-per-kwh", "0.06",
             "--hashprice-usd-per-ph-day", "3", "--btc-price", "9", "--difficulty", "1"],
            "not both",
        ),
        (
            ["--model", "S21", "--electricity-usd-per-kwh", "0.06", "--hashprice-usd-per-ph-day", "3",
             "--catalog", "/nonexistent/models.toml"],
            "cannot read catalog",
        ),
    ],
)  # fmt: skip
def test_profit_user_errors_are_one_line(
    capsys: pytest.CaptureFixture[str], argv: list, message: str
) -> None:
    code, out, err = run(capsys, "profit", *argv)
    assert code == 2 and out == ""
    assert message in err and err.count("\n") == 1 and "Traceback" not in err


def test_profit_argument_validation(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["profit", "--hashrate-ths", "-5", "--electricity-usd-per-kwh", "0.06"])
    assert info.value.code == 2
    assert "must be > 0" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["profit", "--pool-fee", "150%", "--electricity-usd-per-kwh", "0.06"])


def test_whatif_grid_for_catalog_models(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(
        capsys,
        "whatif", "--json", "--models", "S19 XP,S21", "--difficulty", "1.5e14",
        "--fees-btc-per-block", "0.03",
        "--btc-prices", "50000,100000", "--electricity-usd-per-kwh", "0.04,0.08",
    )  # fmt: skip
    assert code == 0
    grids = json.loads(out)
    assert [g["model"] for g in grids] == ["Antminer S19 XP", "Antminer S21"]
    xp = grids[0]
    hp = hashprice_per_ph_day(1.5e14, 3.125, 0.03, 50000)
    assert xp["profit_usd_per_day"][0][0] == pytest.approx(0.14 * hp - 3.010 * 24 * 0.04)
    # the breakeven electricity price zeroes profit at that BTC price
    be = xp["breakeven_usd_per_kwh"][0]
    assert 0.14 * hp == pytest.approx(3.010 * 24 * be)
    assert xp["breakeven_btc_price_usd"][1] == pytest.approx(50000 * (3.010 * 24 * 0.08) / (0.14 * hp))


def test_whatif_table_and_fleet_file(capsys: pytest.CaptureFixture[str], tmp_path) -> None:
    fleet = tmp_path / "fleet.toml"
    fleet.write_text(
        '[[fleet]]\nmodel = "Antminer S19 XP"\ncount = 10\n'
        '[[fleet]]\nmodel = "M60S_VK40"\n'
        '[[fleet]]\nmodel = "Custom Box"\nhashrate_ths = 120\npower_w = 3000\ncount = 2\n'
    )
    code, out, _ = run(capsys, "whatif", "--fleet", str(fleet), "--difficulty", "1.5e14")
    assert code == 0
    assert "10 x Antminer S19 XP" in out and "Whatsminer M60S" in out and "2 x Custom Box" in out
    assert "fleet total (13 units): 1826 TH/s, 39541 W" in out
    assert "unprofitable >" in out and "loses below BTC $" in out
    code, out, err = run(capsys, "whatif", "--models", "S21")
    assert code == 2 and "--difficulty is required" in err
    bad = tmp_path / "bad.toml"
    bad.write_text('[[fleet]]\nmodel = "Antminer L7"\n')
    code, out, err = run(capsys, "whatif", "--fleet", str(bad), "--difficulty", "1e14")
    assert code == 2 and "not in catalog" in err and err.count("\n") == 1


def test_config_economics_fees_apply_unless_flags_override(
    capsys: pytest.CaptureFixture[str], tmp_path
) -> None:
    conf = tmp_path / "fleetd.toml"
    conf.write_text("[economics]\npool_fee = 0.02\n[economics.adders_per_mwh]\ntransmission = 10.0\n")
    base = [
        "profit",
        "--json",
        "--hashrate-ths",
        "100",
        "--power-w",
        "3000",
        "--hashprice-usd-per-ph-day",
        "50",
    ]
    base += ["--electricity-usd-per-kwh", "0.05", "--config", str(conf)]
    data = json.loads(run(capsys, *base)[1])
    assert data["pool_fee"] == 0.02 and data["electricity_usd_per_mwh"] == pytest.approx(60.0)
    assert data["revenue_usd_per_day"] == pytest.approx(0.1 * 50 * 0.98)
    data = json.loads(run(capsys, *base, "--pool-fee", "0")[1])
    assert data["pool_fee"] == 0.0
    conf.write_text("[economics]\npool_fee = 3\n")
    code, _, err = run(capsys, *base)
    assert code == 2 and "economics.pool_fee" in err


def test_profit_catalog_modes(capsys: pytest.CaptureFixture[str]) -> None:
    base = ["profit", "--json", "--hashprice-usd-per-ph-day", "34", "--electricity-usd-per-kwh", "0.06"]
    low = json.loads(run(capsys, *base, "--model", "S19 XP", "--mode", "low")[1])
    assert low["power_source"] == "catalog" and low["power_w"] < 3010 and low["hashrate_ths"] < 140
    asleep = json.loads(run(capsys, *base, "--model", "S19 XP", "--mode", "sleep")[1])
    assert (asleep["hashrate_ths"], asleep["power_source"], asleep["revenue_usd_per_day"]) == (
        0,
        "catalog-sleep",
        0,
    )
    assert 0 < asleep["power_w"] <= 100 and asleep["profit_usd_per_day"] < 0
    code, out, _ = run(capsys, *base[:1], *base[2:], "--model", "S19 XP", "--mode", "sleep")
    assert code == 0 and "catalog-sleep" in out and "-$0.03" in out  # the table copes with n/a figures
    code, out, err = run(capsys, *base, "--model", "S19 XP", "--mode", "high")
    assert code == 2 and "has no 'high' mode in the catalog (has: normal, low, sleep)" in err


def test_profit_negative_price_and_huge_price(capsys: pytest.CaptureFixture[str]) -> None:
    argv = [
        "profit",
        "--json",
        "--hashrate-ths",
        "140",
        "--power-w",
        "3010",
        "--hashprice-usd-per-ph-day",
        "34",
    ]
    data = json.loads(run(capsys, *argv, "--electricity-usd-per-kwh=-0.02")[1])
    assert data["power_cost_usd_per_day"] == pytest.approx(-0.02 * 72.24)
    assert data["profit_usd_per_day"] > data["revenue_usd_per_day"]
    for flag in ("--electricity-usd-per-kwh=1e9", "--electricity-usd-per-kwh=nan"):
        with pytest.raises(SystemExit):
            main([*argv, flag])
        assert "must be within +-100 $/kWh" in capsys.readouterr().err


def test_whatif_fleet_from_a_fleetd_config(capsys: pytest.CaptureFixture[str], tmp_path) -> None:
    conf = tmp_path / "fleetd.toml"
    conf.write_text(
        '[[miners]]\nhost = "10.0.0.1"\nmodel = "Antminer S19 XP"\n'
        '[[miners]]\nhost = "10.0.0.2"\nmodel = "Antminer S19 XP"\n'
        '[[miners]]\nhost = "10.0.0.3"\nmodel = "Whatsminer M60S_VK40"\nnominal_power_w = 3300\n'
        '[[miners]]\nhost = "10.0.0.4"\n'
    )
    code, out, err = run(
        capsys, "whatif", "--json", "--fleet", str(conf), "--difficulty", "1.5e14", "--btc-prices", "90000",
        "--electricity-usd-per-kwh=-0.01,0.05",
    )  # fmt: skip
    assert code == 0 and "1 of 4 miners" in err and "no model" in err
    grids = {g["model"]: g for g in json.loads(out)}
    assert grids["Antminer S19 XP"]["units"] == 2 and grids["Whatsminer M60S"]["power_w"] == 3300
    assert grids["fleet total (3 units)"]["hashrate_ths"] == pytest.approx(2 * 140 + 186)
    assert (
        grids["Antminer S19 XP"]["profit_usd_per_day"][0][0]
        > grids["Antminer S19 XP"]["profit_usd_per_day"][1][0]
    )
    code, out, _ = run(
        capsys, "whatif", "--models", "S21", "--difficulty", "1.5e14", "--electricity-usd-per-kwh=-0.01"
    )
    assert code == 0 and "never" in out  # at a negative price running pays at any BTC price
    conf.write_text('[[miners]]\nhost = "10.0.0.1"\n')
    code, _, err = run(capsys, "whatif", "--fleet", str(conf), "--difficulty", "1.5e14")
    assert code == 2 and "none of its 1 [[miners]] has a `model`" in err and err.count("\n") == 1


def test_output_piped_into_a_closed_reader_is_not_a_traceback() -> None:
    btc = ",".join(str(p) for p in range(10_000, 210_000, 1_000))
    kwh = ",".join(f"{c / 1000:.3f}" for c in range(0, 200))
    code = "import sys; from fleetd.cli import main; sys.exit(main(sys.argv[1:]))"
    argv = ["whatif", "--difficulty", "1.5e14", "--btc-prices", btc, "--electricity-usd-per-kwh", kwh]
    proc = subprocess.Popen(
        [sys.executable, "-c", code, *argv], stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    assert proc.stdout is not None and proc.stdout.read(100)  # like `| head -c 100`
    proc.stdout.close()
    _, err = proc.communicate(timeout=20)
    assert proc.returncode == 0 and b"Traceback" not in err and err == b""
