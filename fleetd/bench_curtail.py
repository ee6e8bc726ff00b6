"""`fleetd bench curtail`: what deciding and issuing a curtailment costs at fleet scale.

Two measurements:

- decide: `fleetd.curtail.policy.decide` (and `plan_step`) over N synthetic MinerViews with every rule kind
  configured (economic, price strike, schedule, power cap, pins), carrying memory from pass to pass as the
  daemon does: milliseconds per pass, median of several passes;
- spike: N emulated miners in child processes (fleetd.sim over loopback), drivers detected and every miner
  polled once beforehand, as the daemon has them; the price jumps over a strike, and the time from that
  price to every miner's first ramp step sent and acknowledged, then to every command verified, through
  `fleetd.executor.execute` with the real drivers (enforce on, a ramp that takes the whole fleet in one
  step): seconds, commands per second, CPU in this process and in the emulators.
"""

from __future__ import annotations

import asyncio
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from fleetd.curtail.config import CurtailmentConfig, parse_curtailment
from fleetd.curtail.model import (
    Actual,
    Controls,
    FleetMemory,
    MinerMemory,
    MinerView,
    Pin,
    PinAction,
    PricePoint,
    PriceView,
)
from fleetd.curtail.ramp import ControlState

T0 = 1_780_000_000.0  # a fixed clock: 2026-05-28 20:26 UTC
INTERVAL_S = 900.0
Progress = Callable[[str], None]

_MODELS = (  # (model, TH/s, W, can_limit, min limit W): the spread of a real mixed farm
    ("Antminer S19 Pro", 110.0, 3250.0, False, None),
    ("Antminer S19j Pro", 100.0, 3050.0, False, None),
    ("Antminer S21", 200.0, 3500.0, False, None),
    ("Whatsminer M50S", 126.0, 3276.0, True, 1000),
    ("Whatsminer M60S", 180.0, 3330.0, True, 1000),
    ("Antminer S19k Pro", 121.8, 2794.0, True, 784),
)


def synthetic_miners(
    n: int, *, hashprice_usd_per_ph_day: float = 45.0, price_usd_per_mwh: float = 40.0
) -> list[MinerView]:
    """`n` MinerViews over 4 sites and 6 models, with deterministic spread in efficiency and profit."""
    out = []
    for i in range(n):
        model, ths, watts, can_limit, lo = _MODELS[i % len(_MODELS)]
        wear = 1.0 + ((i * 7919) % 200) / 1000.0  # up to 20 % less efficient than nominal
        ths_i = ths / wear
        profit = ths_i / 1000 * hashprice_usd_per_ph_day - watts * 24 / 1e6 * price_usd_per_mwh
        out.append(
            MinerView(
                f"m{i:05d}",
                site=f"site{i % 4}",
                model=model,
                rack=f"r{i // 40}",
                up=i % 997 != 0,
                hashrate_ths=ths_i,
                power_w=watts,
                sleep_power_w=20.0,
                profit_per_day=profit - (i % 13) * 0.35,  # a few miners around the threshold
                efficiency_j_per_th=watts / ths_i,
                can_sleep=True,
                can_limit=can_limit,
                min_power_limit_w=lo,
                max_power_limit_w=3600 if can_limit else None,
            )
        )
    return out


def bench_config(n: int) -> CurtailmentConfig:
    """Every rule kind at once, as a large farm might configure it (the cap binds: it sheds)."""
    return parse_curtailment(
        {
            "rules": [
                {"kind": "economic", "name": "econ", "threshold_usd_per_day": 0.0, "confirm": 2},
                {
                    "kind": "economic",
                    "name": "econ_old",
                    "scope": {"models": ["Antminer S19*"]},
                    "threshold_usd_per_day": 0.5,
                },
                {
                    "kind": "price_strike",
                    "name": "strike",
                    "strike_usd_per_mwh": 90.0,
                    "for_intervals": 2,
                    "high_strike_usd_per_mwh": 250.0,
                },
                {
                    "kind": "schedule",
                    "name": "4cp",
                    "scope": {"sites": ["site0", "site1"]},
                    "timezone": "America/Chicago",
                    "windows": [
                        {"days": ["mon", "tue", "wed", "thu", "fri"], "start": "16:00", "end": "17:00"}
                    ],
                },
                {
                    "kind": "power_cap",
                    "name": "cap",
                    "scope": {"sites": ["site2"]},
                    "target_kw": n / 4 * 3.2 * 0.8,  # site2 runs ~3.2 kW per miner: shed about a fifth
                },
            ],
            "pins": [
                {"action": "run", "miners": ["m00001", "m00002"]},
                {"action": "exclude", "models": ["*M60S*"], "sites": ["site3"]},
            ],
            "ramp": {"max_miners": max(1, n), "step_s": 0},
        }
    )


def bench_prices(now: float, price: float, *, history: Sequence[float] = ()) -> PriceView:
    """A price view: `history` intervals (oldest first) then the current price at `now`."""
    hist = tuple(PricePoint(now - (len(history) - i) * INTERVAL_S, p) for i, p in enumerate(history))
    hist += (PricePoint(now, price),)
    return PriceView(price, now, False, INTERVAL_S, hist, 45.0)


@dataclass(frozen=True, slots=True)
class DecideResult:
    miners: int
    passes: int
    decide_ms_median: float
    decide_ms_min: float
    decide_ms_max: float
    decide_cpu_ms_median: float  # this process's CPU time per pass (less affected by other load)
    steady_ms_median: float  # passes where few targets change
    switch_ms_median: float  # passes where the strike sets in or lifts: most targets change
    plan_step_ms_median: float
    sleeping: int  # miners the last pass put to sleep or limited
    commands: int  # commands the last plan_step sent


def measure_decide(n: int, *, passes: int = 15, progress: Progress = lambda s: None) -> DecideResult:
    """`passes` decide() + plan_step() passes over `n` synthetic miners, memory carried between passes."""
    from fleetd.curtail.policy import decide
    from fleetd.curtail.ramp import plan_step

    miners = synthetic_miners(n)
    views = {m.id: m for m in miners}
    config = bench_config(n)
    controls = Controls(pins=(Pin(PinAction.SLEEP, miners=("m00003",), source="api", id="p1"),))
    memory: dict[str, MinerMemory] | Any = {}
    fleet = FleetMemory()
    states = {m.id: ControlState(Actual.RUNNING) for m in miners}
    decide_ms: list[float] = []
    decide_cpu_ms: list[float] = []
    steady_ms: list[float] = []
    switch_ms: list[float] = []
    step_ms: list[float] = []
    plan = step = None
    for k in range(passes + 1):  # the first pass warms the compiled-config cache; not counted
        now = T0 + k * 60.0
        price = 40.0 if k % 6 < 3 else 120.0  # the strike goes on and off
        pv = bench_prices(now, price, history=[35.0, 38.0, price])
        c, t = time.process_time(), time.perf_counter()
        plan = decide(miners, pv, config, controls, memory, fleet, now)
        t1, c1 = time.perf_counter(), time.process_time()
        step = plan_step(plan.decisions, states, views, config, now)
        t2 = time.perf_counter()
        memory, fleet = plan.memory, plan.fleet
        if k:
            decide_ms.append((t1 - t) * 1000)
            decide_cpu_ms.append((c1 - c) * 1000)
            changed = sum(1 for d in plan.decisions if d.changed)
            (switch_ms if changed > n // 4 else steady_ms).append(decide_ms[-1])
            step_ms.append((t2 - t1) * 1000)
            progress(f"pass {k}/{passes}: decide {decide_ms[-1]:.1f} ms, plan_step {step_ms[-1]:.1f} ms")
    assert plan is not None and step is not None
    return DecideResult(
        miners=n,
        passes=passes,
        decide_ms_median=round(statistics.median(decide_ms), 2),
        decide_ms_min=round(min(decide_ms), 2),
        decide_ms_max=round(max(decide_ms), 2),
        decide_cpu_ms_median=round(statistics.median(decide_cpu_ms), 2),
        steady_ms_median=round(statistics.median(steady_ms), 2) if steady_ms else 0.0,
        switch_ms_median=round(statistics.median(switch_ms), 2) if switch_ms else 0.0,
        plan_step_ms_median=round(statistics.median(step_ms), 2),
        sleeping=sum(1 for d in plan.decisions if d.target.action.value != "run"),
        commands=len(step.commands),
    )


@dataclass(frozen=True, slots=True)
class SpikeResult:
    miners: int
    models: dict[str, int]
    processes: int
    concurrency: int
    decide_s: float  # the policy pass that saw the spike
    plan_s: float  # plan_step
    sent_s: float  # price seen -> every first-step command sent and acknowledged by its miner
    verified_s: float  # price seen -> every one verified from the miner's re-read telemetry
    commands: int
    verified: int
    failed: int
    sent_per_s: float  # commands over sent_s
    verified_per_s: float  # commands over verified_s
    cpu_sent_s: float  # this process's CPU until every command was sent
    cpu_s: float  # this process's CPU until every command was verified (the emulators run in other processes)
    emulator_cpu_sent_s: float
    emulator_cpu_s: float
    detect_s: float  # setup, not measured: identifying every miner's driver and polling it once
    load_avg: tuple[float, float, float] = (0.0, 0.0, 0.0)  # the machine's load just before the spike
    errors: list[str] = field(default_factory=list)
    loop: str = ""


def spike_config(n: int) -> CurtailmentConfig:
    return parse_curtailment(
        {
            "enforce": True,
            "rules": [{"kind": "price_strike", "name": "strike", "strike_usd_per_mwh": 90.0}],
            "ramp": {"max_miners": max(1, n), "step_s": 0},
            "retry": {"verify_timeout_s": 60.0},
        }
    )


async def _spike(
    hosts: list[tuple[str, str]],
    *,
    web_port: int,
    concurrency: int,
    emulator_pids: list[int],
    progress: Progress,
) -> SpikeResult:
    from fleetd.bench import children_cpu_s
    from fleetd.curtail.policy import decide
    from fleetd.curtail.ramp import plan_step
    from fleetd.drivers import Driver, Endpoint, detect
    from fleetd.executor.runner import execute

    endpoints = {h: Endpoint(h, web_port=web_port) for h, _ in hosts}
    drivers: dict[str, Driver] = {}
    gate = asyncio.Semaphore(500)
    t_detect = time.perf_counter()

    async def find(host: str) -> None:
        async with gate:
            found = await detect(endpoints[host])
        if found is not None:
            drivers[host] = found[0](endpoints[host])

    await asyncio.gather(*(find(h) for h, _ in hosts))
    progress(f"{len(drivers)} of {len(hosts)} miners identified in {time.perf_counter() - t_detect:.1f} s")
    if len(drivers) < len(hosts):
        missing = sorted(set(endpoints) - set(drivers))[:5]
        raise RuntimeError(f"{len(hosts) - len(drivers)} miners not identified, e.g. {', '.join(missing)}")

    async def poll(drv: Driver) -> None:
        async with gate:
            await drv.read()

    # The daemon has polled every miner through its driver shortly before (every 30 s by default).
    await asyncio.gather(*(poll(d) for d in drivers.values()))
    detect_s = time.perf_counter() - t_detect
    progress(f"every miner polled once; setup {detect_s:.1f} s")
    views = [
        MinerView(h, model=model, hashrate_ths=100.0, power_w=3000.0, sleep_power_w=20.0, can_sleep=True)
        for h, model in hosts
    ]
    by_id = {v.id: v for v in views}
    config = spike_config(len(hosts))
    states = {h: ControlState(Actual.RUNNING) for h, _ in hosts}
    now = time.time()
    # Calm prices, then the spike: one pass before (memory as the daemon has it), then the measured one.
    calm = decide(
        views, bench_prices(now - INTERVAL_S, 40.0), config, Controls(), {}, FleetMemory(), now - 60
    )
    load = os.getloadavg() if hasattr(os, "getloadavg") else (0.0, 0.0, 0.0)
    cpu0, emu0 = time.process_time(), children_cpu_s(emulator_pids)
    t0 = time.perf_counter()
    plan = decide(
        views, bench_prices(now, 400.0, history=[40.0]), config, Controls(), calm.memory, calm.fleet, now
    )
    t1 = time.perf_counter()
    step = plan_step(plan.decisions, states, by_id, config, now)
    t2 = time.perf_counter()
    sent: list[float] = []

    def all_sent() -> None:
        sent.extend((time.perf_counter(), time.process_time(), children_cpu_s(emulator_pids)))
        progress(f"{len(step.commands)} commands sent in {sent[0] - t0:.2f} s; verifying")

    outcomes = await execute(
        step, states, drivers.get, config, enforce=True, concurrency=concurrency, on_sent=all_sent
    )
    t3 = time.perf_counter()
    t_sent, cpu_sent, emu_sent = sent
    cpu, emu = time.process_time() - cpu0, children_cpu_s(emulator_pids) - emu0
    for d in drivers.values():
        await d.close()
    ok = sum(1 for o in outcomes if o.ok)
    errors = sorted({f"{o.command.miner_id}: {o.error}" for o in outcomes if not o.ok})[:5]
    models: dict[str, int] = {}
    for _, model in hosts:
        models[model] = models.get(model, 0) + 1
    return SpikeResult(
        miners=len(hosts),
        models=models,
        processes=0,
        concurrency=concurrency,
        decide_s=round(t1 - t0, 3),
        plan_s=round(t2 - t1, 3),
        sent_s=round(t_sent - t0, 3),
        verified_s=round(t3 - t0, 3),
        commands=len(step.commands),
        verified=ok,
        failed=len(outcomes) - ok,
        sent_per_s=round(len(outcomes) / (t_sent - t0), 1) if t_sent > t0 else 0.0,
        verified_per_s=round(len(outcomes) / (t3 - t0), 1) if t3 > t0 else 0.0,
        cpu_sent_s=round(cpu_sent - cpu0, 2),
        cpu_s=round(cpu, 2),
        emulator_cpu_sent_s=round(emu_sent - emu0, 2),
        emulator_cpu_s=round(emu, 2),
        detect_s=round(detect_s, 1),
        load_avg=(round(load[0], 2), round(load[1], 2), round(load[2], 2)),
        errors=errors,
    )


def run_spike(
    n: int,
    *,
    base: str,
    processes: int | None = None,
    concurrency: int | None = None,
    event_loop: str | None = None,
    progress: Progress = lambda s: None,
) -> SpikeResult:
    """Start `n` emulated miners in child processes, then measure the spike against them."""
    from dataclasses import replace

    from fleetd import runtime
    from fleetd.bench import WEB_PORT, fleet_groups
    from fleetd.executor.runner import CONCURRENCY
    from fleetd.sim.fleet import PER_PROCESS, ProcessFleet

    concurrency = concurrency or CONCURRENCY

    runtime.raise_nofile(4 * concurrency + 1024)
    groups = fleet_groups(n, base, models=_emulated_models())
    n_proc = processes or max(1, -(-n // PER_PROCESS))
    progress(f"starting {n} emulated miners from {base} in {n_proc} processes")
    pf = ProcessFleet(groups, processes=n_proc)
    with pf as fleet:
        hosts = [(m.host, m.model) for m in fleet]
        loop, loop_runner = runtime.runner(event_loop)
        with loop_runner as r:
            result = r.run(
                _spike(
                    hosts,
                    web_port=WEB_PORT,
                    concurrency=concurrency,
                    emulator_pids=pf.pids,
                    progress=progress,
                )
            )
    return replace(result, processes=n_proc, loop=loop)


def _emulated_models() -> list[str]:
    """Emulated models whose sleep the drivers verify at once (Avalon schedules softoff seconds ahead)."""
    from fleetd.sim.models import MODELS

    return sorted(name for name in MODELS if not name.startswith("Avalon"))


def machine() -> dict[str, Any]:
    return {
        "cpus": os.cpu_count() or 0,
        "python": f"{platform.python_implementation()} {sys.version.split()[0]}",
    }


def to_dict(decide_r: DecideResult | None, spike_r: SpikeResult | None) -> dict[str, Any]:
    return {
        "decide": asdict(decide_r) if decide_r else None,
        "spike": asdict(spike_r) if spike_r else None,
        **machine(),
    }


def report(decide_r: DecideResult | None, spike_r: SpikeResult | None) -> str:
    """Human-readable summary."""
    m = machine()
    lines = [f"fleetd bench curtail: {m['cpus']} CPUs, {m['python']}"]
    if decide_r:
        d = decide_r
        lines += [
            f"  decide            {d.decide_ms_median:.1f} ms per pass for {d.miners:,} miners (median of "
            f"{d.passes}; min {d.decide_ms_min:.1f}, max {d.decide_ms_max:.1f}; "
            f"CPU {d.decide_cpu_ms_median:.1f} ms); target <= 50 ms",
            f"                    {d.steady_ms_median:.1f} ms on steady passes, "
            f"{d.switch_ms_median:.1f} ms on passes where most targets change",
            f"  plan_step         {d.plan_step_ms_median:.1f} ms per step ({d.sleeping:,} miners curtailed, "
            f"{d.commands:,} commands in the last step)",
        ]
    if spike_r:
        s = spike_r
        models = ", ".join(f"{n} x {name}" for name, n in s.models.items())
        per = 1000 / max(1, s.commands)  # seconds over all commands -> ms per command
        lines += [
            f"  price spike       {s.miners:,} emulated miners ({models}) in {s.processes} processes; "
            f"load average before {s.load_avg[0]:.2f}",
            f"    decide + plan   {(s.decide_s + s.plan_s) * 1000:.0f} ms "
            f"(decide {s.decide_s * 1000:.0f} ms, plan_step {s.plan_s * 1000:.0f} ms)",
            f"    + first step sent and acknowledged by all: {s.sent_s:.2f} s from the price "
            f"(target <= 5 s); {s.sent_per_s:,.0f} commands/s",
            f"    + every command verified from re-read telemetry: {s.verified_s:.2f} s from the price; "
            f"{s.verified_per_s:,.0f} commands/s",
            f"    commands        {s.commands:,} sent, {s.verified:,} verified, {s.failed:,} failed; "
            f"{s.concurrency} in flight",
            f"    CPU             this process {s.cpu_sent_s:.2f} s to send ({s.cpu_sent_s * per:.2f} ms per "
            f"command), {s.cpu_s:.2f} s in all ({s.cpu_s * per:.2f} ms); emulators (other processes) "
            f"{s.emulator_cpu_sent_s:.2f} s / {s.emulator_cpu_s:.2f} s",
            f"    setup           drivers identified and every miner polled once beforehand: "
            f"{s.detect_s:.1f} s",
        ]
        lines += [f"    failed: {e}" for e in s.errors]
    return "\n".join(lines)
