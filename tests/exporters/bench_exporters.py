"""Scrape and MQTT cost at fleet scale: `python -m tests.exporters.bench_exporters [--miners N]`.

Not a test (no timing assertions): prints render time, output size (plain and gzip), peak memory of a
rendering, the HTTP scrape time through the API, and the MQTT per-cycle cost on the event loop; then the
same with a curtailment status for every miner (fleetd_curtail_* series, curtailment MQTT topics).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import time
import tracemalloc

import aiohttp

from fleetd.api import ApiServer
from fleetd.config import MqttConfig
from fleetd.exporters.mqtt import MqttPublisher
from fleetd.exporters.prometheus import Exporter, Extras, render

from .curtail import status
from .synthetic import fleet


def _best(fn, runs: int = 3) -> float:
    best = float("inf")
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


async def _http(state, runs: int = 3) -> tuple[float, float, int, int]:
    server = ApiServer(state, listen="127.0.0.1:0")
    await server.start()
    try:
        async with aiohttp.ClientSession(auto_decompress=False) as s:
            url = server.url + "/metrics"
            t0 = time.perf_counter()
            async with s.get(url, headers={"Accept-Encoding": "gzip"}) as r:
                size_gz = len(await r.read())
            cold = time.perf_counter() - t0
            cached = float("inf")
            for _ in range(runs):
                t0 = time.perf_counter()
                async with s.get(url, headers={"Accept-Encoding": "gzip"}) as r:
                    await r.read()
                cached = min(cached, time.perf_counter() - t0)
            async with s.get(url, headers={"Accept-Encoding": "identity"}) as r:
                size = len(await r.read())
        return cold, cached, size, size_gz
    finally:
        await server.stop()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--miners", type=int, default=10_000)
    n = ap.parse_args().miners
    st = fleet(n)
    print(f"{n} miners (3 boards, 4 fans, economics each)")
    for label, kw in (
        ("full", {}),
        ("components=false", {"components": False}),
        ("per_miner=false", {"per_miner": False}),
    ):
        secs = _best(lambda kw=kw: render(st, **kw))
        text = render(st, **kw)
        lines = text.count("\n")
        print(f"  render {label:<17} {secs * 1000:8.1f} ms  {len(text) / 1e6:6.1f} MB  {lines:>8} lines")
    del text
    exp = Exporter(st)
    miners = list(st.miners.values())
    secs = _best(lambda: exp._render_gzip(st, miners, exp.extras(time.time())))
    gc.collect()
    tracemalloc.start()
    body = exp._render_gzip(st, miners, exp.extras(time.time()))
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    print(
        f"  scrape rendering (gzip stream): {secs * 1000:.0f} ms, peak {peak / 1e6:.0f} MB transient, "
        f"{len(body) / 1e6:.2f} MB cached until the next cycle"
    )
    cold, cached, size, size_gz = asyncio.run(_http(st))
    print(
        f"  HTTP GET /metrics gzip: first {cold * 1000:.0f} ms, cached {cached * 1000:.1f} ms; "
        f"{size / 1e6:.1f} MB plain, {size_gz / 1e6:.2f} MB gzip"
    )
    pub = MqttPublisher(MqttConfig(), st)
    t0 = time.perf_counter()
    pub.on_cycle()
    first = time.perf_counter() - t0
    queued = pub.queue_depth
    pub._pending.clear()
    steady = _best(lambda: (pub.on_cycle(), pub._pending.clear()))
    pub.on_cycle()
    print(
        f"  MQTT on_cycle (event loop): first {first * 1000:.0f} ms ({queued} messages), "
        f"steady {steady * 1000:.0f} ms ({pub.queue_depth} messages: fleet + ~1/full_every of the miners)"
    )
    _curtailment(st)


def _curtailment(st) -> None:
    cs = status(st.miners)
    extras = Extras(curtail=cs)
    plain = _best(lambda: render(st))
    secs = _best(lambda: render(st, extras=extras))
    text = render(st, extras=extras)
    curtail_lines = sum(1 for line in text.splitlines() if line.startswith("fleetd_curtail_"))
    print(
        f"  with curtailment: render {secs * 1000:.1f} ms (+{(secs - plain) * 1000:.1f} ms), "
        f"{curtail_lines} fleetd_curtail_* samples"
    )
    pub = MqttPublisher(MqttConfig(), st)
    t0 = time.perf_counter()
    pub.publish_curtailment(cs)
    first = time.perf_counter() - t0
    queued = pub.queue_depth
    pub._pending.clear()
    steady = float("inf")
    for _ in range(3):
        nxt = status(st.miners)  # a new pass, nothing changed
        t0 = time.perf_counter()
        pub.publish_curtailment(nxt)
        steady = min(steady, time.perf_counter() - t0)
        queued_steady = pub.queue_depth
        pub._pending.clear()
    print(
        f"  MQTT publish_curtailment (event loop): first {first * 1000:.0f} ms ({queued} messages), "
        f"steady {steady * 1000:.0f} ms ({queued_steady} messages)"
    )


if __name__ == "__main__":
    main()
