"""Benchmark (not a test): memory a Whatsminer driver keeps per miner, and CPU per poll.

Starts `fleetd sim` in a child process on 127.18.200.1... (or uses miners already served, --no-sim):
  python tests/whatsminer/bench_driver.py memory --model "Whatsminer M50S" --count 1000
  python tests/whatsminer/bench_driver.py cpu --model "Whatsminer M60S" --count 300 --polls 10 [--profile]
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import gc
import ipaddress
import pstats
import subprocess
import sys
import time
import tracemalloc

from fleetd.drivers.base import Endpoint, Timeouts
from fleetd.drivers.whatsminer import WhatsminerDriver

CONCURRENCY = 200


def hosts(base: str, count: int) -> list[str]:
    first = ipaddress.IPv4Address(base)
    return [str(first + i) for i in range(count)]


async def poll_all(drivers: list[WhatsminerDriver]) -> None:
    sem = asyncio.Semaphore(CONCURRENCY)

    async def one(d: WhatsminerDriver) -> None:
        async with sem:
            await d.read()

    await asyncio.gather(*(one(d) for d in drivers))


async def memory(base: str, count: int) -> None:
    timeouts = Timeouts(connect_s=5.0, read_s=10.0)
    endpoints = [Endpoint(h, timeouts=timeouts) for h in hosts(base, count)]
    warm = [WhatsminerDriver(ep) for ep in endpoints[:2]]
    await poll_all(warm)  # imports, interned strings, class-level tables
    del warm
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.take_snapshot()
    drivers = [WhatsminerDriver(ep) for ep in endpoints]
    await poll_all(drivers)
    await asyncio.sleep(0.1)
    gc.collect()
    after = tracemalloc.take_snapshot()
    stats = after.compare_to(before, "lineno")
    total = sum(s.size_diff for s in stats)
    print(f"{count} drivers after one poll each: {total / count / 1024:.2f} KiB per miner retained")
    for s in stats[:12]:
        print(f"  {s.size_diff / count:8.0f} B/miner  {s.traceback}")
    assert len(drivers) == count


async def cpu(base: str, count: int, polls: int, profile: bool) -> None:
    drivers = [
        WhatsminerDriver(Endpoint(h, timeouts=Timeouts(connect_s=5.0, read_s=10.0)))
        for h in hosts(base, count)
    ]
    await poll_all(drivers)  # detection and slow replies: not the steady state
    prof = cProfile.Profile() if profile else None
    start_cpu = time.process_time()
    if prof:
        prof.enable()
    for _ in range(polls):
        await poll_all(drivers)
    if prof:
        prof.disable()
    used = time.process_time() - start_cpu
    print(f"{count} miners x {polls} polls: {used / (count * polls) * 1e3:.3f} ms CPU per poll")
    if prof:
        pstats.Stats(prof, stream=sys.stdout).sort_stats("tottime").print_stats(25)


def serve(model: str, base: str, count: int) -> subprocess.Popen[str]:
    """`fleetd sim` in a child process, returned once it serves."""
    argv = [sys.executable, "-m", "fleetd", "sim", "--model", model, "--count", str(count), "--base", base]
    child = subprocess.Popen([*argv, "--jitter", "0", "--processes", "1"], stdout=subprocess.PIPE, text=True)
    assert child.stdout is not None
    for line in child.stdout:
        if line.startswith("serving"):
            return child
    raise SystemExit(f"fleetd sim exited with {child.wait()}")


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("what", choices=["memory", "cpu"])
    p.add_argument("--model", default="Whatsminer M50S")
    p.add_argument("--base", default="127.18.200.1")
    p.add_argument("--no-sim", action="store_true", help="the miners are served already")
    p.add_argument("--count", type=int, default=1000)
    p.add_argument("--polls", type=int, default=10)
    p.add_argument("--profile", action="store_true")
    a = p.parse_args()
    child = None if a.no_sim else serve(a.model, a.base, a.count)
    try:
        if a.what == "memory":
            asyncio.run(memory(a.base, a.count))
        else:
            asyncio.run(cpu(a.base, a.count, a.polls, a.profile))
    finally:
        if child is not None:
            child.terminate()
            child.wait(30)


if __name__ == "__main__":
    main()
