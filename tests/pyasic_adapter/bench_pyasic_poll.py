"""Benchmark (not a test): client CPU per poll, pyasic adapter vs the native driver, same emulated fleet.

    python tests/pyasic_adapter/bench_pyasic_poll.py [MINERS] [CONCURRENCY]

For an Antminer S19 Pro fleet and a Whatsminer M50S fleet (emulators in child processes on 127.141.x.y
and 127.142.x.y, real ports: run as root), polls every miner three times with the native driver's
read() and three times with PyasicDriver.read() (pyasic's get_data plus fleetd's mapping), and prints
this process's CPU per poll for each, then the pure mapping's cost alone. Figures: docs/benchmarks.md.
"""

from __future__ import annotations

import asyncio
import gc
import sys
import time
from typing import Any

from fleetd.drivers.antminer import AntminerDriver
from fleetd.drivers.base import Driver, Endpoint, Timeouts
from fleetd.drivers.pyasic import PyasicDriver
from fleetd.drivers.pyasic.parse import as_mapping, identity_from_data, snapshot_from_data
from fleetd.drivers.whatsminer import WhatsminerDriver

from fleetd.sim.fleet import Group, ProcessFleet

FLEETS = (
    ("Antminer S19 Pro", "127.141.0.1", AntminerDriver),
    ("Whatsminer M50S_VH50", "127.142.0.1", WhatsminerDriver),
)


async def rounds(drivers: list[Driver], concurrency: int) -> list[tuple[float, float, int]]:
    sem = asyncio.Semaphore(concurrency)

    async def poll(d: Driver) -> object:
        async with sem:
            return await d.read()

    await asyncio.gather(*(poll(d) for d in drivers), return_exceptions=True)  # warm-up: pyasic finds each
    out = []
    for _ in range(3):
        gc.collect()
        c0, w0 = time.process_time(), time.perf_counter()
        results = await asyncio.gather(*(poll(d) for d in drivers), return_exceptions=True)
        cpu, wall = time.process_time() - c0, time.perf_counter() - w0
        out.append((cpu / len(drivers) * 1000, wall, sum(isinstance(r, BaseException) for r in results)))
    return out


async def main(count: int, concurrency: int) -> None:
    timeouts = Timeouts(connect_s=3, read_s=10)
    for model, base, native in FLEETS:
        async with ProcessFleet([Group(model, count=count, base=base)]) as miners:
            eps = [Endpoint(m.host, timeouts=timeouts) for m in miners]
            for cls in (native, PyasicDriver):
                figures = await rounds([cls(ep) for ep in eps], concurrency)
                best = min(f[0] for f in figures)
                detail = ", ".join(f"{c:.3f} ms ({w:.2f} s wall, {e} errors)" for c, w, e in figures)
                print(f"{model:<22} {cls.name:<10} best {best:.3f} ms CPU/poll; rounds: {detail}")
            data: Any = await (await PyasicDriver(eps[0])._find()).get_data()
            c0 = time.process_time()
            for _ in range(500):
                d = as_mapping(data)
                snapshot_from_data(d)
                identity_from_data(d)
            print(f"{model:<22} mapping alone (dump + map): {(time.process_time() - c0) / 500 * 1000:.3f} ms")


if __name__ == "__main__":
    asyncio.run(
        main(int(sys.argv[1]) if len(sys.argv) > 1 else 200, int(sys.argv[2]) if len(sys.argv) > 2 else 64)
    )
