"""The hashprice formula: expected revenue per PH/s per day from difficulty, subsidy, fees and BTC price."""

from __future__ import annotations

from fleetd.economics.units import SATS_PER_BTC, SECONDS_PER_DAY

HALVING_INTERVAL = 210_000
INITIAL_SUBSIDY_SATS = 50 * SATS_PER_BTC
TWO_POW_32 = 2**32


def halvings(height: int) -> int:
    if height < 0:
        raise ValueError(f"block height must be >= 0, got {height}")
    return height // HALVING_INTERVAL


def block_subsidy_sats(height: int) -> int:
    """Block subsidy at `height` in satoshis, exactly as consensus computes it (right shift)."""
    n = halvings(height)
    return 0 if n >= 64 else INITIAL_SUBSIDY_SATS >> n


def block_subsidy_btc(height: int) -> float:
    return block_subsidy_sats(height) / SATS_PER_BTC


def blocks_per_ph_day(difficulty: float) -> float:
    """Expected blocks found per day by 1 PH/s at `difficulty` (one block needs difficulty * 2^32 hashes)."""
    if difficulty <= 0:
        raise ValueError(f"difficulty must be > 0, got {difficulty}")
    return 1e15 * SECONDS_PER_DAY / (difficulty * TWO_POW_32)


def btc_per_ph_day(difficulty: float, subsidy_btc: float, fees_btc_per_block: float) -> float:
    return blocks_per_ph_day(difficulty) * (subsidy_btc + fees_btc_per_block)


def hashprice_per_ph_day(
    difficulty: float, subsidy_btc: float, fees_btc_per_block: float, btc_price: float
) -> float:
    """Gross hashprice in the BTC price's currency per PH/s per day (before pool and dev fees)."""
    if btc_price < 0:
        raise ValueError(f"BTC price must be >= 0, got {btc_price}")
    if fees_btc_per_block < 0 or subsidy_btc < 0:
        raise ValueError("subsidy and fees must be >= 0")
    return btc_per_ph_day(difficulty, subsidy_btc, fees_btc_per_block) * btc_price


def fee_factor(pool_fee: float = 0.0, dev_fee: float = 0.0) -> float:
    """Share of gross revenue left after the pool fee and the firmware dev fee (both fractions 0..1)."""
    for name, fee in (("pool fee", pool_fee), ("dev fee", dev_fee)):
        if not 0.0 <= fee < 1.0:
            raise ValueError(f"{name} must be a fraction in [0, 1), got {fee}")
    return (1.0 - pool_fee) * (1.0 - dev_fee)


def net_hashprice(gross_per_ph_day: float, pool_fee: float = 0.0, dev_fee: float = 0.0) -> float:
    return gross_per_ph_day * fee_factor(pool_fee, dev_fee)
