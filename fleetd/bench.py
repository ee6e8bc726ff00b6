"""The poll-path benchmark: an emulated fleet in child processes, the real daemon polling it.

The daemon (poller, rollups, storage writer) runs in this process exactly as `fleetd run` runs it;
the emulators run in other processes, so this process's CPU time is the daemon's alone. Figures
come from the cycles after warm-up (until every miner has been polled once and its driver detected):

- cycle_s: mean wall time of a poll cycle over the whole fleet;
- polls_per_s: polls completed per second of cycle time;
- cpu_ms_per_poll: this process's CPU time (user+system, every thread) from the end of warm-up to
  the end of the last cycle, divided by the polls in between;
- health_cpu_ms_per_poll: of that, the CPU the health diagnosis after each cycle took (thread CPU
  time of the event loop around Daemon._health_cycle), divided by the same polls;
- rss_kb_per_miner: growth of this process's resident memory from just before the daemon starts
  (everything imported, nothing polled) to the end, divided by the miners.
"""

from __future__ import annotations

import asyncio
import gc
import ipaddress
import os
import platform
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

from fleetd import runtime
from fleetd.config import parse_config
from fleetd.daemon.state import CycleStats, Health
from fleetd.sim.fleet import PER_PROCESS, Group, ProcessFleet
from fleetd.sim.models import MODELS

DEFAULT_BASE = "127.21.0.1"
MAX_WARMUP_CYCLES = 20
WEB_PORT = 8080  # unprivileged, so that the benchmark runs without root
Progress = Callable[[str], None]


@dataclass(frozen=True, slots=True)
class BenchResult:
    miners: int
    models: dict[str, int]
    cycles: int  # measured cycles (after the first)
    processes: int  # emulator processes
    concurrency: int
    loop: str
    gc: str  # "tuned" (as fleetd run) or "default" (Python's thresholds)
    cycle_s: float
    cycle_max_s: float
    warmup_cycles: int  # until every miner was polled once (drivers detected)
    warmup_s: float
    polls_per_s: float
    cpu_ms_per_poll: float
    emulator_cpu_ms_per_poll: float  # the other side of the wire, for context: it shares the 2 cores
    rss_kb_per_miner: float
    polls: int
    failed: int
    overran: int  # measured cycles that overran the poll interval
    rss_start_mb: float
    rss_end_mb: float
    cpus: int
    python: str
    # Of cpu_ms_per_poll, what the health diagnosis after each cycle took (event-loop thread CPU).
    health_cpu_ms_per_poll: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def rss_kb() -> int:
    """This process's resident set size in KiB (Linux /proc; 0 where unavailable)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def children_cpu_s(pids: list[int]) -> float:
    """CPU seconds (user+system) used so far by the given processes (Linux /proc; 0 where unavailable)."""
    tick = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / tick


def fleet_groups(
    miners: int, base: str, *, models: list[str] | None = None, faults: dict[str, float] | None = None
) -> list[Group]:
    """A mixed fleet: `miners` split evenly over the emulated models, on consecutive addresses."""
    names = models or sorted(MODELS)
    start = int(ipaddress.IPv4Address(base))
    groups = []
    for i, name in enumerate(names):
        count = miners // len(names) + (1 if i < miners % len(names) else 0)
        if count:
            first = str(ipaddress.IPv4Address(start))
            # Only the web port is privileged by default; the emulators' API ports are above 1024.
            real = getattr(MODELS[name].emulator_class(), "default_ports", {})
            ports = {"web": WEB_PORT} if "web" in real else {}
            groups.append(Group(name, count=count, base=first, ports=ports, faults=faults or {}))
            start += count
    return groups


def daemon_config(hosts: list[str], *, interval_s: float, concurrency: int, timeout_s: float) -> Any:
    """The configuration `fleetd run` would load for these miners (drivers detected, as by default)."""
    return parse_config(
        {
            "polling": {
                "interval_s": interval_s,
                "jitter_s": 0.0,
                "timeout_s": timeout_s,
                "concurrency": concurrency,
            },
            "miners": [{"host": h, "web_port": WEB_PORT} for h in hosts],
        },
        "bench",
    )


async def measure(
    hosts: list[str],
    *,
    cycles: int,
    interval_s: float,
    concurrency: int,
    timeout_s: float = 10.0,
    emulator_pids: list[int] | None = None,
    tuned_gc: bool = True,
    progress: Progress = lambda s: None,
) -> tuple[list[CycleStats], list[CycleStats], float, float, int, int, float]:
    """Run the daemon over `hosts`: warm-up cycles until every miner was polled once, then `cycles` more.

    Returns the warm-up and the measured cycles' stats, CPU seconds spent over the measured ones by
    this process and by the emulator processes, RSS (KiB) before the daemon started and at the end,
    and the CPU seconds of the health diagnosis over the measured cycles.
    """
    from fleetd.daemon.core import Daemon
    from fleetd.drivers import driver_classes

    driver_classes()  # import every driver now, so that imports do not count as fleet memory
    import fleetd.storage.store  # noqa: F401  (same reason)

    config = daemon_config(hosts, interval_s=interval_s, concurrency=concurrency, timeout_s=timeout_s)
    warmup: list[CycleStats] = []
    measured: list[CycleStats] = []
    cpu_marks: list[float] = []
    emu_marks: list[float] = []
    pids = emulator_pids or []
    finished = asyncio.Event()

    def on_cycle(stats: CycleStats) -> None:
        cpu_now = time.process_time()
        took = stats.ended_at - stats.started_at
        line = f"{stats.polled} polled, {stats.failed} failed in {took:.2f} s"
        if not cpu_marks:
            warmup.append(stats)
            unpolled = sum(1 for rec in daemon.state.miners.values() if rec.health is Health.UNKNOWN)
            progress(f"warm-up cycle {len(warmup)} (drivers detected): {line}; {unpolled} not polled yet")
            if unpolled == 0 or len(warmup) >= MAX_WARMUP_CYCLES:
                cpu_marks.append(cpu_now)
                emu_marks.append(children_cpu_s(pids))
            return
        measured.append(stats)
        progress(f"cycle {len(measured)}/{cycles}: {line}")
        if len(measured) >= cycles:
            cpu_marks.append(cpu_now)
            emu_marks.append(children_cpu_s(pids))
            finished.set()

    with tempfile.TemporaryDirectory(prefix="fleetd-bench-") as tmp:
        daemon = Daemon(config, state_dir=tmp)
        daemon.on_cycle.append(on_cycle)
        health_cpu = [0.0]
        diagnose = daemon._health_cycle

        def timed_health(now: float) -> None:
            t = time.thread_time()  # the loop thread only: the storage writer runs meanwhile
            try:
                diagnose(now)
            finally:
                if len(cpu_marks) == 1:
                    health_cpu[0] += time.thread_time() - t

        daemon._health_cycle = timed_health  # type: ignore[method-assign]
        if tuned_gc:
            runtime.tune_gc()  # as `fleetd run` does
        else:
            gc.collect()
        rss0 = rss_kb()
        await daemon.start()
        try:
            await finished.wait()
        finally:
            await daemon.stop()
        rss1 = rss_kb()
    cpu = cpu_marks[1] - cpu_marks[0]
    return warmup, measured, cpu, emu_marks[1] - emu_marks[0], rss0, rss1, health_cpu[0]


def run(
    miners: int,
    *,
    cycles: int = 3,
    processes: int | None = None,
    interval_s: float = 10.0,
    concurrency: int = 1000,
    base: str = DEFAULT_BASE,
    event_loop: str | None = None,
    tuned_gc: bool = True,
    models: list[str] | None = None,
    progress: Progress = lambda s: None,
) -> BenchResult:
    """Start the emulated fleet (`models`, default every emulated one), run the daemon, return the figures."""
    if miners < 1 or cycles < 1:
        raise ValueError("need at least one miner and one measured cycle")
    runtime.raise_nofile(4 * concurrency + 256)
    groups = fleet_groups(miners, base, models=models)
    n_proc = processes or max(1, -(-miners // PER_PROCESS))
    models = {g.model: g.count for g in groups}
    progress(
        f"starting {miners} emulated miners ({', '.join(f'{n} {m}' for m, n in models.items())}) "
        f"from {base} in {n_proc} processes"
    )
    t0 = time.perf_counter()
    pf = ProcessFleet(groups, processes=n_proc)
    with pf as fleet:
        progress(f"fleet ready in {time.perf_counter() - t0:.1f} s; polling every {interval_s:g} s")
        hosts = [m.host for m in fleet]
        fleet_pids = pf.pids
        loop_name, loop_runner = runtime.runner(event_loop)
        with loop_runner as r:
            warmup, steady, cpu, emu_cpu, rss0, rss1, health_cpu = r.run(
                measure(
                    hosts,
                    cycles=cycles,
                    interval_s=interval_s,
                    concurrency=concurrency,
                    emulator_pids=fleet_pids,
                    tuned_gc=tuned_gc,
                    progress=progress,
                )
            )
    durations = [s.ended_at - s.started_at for s in steady]
    polls = sum(s.polled for s in steady)
    busy = sum(durations)
    return BenchResult(
        miners=miners,
        models=models,
        cycles=len(steady),
        processes=n_proc,
        concurrency=concurrency,
        loop=loop_name,
        gc="tuned" if tuned_gc else "default",
        cycle_s=round(busy / len(steady), 3),
        cycle_max_s=round(max(durations), 3),
        warmup_cycles=len(warmup),
        warmup_s=round(warmup[-1].ended_at - warmup[0].started_at, 3),
        polls_per_s=round(polls / busy, 1) if busy > 0 else 0.0,
        cpu_ms_per_poll=round(cpu * 1000 / polls, 4) if polls else 0.0,
        emulator_cpu_ms_per_poll=round(emu_cpu * 1000 / polls, 4) if polls else 0.0,
        rss_kb_per_miner=round((rss1 - rss0) / miners, 2),
        polls=polls,
        failed=sum(s.failed for s in steady),
        overran=sum(1 for s in steady if s.overran),
        rss_start_mb=round(rss0 / 1024, 1),
        rss_end_mb=round(rss1 / 1024, 1),
        cpus=os.cpu_count() or 0,
        python=f"{platform.python_implementation()} {sys.version.split()[0]}",
        health_cpu_ms_per_poll=round(health_cpu * 1000 / polls, 4) if polls else 0.0,
    )


# One emulated model per driver for the per-driver comparison; "antminer" is the reference.
PER_DRIVER_MODELS: dict[str, str] = {
    "antminer": "Antminer S19 Pro",
    "luxos": "Antminer S19k Pro",
    "avalon": "AvalonMiner 15-194",
    "braiins": "Antminer S21 Pro",
    "vnish": "Antminer S19",
}
REFERENCE_DRIVER = "antminer"


@dataclass(frozen=True, slots=True)
class DriverFigure:
    """One driver's run of the per-driver comparison."""

    driver: str
    model: str
    cpu_ms_per_poll: float
    vs_reference: float  # cpu_ms_per_poll / the reference driver's
    cycle_s: float
    polls: int
    failed: int


def run_per_driver(
    miners: int,
    *,
    drivers: list[str] | None = None,
    progress: Progress = lambda s: None,
    **kwargs: Any,
) -> list[DriverFigure]:
    """`run` once per driver, each over a fleet of that driver's emulated model only; reference first."""
    names = drivers or list(PER_DRIVER_MODELS)
    unknown = [n for n in names if n not in PER_DRIVER_MODELS]
    if unknown:
        raise ValueError(
            f"no emulated model for driver {unknown[0]!r} (known: {', '.join(PER_DRIVER_MODELS)})"
        )
    order = [REFERENCE_DRIVER] + [n for n in names if n != REFERENCE_DRIVER]
    results = []
    for name in order:
        progress(f"driver {name}: {miners} x {PER_DRIVER_MODELS[name]}")
        results.append((name, run(miners, models=[PER_DRIVER_MODELS[name]], progress=progress, **kwargs)))
    ref = results[0][1].cpu_ms_per_poll
    return [
        DriverFigure(
            driver=name,
            model=PER_DRIVER_MODELS[name],
            cpu_ms_per_poll=r.cpu_ms_per_poll,
            vs_reference=round(r.cpu_ms_per_poll / ref, 2) if ref else 0.0,
            cycle_s=r.cycle_s,
            polls=r.polls,
            failed=r.failed,
        )
        for name, r in results
    ]


def report_per_driver(figures: list[DriverFigure]) -> str:
    """Human-readable per-driver comparison."""
    lines = [f"{'driver':<10} {'model':<20} {'CPU/poll':>10} {'vs antminer':>12} {'cycle':>8} {'failed':>7}"]
    for f in figures:
        lines.append(
            f"{f.driver:<10} {f.model:<20} {f.cpu_ms_per_poll:>7.3f} ms {f.vs_reference:>11.2f}x "
            f"{f.cycle_s:>6.2f} s {f.failed:>7}"
        )
    return "\n".join(lines)


def report(r: BenchResult) -> str:
    """Human-readable summary."""
    models = ", ".join(f"{n} x {m}" for m, n in r.models.items())
    lines = [
        f"fleetd bench: {r.miners} emulated miners ({models}) in {r.processes} processes; "
        f"{r.cpus} CPUs, {r.python}, {r.loop} loop, {r.gc} GC, concurrency {r.concurrency}",
        f"  cycle time        {r.cycle_s:.2f} s mean, {r.cycle_max_s:.2f} s max over {r.cycles} cycles "
        f"(after {r.warmup_cycles} warm-up cycles detecting drivers, {r.warmup_s:.1f} s)",
        f"  polls per second  {r.polls_per_s:,.0f}  ({r.polls} polls, {r.failed} failed, "
        f"{r.overran} cycles overran)",
        f"  daemon CPU        {r.cpu_ms_per_poll:.3f} ms per miner poll "
        f"(emulators, in other processes: {r.emulator_cpu_ms_per_poll:.3f} ms)",
        f"  health diagnosis  {r.health_cpu_ms_per_poll:.3f} ms of it per poll "
        f"({_share(r.health_cpu_ms_per_poll, r.cpu_ms_per_poll)} on top of the rest)",
        f"  daemon memory     {r.rss_kb_per_miner:.1f} KB per miner "
        f"(RSS {r.rss_start_mb:.0f} MB before polling, {r.rss_end_mb:.0f} MB after)",
    ]
    return "\n".join(lines)


def _share(part: float, total: float) -> str:
    rest = total - part
    return f"{100 * part / rest:.1f} %" if rest > 0 else "n/a"
