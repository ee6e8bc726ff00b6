"""Operator-grade validation messages: key path, what is wrong, what is allowed; all problems in one run."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from fleetd.config import ConfigError, parse_config


def _errors(data: dict) -> list[str]:
    with pytest.raises(ConfigError) as info:
        parse_config(data)
    return info.value.errors


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        # missing discriminator / unknown kind: the allowed kinds are listed
        ({"tariff": {}}, "economics.tariff.kind: missing; one of flat, tou, urdb, ercot, http, mqtt"),
        (
            {"tariff": {"kind": "fixed"}},
            "economics.tariff.kind: unknown kind 'fixed'; one of flat, tou, urdb",
        ),
        ({"hashprice": [{}]}, "economics.hashprice[0].kind: missing; one of static, mempool, luxor"),
        # unknown keys, with a suggestion for a close misspelling
        (
            {"curency": "EUR"},
            "economics.curency: unknown key; did you mean currency? expected one of currency,",
        ),
        (
            {"tariff": {"kind": "flat", "price_per_kwh": 0.05, "price_per_kwhh": 1}},
            "economics.tariff.price_per_kwhh: unknown key; did you mean price_per_kwh?",
        ),
        ({"tariff": {"kind": "ercot", "zzz": 1}}, "economics.tariff.zzz: unknown key; expected one of"),
        # wrong types
        ({"pool_fee": "lots"}, "economics.pool_fee: wrong type: expected a number, got a string 'lots'"),
        ({"tariff": "flat"}, "economics.tariff: wrong type: expected a table, got a string 'flat'"),
        (
            {"tariff": {"kind": "flat", "price_per_kwh": "cheap"}},
            "economics.tariff.price_per_kwh: wrong type: expected a number, got a string 'cheap'",
        ),
        ({"adders_per_mwh": {"transmission": "x"}}, "economics.adders_per_mwh.transmission: wrong type"),
        # out of range and not-allowed values
        ({"pool_fee": 2}, "economics.pool_fee: out of range: got 2; must be < 1"),
        (
            {"hashprice": [{"kind": "static", "per_ph_day": -1}]},
            "economics.hashprice[0].per_ph_day: out of range: got -1; must be > 0",
        ),
        (
            {
                "tariff": {
                    "kind": "tou",
                    "periods": {"a": 0.1},
                    "default": "a",
                    "rules": [{"period": "a", "days": "sundays", "hours": [24]}],
                }
            },
            "economics.tariff.rules[0].days: not allowed: got a string 'sundays'; one of all, weekday, week",
        ),
        (
            {
                "tariff": {
                    "kind": "tou",
                    "periods": {"a": 0.1},
                    "default": "a",
                    "rules": [{"period": "a", "hours": [24]}],
                }
            },
            "economics.tariff.rules[0].hours[0]: out of range: got 24; must be <= 23",
        ),
        # missing required keys
        ({"tariff": {"kind": "flat"}}, "economics.tariff.price_per_kwh: required key is missing"),
        ({"tariff": {"kind": "mqtt"}}, "economics.tariff.topic: required key is missing"),
    ],
)
def test_economics_messages(data: dict, expected: str) -> None:
    errors = _errors({"economics": data})
    assert any(e.startswith(expected) for e in errors), errors
    assert not any("Input should" in e or "discriminator" in e or "Extra inputs" in e for e in errors), errors


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ({"economcs": {}}, "economcs: unknown key; did you mean economics?"),
        ({"polling": {"intervl_s": 3}}, "polling.intervl_s: unknown key; did you mean interval_s?"),
        (
            {"polling": {"interval_s": "often"}},
            "polling.interval_s: wrong type: expected a number, got a string",
        ),
        (
            {"polling": {"concurrency": 100000}},
            "polling.concurrency: out of range: got 100000; must be <= 8000",
        ),
        (
            {"logging": {"level": "loud"}},
            "logging.level: not allowed: got a string 'loud'; one of debug, info",
        ),
        ({"metrics": {"enabled": "maybe"}}, "metrics.enabled: wrong type: expected true or false"),
        (
            {"miners": [{"host": "10.0.0.1", "rack": 5}]},
            "miners[0].rack: wrong type: expected a string, got a",
        ),
    ],
)
def test_other_sections_use_the_same_words(data: dict, expected: str) -> None:
    errors = _errors(data)
    assert any(e.startswith(expected) for e in errors), errors


def test_economics_and_other_sections_reported_in_one_run() -> None:
    errors = _errors(
        {"polling": {"interval_s": -1}, "miners": [{}], "economics": {"tariff": {}, "pool_fee": 2}}
    )
    assert errors == [
        "polling.interval_s: out of range: got -1; must be > 0",
        "miners[0].host: required key is missing",
        "economics.pool_fee: out of range: got 2; must be < 1",
        "economics.tariff.kind: missing; one of flat, tou, urdb, ercot, http, mqtt",
    ]


def test_economics_not_a_table_is_reported_once() -> None:
    errors = _errors({"economics": "flat", "polling": {"interval_s": 0}})
    assert len(errors) == 2 and errors[1].startswith("economics: wrong type: expected a table"), errors


def test_check_config_lists_every_problem(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text(
        '[polling]\ninterval_s = "x"\n[economics]\ncurency = "USD"\n'
        "[economics.tariff]\nprice_per_kwh = 0.05\n"
    )
    res = subprocess.run(
        [sys.executable, "-m", "fleetd", "check-config", str(bad)], capture_output=True, text=True, timeout=60
    )
    assert res.returncode == 2 and "Traceback" not in res.stderr
    assert f"{bad}: polling.interval_s: wrong type: expected a number" in res.stderr
    assert f"{bad}: economics.curency: unknown key; did you mean currency?" in res.stderr
    assert f"{bad}: economics.tariff.kind: missing; one of flat, tou, urdb, ercot, http, mqtt" in res.stderr


def test_ambiguous_misspelling_offers_every_close_key() -> None:
    (err,) = _errors({"miners": [{"host": "10.0.0.1", "port": 4028}]})
    assert err.startswith(
        "miners[0].port: unknown key; did you mean v3_port, web_port or api_port? expected"
    ), err


def test_no_suggestion_for_a_key_unlike_any() -> None:
    (err,) = _errors({"economics": {"zebra": 1}})
    assert err.startswith("economics.zebra: unknown key; expected one of currency, pool_fee"), err
