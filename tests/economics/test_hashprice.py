"""The hashprice formula, subsidy halvings, fee deductions and unit conversions."""

from __future__ import annotations

import pytest

from fleetd.economics import units
from fleetd.economics.hashprice import (
    block_subsidy_btc,
    block_subsidy_sats,
    blocks_per_ph_day,
    fee_factor,
    halvings,
    hashprice_per_ph_day,
    net_hashprice,
)


@pytest.mark.parametrize(
    ("height", "btc"),
    [
        (0, 50.0),
        (209_999, 50.0),
        (210_000, 25.0),
        (629_999, 12.5),
        (630_000, 6.25),
        (839_999, 6.25),
        (840_000, 3.125),
        (1_049_999, 3.125),
        (1_050_000, 1.5625),
        (1_260_000, 0.78125),
    ],
)
def test_subsidy_halves_every_210000_blocks(height: int, btc: float) -> None:
    assert block_subsidy_btc(height) == btc


def test_subsidy_is_integer_satoshis_and_ends() -> None:
    # 50 BTC >> 33 halvings is the last non-zero subsidy (1 sat would need more than 64 shifts to vanish).
    assert block_subsidy_sats(33 * 210_000) == 5_000_000_000 >> 33
    assert block_subsidy_sats(64 * 210_000) == 0
    assert halvings(840_000) == 4
    with pytest.raises(ValueError):
        block_subsidy_btc(-1)


def test_blocks_per_ph_day_matches_definition() -> None:
    d = 100e12
    assert blocks_per_ph_day(d) == pytest.approx(1e15 * 86400 / (d * 2**32))
    assert blocks_per_ph_day(d) == pytest.approx(2.0117e-4, rel=1e-4)
    with pytest.raises(ValueError):
        blocks_per_ph_day(0)


def test_hashprice_known_value() -> None:
    # difficulty 100 T, 3.125 BTC subsidy + 0.025 BTC fees, BTC at $100,000 -> ~$63.37 per PH/s per day
    hp = hashprice_per_ph_day(100e12, 3.125, 0.025, 100_000)
    assert hp == pytest.approx(blocks_per_ph_day(100e12) * 3.15 * 100_000)
    assert hp == pytest.approx(63.37, abs=0.01)


def test_hashprice_scales_inverse_with_difficulty_and_linear_with_price() -> None:
    base = hashprice_per_ph_day(120e12, 3.125, 0.02, 90_000)
    assert hashprice_per_ph_day(240e12, 3.125, 0.02, 90_000) == pytest.approx(base / 2)
    assert hashprice_per_ph_day(120e12, 3.125, 0.02, 180_000) == pytest.approx(base * 2)
    with pytest.raises(ValueError):
        hashprice_per_ph_day(120e12, 3.125, -0.1, 90_000)


def test_fee_deductions_compound() -> None:
    assert fee_factor(0.02, 0.028) == pytest.approx(0.98 * 0.972)
    assert net_hashprice(50.0, pool_fee=0.02) == pytest.approx(49.0)
    assert net_hashprice(50.0) == 50.0
    for bad in (-0.01, 1.0, 1.5):
        with pytest.raises(ValueError):
            fee_factor(bad, 0.0)


def test_unit_conversions() -> None:
    assert units.per_kwh_to_per_mwh(0.06) == pytest.approx(60.0)
    assert units.per_mwh_to_per_kwh(60.0) == pytest.approx(0.06)
    assert units.cents_per_kwh_to_per_mwh(6.0) == pytest.approx(60.0)
    assert units.ths_to_phs(140) == pytest.approx(0.14)
    assert units.phs_to_ths(0.14) == pytest.approx(140)
    assert units.per_th_day_to_per_ph_day(0.034) == pytest.approx(34.0)
    assert units.sats_to_btc(312_500_000) == 3.125
    assert units.energy_mwh_per_day(3010) == pytest.approx(0.07224)
    assert units.efficiency_j_per_th(3010, 140) == pytest.approx(21.5)
    assert units.efficiency_j_per_th(3010, 0) is None
    assert units.to_per_mwh(6.0, "cents_per_kwh") == pytest.approx(60.0)
    with pytest.raises(ValueError, match="unknown price unit"):
        units.to_per_mwh(1.0, "per_gallon")
