"""Benchmark (not a test): client CPU per Antminer poll against an emulated fleet in child processes.

    python tests/drivers/bench_antminer_poll.py [MINERS] [CONCURRENCY]

Polls every miner three times with AntminerDriver.read() (one joined RPC request each) and prints
wall time and this process's CPU per poll (transport + decoding + parsing), then parse-only cost.
Uses 127.10.160.1 upwards and the real ports (run as root, or edit PORTS).
"""

from __future__ import annotations

import asyncio
import gc
import resource
import sys
import time

from fleetd.drivers.antminer import AntminerDriver
from fleetd.drivers.base import Endpoint, Timeouts

from fleetd.sim.fleet import Group, ProcessFleet

PORTS: dict[str, int] = {}  # e.g. {"api": 14028, "web": 18080} when not root


async def main(count: int, concurrency: int) -> None:
    groups = [Group("Antminer S19 Pro", count=count, base="127.10.160.1", ports=PORTS)]
    async with ProcessFleet(groups) as miners:
        timeouts = Timeouts(connect_s=3, read_s=10)
        drivers = [
            AntminerDriver(
                Endpoint(m.host, api_port=m.ports["api"], web_port=m.ports["web"], timeouts=timeouts)
            )
            for m in miners
        ]
        sem = asyncio.Semaphore(concurrency)

        async def poll(d: AntminerDriver) -> object:
            async with sem:
                return await d.read()

        await asyncio.gather(*(poll(d) for d in drivers[:50]))  # warm-up
        for n in range(3):
            gc.collect()
            c0, w0 = time.process_time(), time.perf_counter()
            results = await asyncio.gather(*(poll(d) for d in drivers), return_exceptions=True)
            cpu, wall = time.process_time() - c0, time.perf_counter() - w0
            errors = sum(isinstance(r, BaseException) for r in results)
            per_poll = cpu / count * 1000
            print(
                f"round {n}: {count} polls in {wall:.2f} s wall, {per_poll:.3f} ms CPU/poll, {errors} errors"
            )
        raw = await drivers[0]._rpc()
        c0 = time.process_time()
        for _ in range(2000):
            AntminerDriver.parse_responses(raw, host="h")
        print(f"parse_responses alone: {(time.process_time() - c0) / 2000 * 1000:.3f} ms")
        print(f"max RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")


if __name__ == "__main__":
    asyncio.run(
        main(int(sys.argv[1]) if len(sys.argv) > 1 else 2000, int(sys.argv[2]) if len(sys.argv) > 2 else 256)
    )
