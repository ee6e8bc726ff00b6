"""Run a fleet of emulated miners, in this process (tests) or across child processes (scale).

    from fleetd.sim.fleet import Fleet, Group, ProcessFleet

    groups = [Group("Antminer S19 Pro", count=3, base="127.11.0.1", ports={"web": 8080},
                    faults={"dead": 0.34}, ramp_s=0.5, jitter=0.0)]
    fleet = Fleet(groups)
    async with fleet as miners:                  # in-process: miners is list[SimMiner(host, model, ports)]
        fleet.state(miners[0].host).sleep()      # each miner's MinerState, to change or inspect it
    async with ProcessFleet(groups) as miners:   # or `with ProcessFleet(groups) as miners:` (blocking)
        ...                                      # <= per_process (2,500) miners per child process

A `Group` is `count` miners of one model (a name in fleetd.sim.models.MODELS) on consecutive addresses
from `base`, all on the same ports: the emulator's real ones (Antminer: api 4028, web 80) unless
overridden by `ports`; ports below 1024 need root. `faults` maps a fault name (`FAULTS`) to the
fraction of the group that has it, picked deterministically from `seed`; `quirks` switches protocol
quirks on for the whole group, `replies` serves those bodies instead of the rendered ones (see
`Faults.replies`); `options` are keyword options of the emulator class (Antminer:
`reboot_s`). Binding failures raise `BindError` (an OSError) naming the address, port and reason.
ProcessFleet children are `python -m fleetd.sim.worker` processes: they exit when the parent stops
them or dies (their stdin closes); a child that cannot start raises RuntimeError or TimeoutError.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import functools
import inspect
import ipaddress
import json
import math
import os
import pickle
import random
import select
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, NamedTuple

from fleetd.runtime import raise_nofile
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
    replies: Mapping[str, bytes] = field(default_factory=dict)  # Faults.replies of every miner in the group
    ramp_s: float = 30.0
    jitter: float = 0.01
    slow_s: float = SLOW_S
    conf_delay_s: float = 0.0  # how long a power command takes to be acknowledged (Antminer: up to ~20 s)
    seed: int = 0
    options: Mapping[str, Any] = field(default_factory=dict)  # keyword options of the emulator class
    time_scale: float = 1.0  # emulated seconds per real second for slow-degradation faults


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
    options: dict[str, Any] = field(default_factory=dict)
    time_scale: float = 1.0


class BindError(OSError):
    """An emulated miner could not listen on its address and port."""

    def __init__(self, host: str, port: int, exc: OSError) -> None:
        reason = exc.strerror or str(exc)
        hint = ""
        if exc.errno in (errno.EACCES, errno.EPERM) and port < 1024:
            hint = " (ports below 1024 need root)"
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
        cls = model.emulator_class()
        ports = {**cls.default_ports, **g.ports}
        unknown = set(g.options) - emulator_options(cls)
        if unknown:
            raise ValueError(f"{model.spec.name} emulator has no option {sorted(unknown)[0]!r}")
        options = dict(g.options)
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
                replies=dict(g.replies),
                **{name: True for name in on if name != "slow"},
            )
            plans.append(
                MinerPlan(
                    host,
                    model.spec.name,
                    dict(ports),
                    faults,
                    g.ramp_s,
                    g.jitter,
                    g.conf_delay_s,
                    options,
                    g.time_scale,
                )
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
        time_scale=p.time_scale,
    )
    state.started_at -= state.rng.uniform(3600.0, 3 * 86400.0)  # miners have been up a while
    cls = model.emulator_class()
    options = dict(p.options)
    if p.conf_delay_s and "conf_delay_s" in emulator_options(cls):
        options["conf_delay_s"] = p.conf_delay_s
    return cls(state, p.host, dict(p.ports), **options)


@functools.cache
def emulator_options(cls: type[EmulatedMiner]) -> frozenset[str]:
    """The keyword options an emulator class takes besides (state, host, ports)."""
    params = inspect.signature(cls).parameters.values()
    return frozenset(
        p.name for p in params if p.name not in ("state", "host", "ports") and p.kind != p.VAR_KEYWORD
    )


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
    await asyncio.gather(*(m.stop() for m in miners))


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
        self.children: list[subprocess.Popen[bytes]] = []

    @property
    def pids(self) -> list[int]:
        return [proc.pid for proc in self.children]

    def dead(self) -> list[int]:
        """Children that have exited (they should not before `stop`)."""
        return [proc.pid for proc in self.children if proc.poll() is not None]

    def start(self) -> list[SimMiner]:
        """Start the children and wait until every miner listens (blocking)."""
        self._spawn()
        return self._wait_ready()

    def _spawn(self) -> None:
        # A child of its own interpreter (`python -m fleetd.sim.worker`), not multiprocessing: that
        # would re-import the caller's __main__ in every child. Plans go in on stdin; one status line
        # comes back on stdout; stdin reaching EOF (stop, or this process dying) ends the child.
        try:
            for chunk in self.chunks:
                try:
                    proc = subprocess.Popen(
                        [sys.executable, "-m", "fleetd.sim.worker"],
                        stdin=subprocess.PIPE,
                        stdout=subprocess.PIPE,
                        start_new_session=True,  # Ctrl-C goes to us; we stop the children
                    )
                except OSError as exc:
                    raise RuntimeError(f"cannot start {sys.executable} for the emulators: {exc}") from None
                self.children.append(proc)
                assert proc.stdin is not None
                proc.stdin.write(pickle.dumps(chunk))
                proc.stdin.flush()
        except BaseException:
            self.stop()
            raise

    def _wait_ready(self) -> list[SimMiner]:
        try:
            deadline = time.monotonic() + self.ready_timeout_s
            for proc in self.children:
                assert proc.stdout is not None
                ready, _, _ = select.select([proc.stdout], [], [], max(0.0, deadline - time.monotonic()))
                if not ready:
                    wait = f"{self.ready_timeout_s:.0f} s"
                    raise TimeoutError(f"emulator process {proc.pid} not ready in {wait}")
                line = proc.stdout.readline()
                if not line:
                    raise RuntimeError(f"emulator process {proc.pid} died while starting")
                kind, detail = json.loads(line)
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
        for proc in self.children:
            if proc.stdin is not None:
                with contextlib.suppress(OSError):
                    proc.stdin.close()
        for proc in self.children:
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
            if proc.stdout is not None:
                proc.stdout.close()
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


# --- child process (run by fleetd.sim.worker) ---------------------------------------------------
def child_main() -> None:
    """Serve the plans read from stdin until stdin closes or SIGTERM; report readiness on stdout."""
    # No PR_SET_PDEATHSIG: it fires when the spawning *thread* ends. EOF on stdin covers a dead parent.
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides when we stop
    raise_nofile()
    plans: list[MinerPlan] = pickle.load(sys.stdin.buffer)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_child_serve(plans))
    sys.stdout.flush()
    os._exit(0)  # skip interpreter teardown of thousands of sockets


def _report(kind: str, detail: Any) -> None:
    sys.stdout.write(json.dumps([kind, detail]) + "\n")
    sys.stdout.flush()


async def _child_serve(plans: list[MinerPlan]) -> None:
    loop = asyncio.get_running_loop()
    done = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, done.set)
    try:
        miners = await start_all(plans)
    except BindError as exc:
        _report("bind", (exc.host, exc.port, exc.errno, exc.reason))
        return
    except Exception as exc:
        _report("error", f"{type(exc).__name__}: {exc}")
        return
    _report("ready", len(miners))
    stdin = sys.stdin.buffer.fileno()

    def on_stdin() -> None:
        if not os.read(stdin, 4096):  # EOF: stop, or the parent is gone
            done.set()

    loop.add_reader(stdin, on_stdin)
    await done.wait()
    loop.remove_reader(stdin)
