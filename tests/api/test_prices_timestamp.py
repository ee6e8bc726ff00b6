"""/api/prices: the electricity price's timestamp and age_s agree (timestamp + age_s = now) for tariffs."""

from __future__ import annotations

import pytest

from fleetd.api.views import prices
from fleetd.economics import EconomicsConfig
from fleetd.economics.service import EconomicsService

NOW = 1_796_000_000.0 + 1234.5  # not the top of an hour


@pytest.mark.parametrize(
    "tariff",
    [
        {"kind": "flat", "price_per_kwh": 0.06},
        {"kind": "tou", "periods": {"peak": 0.2, "off": 0.05}, "default": "off", "rules": []},
    ],
)
def test_electricity_timestamp_and_age_agree(tariff: dict[str, object]) -> None:
    cfg = EconomicsConfig.model_validate(
        {"tariff": tariff, "hashprice": [{"kind": "static", "per_ph_day": 40.0}]}
    )
    out = prices(EconomicsService(cfg), NOW)
    p = out["electricity"]
    assert p["value"] is not None
    assert p["timestamp"] + p["age_s"] == pytest.approx(NOW, abs=0.1), p
    assert out["electricity"]["age_s"] == 0 and out["electricity"]["timestamp"] == NOW
