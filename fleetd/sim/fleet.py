"""Run a fleet of emulated miners, in this process (tests) or across child processes (scale).

    from fleetd.sim.fleet import Group, Fleet, ProcessFleet

    groups = [Group("Antminer S19 Pro", count=3, base="127.11.0.1", ports={"web": 8080},
                    faults={"dead": 0.34}, ramp_s=0.5, jitter=0.0)]
    async with Fleet(groups) as miners:          # in-process; miners: list[SimMiner(host, model, ports)]
        fleet_state = ...                        # Fleet.state(host) -> that miner's MinerState
    async with ProcessFleet(groups) as miners:   # or `with ProcessFleet(groups) as miners:` (sync)
        ...                                      # <= per_process miners per child; children die with us

A `Group` is `count` miners of one model on consecutive addresses from `base`, all on the same ports
(defaults: the emulator's real ports, e.g. api 4028 and web 80; ports below 1024 need root).
`faults` maps a fault name (`FAULTS`) to the fraction of the group that has it; the miners are picked
deterministically from `seed`. `quirks` switches protocol quirks on for every miner of the group.
Binding failures raise `BindError` with the address, port and reason.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import errno
import ipaddress
import math
import multiprocessing
import os
import random
import resource
import signal
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from multiprocessing.connection import Connection
from typing import Any, NamedTuple

from fleetd.sim.base import EmulatedMiner, Faults, MinerState
from fleetd.sim.models import lookup

FAULTS: tuple[str, ...] = tuple(f for f in Faults.FIELDS if f != "quirks")
PER_PROCESS = 2500  # miners per child: 2 listeners each, well under the ~20,000 open files per process
SLOW_S = 5.0  # reply delay of a miner with the "slow" fault


class SimMiner(NamedTuple):
    host: str
    model: str
    ports: dict[str, int]


@dataclass(frozen=True, slots=True)
class Group:
    """`count` miners of `model` on consecutive addresses from `base`."""

    model: str
    count: int
    base: str
    ports: Mapping[str, int] = field(default_factory=dict)  # overrides of the emulator's real ports
    faults: Mapping[str, float] = field(default_factory=dict)  # fault name -> fraction of the group
    quirks: frozenset[str] = frozenset()
    ramp_s: float = 30.0
    jitter: float = 0.01
    slow_s: float = SLOW_S
    conf_delay_s: float = 0.0  # how long set_miner_conf.cgi takes to answer (real firmware: up to ~20 s)
    seed: int = 0


@dataclass(frozen=True, slots=True)
class MinerPlan:
    """Everything needed to start one emulated miner (picklable, sent to child processes)."""

    host: str
    model: str
    ports: dict[str, int]
    faults: Faults
    ramp_s: float
    jitter: float
    conf_delay_s: float


class BindError(OSError):
    """An emulated miner could not listen on its address and port."""

    def __init__(self, host: str, port: int, exc: OSError) -> None:
        reason = exc.strerror or str(exc)
        hint = ""
        if exc.errno in (errno.EACCES, errno.EPERM) and port < 1024:
            hint = " (ports below 1024 need root; use a port from 1024 up)"
        elif exc.errno == errno.EADDRNOTAVAIL:
            hint = " (use a loopback address in 127.0.0.0/8)"
        elif exc.errno == errno.EADDRINUSE:
            hint = " (another process is serving it)"
        self.message = f"cannot listen on {host}:{port}: {reason}{hint}"
        super().__init__(exc.errno, self.message)
        self.host, self.port, self.reason = host, port, reason

    def __str__(self) -> str:
        return self.message


def addresses(base: str, count: int) -> list[str]:
    """`count` consecutive IPv4 addresses from `base`."""
    first = ipaddress.IPv4Address(base)
    if int(first) + count - 1 > int(ipaddress.IPv4Address("255.255.255.255")):
        raise ValueError(f"{count} addresses from {base} run past 255.255.255.255")
    return [str(first + i) for i in range(count)]


def plan(groups: Iterable[Group]) -> list[MinerPlan]:
    """Expand groups into per-miner plans: addresses, ports, faults picked per fraction."""
    plans: list[MinerPlan] = []
    seen: set[tuple[str, int]] = set()
    for g in groups:
        model = lookup(g.model)
        if g.count < 0:
            raise ValueError(f"negative count for {g.model}")
        ports = {**getattr(model.emulator_class(), "default_ports", {}), **g.ports}
        hosts = addresses(g.base, g.count)
        chosen: dict[str, set[int]] = {}
        for name, fraction in g.faults.items():
            if name not in FAULTS:
                raise ValueError(f"unknown fault {name!r} (known: {', '.join(FAULTS)})")
            if not 0.0 <= fraction <= 1.0:
                raise ValueError(f"fault fraction for {name} must be within 0..1, not {fraction}")
            rng = random.Random(f"{g.seed}:{name}:{g.base}")
            chosen[name] = set(rng.sample(range(g.count), round(fraction * g.count)))
        for i, host in enumerate(hosts):
            for port in ports.values():
                if (host, port) in seen:
                    raise ValueError(f"{host}:{port} is in two groups")
                seen.add((host, port))
            on = {name for name, idx in chosen.items() if i in idx}
            faults = Faults(
                slow_s=g.slow_s if "slow" in on else 0.0,
                quirks=frozenset(g.quirks),
                **{name: True for name in on if name != "slow"},
            )
            plans.append(
                MinerPlan(host, model.spec.name, dict(ports), faults, g.ramp_s, g.jitter, g.conf_delay_s)
            )
    return plans


def build(p: MinerPlan) -> EmulatedMiner:
    """The (not yet started) emulator for one plan."""
    model = lookup(p.model)
    state = MinerState(
        spec=model.spec,
        faults=replace(p.faults),
        ramp_s=p.ramp_s,
        jitter=p.jitter,
        rng=random.Random(p.host),
    )
    state.started_at -= state.rng.uniform(3600.0, 3 * 86400.0)  # miners have been up a while
    cls: Any = model.emulator_class()
    if "conf_delay_s" in cls.__init__.__code__.co_varnames:
        return cls(state, p.host, dict(p.ports), conf_delay_s=p.conf_delay_s)
    return cls(state, p.host, dict(p.ports))


async def start_all(plans: Sequence[MinerPlan]) -> list[EmulatedMiner]:
    """Start every planned miner; on any failure stop those started and raise BindError."""
    started: list[EmulatedMiner] = []
    try:
        for p in plans:
            miner = build(p)
            try:
                await miner.start()
            except OSError as exc:
                port = _failing_port(p)
                raise BindError(p.host, port, exc) from None
            started.append(miner)
    except BaseException:
        await stop_all(started)
        raise
    return started


def _failing_port(p: MinerPlan) -> int:
    import socket

    for port in p.ports.values():
        with socket.socket() as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                s.bind((p.host, port))
            except OSError:
                return port
    return next(iter(p.ports.values()), 0)


async def stop_all(miners: Iterable[EmulatedMiner]) -> None:
    for m in miners:
        for srv in m.servers:
            srv.close()
    for m in miners:
        await m.stop()


class Fleet:
    """An in-process fleet: `async with Fleet(groups) as miners`."""

    def __init__(self, groups: Iterable[Group]) -> None:
        self.plans = plan(groups)
        self.emulators: dict[str, EmulatedMiner] = {}
        self.miners: list[SimMiner] = [SimMiner(p.host, p.model, dict(p.ports)) for p in self.plans]

    def state(self, host: str) -> MinerState:
        return self.emulators[host].state

    async def __aenter__(self) -> list[SimMiner]:
        started = await start_all(self.plans)
        self.emulators = {m.host: m for m in started}
        return self.miners

    async def __aexit__(self, *exc: object) -> None:
        await stop_all(self.emulators.values())
        self.emulators.clear()


class ProcessFleet:
    """A fleet spread over child processes; `with`/`async with ProcessFleet(groups) as miners`."""

    def __init__(
        self,
        groups: Iterable[Group],
        processes: int | None = None,
        per_process: int = PER_PROCESS,
        ready_timeout_s: float = 300.0,
    ) -> None:
        self.plans = plan(groups)
        self.miners = [SimMiner(p.host, p.model, dict(p.ports)) for p in self.plans]
        n = processes or max(1, math.ceil(len(self.plans) / per_process))
        size = max(1, math.ceil(len(self.plans) / n))
        self.chunks = [self.plans[i : i + size] for i in range(0, len(self.plans), size)]
        self.ready_timeout_s = ready_timeout_s
        self.children: list[tuple[multiprocessing.process.BaseProcess, Connection]] = []

    @property
    def pids(self) -> list[int]:
        return [proc.pid for proc, _ in self.children if proc.pid is not None]

    def start(self) -> list[SimMiner]:
        """Start the children and wait until every miner listens (blocking)."""
        self._spawn()
        return self._wait_ready()

    def _spawn(self) -> None:
        # The children get SIGTERM when the *thread* that spawned them ends (PR_SET_PDEATHSIG), so
        # spawn from the caller's thread, never from a worker thread.
        ctx = multiprocessing.get_context("spawn")
        try:
            for chunk in self.chunks:
                parent, child = ctx.Pipe()
                proc = ctx.Process(target=_child_main, args=(child, chunk), daemon=True, name="fleetd-sim")
                proc.start()
                child.close()
                self.children.append((proc, parent))
        except BaseException:
            self.stop()
            raise

    def _wait_ready(self) -> list[SimMiner]:
        try:
            deadline = time.monotonic() + self.ready_timeout_s
            for proc, conn in self.children:
                if not conn.poll(max(0.0, deadline - time.monotonic())):
                    wait = f"{self.ready_timeout_s:.0f} s"
                    raise TimeoutError(f"emulator process {proc.pid} not ready in {wait}")
                try:
                    kind, detail = conn.recv()
                except EOFError:
                    raise RuntimeError(f"emulator process {proc.pid} died while starting") from None
                if kind == "bind":
                    host, port, err, message = detail
                    raise BindError(host, port, OSError(err, message))
                if kind != "ready":
                    raise RuntimeError(f"emulator process {proc.pid}: {detail}")
        except BaseException:
            self.stop()
            raise
        return self.miners

    def stop(self) -> None:
        for _, conn in self.children:
            with contextlib.suppress(OSError):
                conn.send(("stop", None))
        for proc, conn in self.children:
            proc.join(10)
            if proc.is_alive():
                proc.kill()
                proc.join(5)
            conn.close()
        self.children.clear()

    def __enter__(self) -> list[SimMiner]:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    async def __aenter__(self) -> list[SimMiner]:
        self._spawn()
        return await asyncio.to_thread(self._wait_ready)

    async def __aexit__(self, *exc: object) -> None:
        await asyncio.to_thread(self.stop)


# --- child process ------------------------------------------------------------------------------
def _die_with_parent() -> None:
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def _child_main(conn: Connection, plans: list[MinerPlan]) -> None:
    _die_with_parent()
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the parent, which stops us
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    with contextlib.suppress(ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_child_serve(conn, plans))
    os._exit(0)  # skip interpreter teardown of thousands of sockets


async def _child_serve(conn: Connection, plans: list[MinerPlan]) -> None:
    loop = asyncio.get_running_loop()
    done = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, done.set)
    try:
        miners = await start_all(plans)
    except BindError as exc:
        conn.send(("bind", (exc.host, exc.port, exc.errno, exc.reason)))
        return
    except Exception as exc:
        conn.send(("error", f"{type(exc).__name__}: {exc}"))
        return
    conn.send(("ready", len(miners)))

    def on_message() -> None:
        with contextlib.suppress(EOFError, OSError):  # EOF: the parent is gone
            conn.recv()  # "stop"
        done.set()

    loop.add_reader(conn.fileno(), on_message)
    await done.wait()
    loop.remove_reader(conn.fileno())
