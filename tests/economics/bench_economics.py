"""Benchmark, not a test: economics over 10,000 polled miners. python tests/economics/bench_economics.py"""

from __future__ import annotations

import asyncio
import time
import tracemalloc

from fleetd.daemon.state import MinerRecord
from fleetd.economics.config import EconomicsConfig
from fleetd.economics.service import EconomicsService
from fleetd.model import Identity, Mode, Snapshot

MODELS = ["Antminer S19 XP", "Antminer S21", "Whatsminer M60S_VK40", "AvalonMiner 1566", "Antminer S19j Pro"]


def main(n: int = 10_000, passes: int = 5) -> None:
    config = {
        "hashprice": [{"kind": "static", "per_ph_day": 45.0}],
        "tariff": {
            "kind": "tou",
            "timezone": "America/Chicago",
            "periods": {"off": 0.04, "peak": 0.09},
            "default": "off",
            "rules": [{"period": "peak", "hours": [15, 16, 17]}],
        },
        "adders_per_mwh": {"transmission": 5.0},
    }
    svc = EconomicsService(EconomicsConfig.model_validate(config))
    asyncio.run(svc.refresh_all())
    records = []
    for i in range(n):
        rec = MinerRecord(
            str(i), f"10.{i >> 16}.{(i >> 8) & 255}.{i & 255}", identity=Identity("x", MODELS[i % 5])
        )
        power = None if i % 2 else 3000.0  # half measured, half from the catalog
        rec.snapshot = Snapshot(
            hashrate_avg_ths=100.0 + i % 50, power_w=power, is_mining=True, mode=Mode.NORMAL
        )
        records.append(rec)
    svc.evaluate_fleet(records)  # warm the catalog cache
    t0 = time.perf_counter()
    for _ in range(passes):
        _, fleet = svc.evaluate_fleet(records)
    elapsed = (time.perf_counter() - t0) / passes
    tracemalloc.start()
    kept = svc.evaluate_fleet(records)
    size, _ = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    del kept
    print(f"{n} miners: {elapsed * 1000:.1f} ms per pass, {elapsed / n * 1e6:.2f} us per miner")
    print(f"results held: {size / n:.0f} B per miner; fleet profit/day {fleet.profit_per_day:,.0f}")


if __name__ == "__main__":
    main()
