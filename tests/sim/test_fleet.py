"""Fleets: the in-process context manager and the multi-process fleet (small counts)."""

from __future__ import annotations

import asyncio
import errno
import os
import signal
import subprocess
import sys
import time

import pytest

from fleetd.sim.fleet import BindError, Fleet, Group, ProcessFleet, addresses
from fleetd.sim.models import MODELS, lookup
from tests.conftest import loopback_host
from tests.sim.helpers import BLOCK, api


def _hosts(n: int) -> str:
    first = loopback_host(BLOCK)
    for _ in range(n - 1):
        loopback_host(BLOCK)
    return first


def test_models_registry_names():
    assert {"Antminer S19 Pro", "Antminer S21"} <= set(MODELS)
    assert lookup("antminer s19 pro").spec.hashrate_ths == 110.0
    with pytest.raises(KeyError, match="known: "):
        lookup("Antminer S9000")
    for model in MODELS.values():
        assert model.spec.name in MODELS and model.emulator_class()


def test_addresses_are_consecutive():
    assert addresses("127.11.0.254", 3) == ["127.11.0.254", "127.11.0.255", "127.11.1.0"]


async def test_in_process_fleet_yields_host_model_ports():
    base = _hosts(3)
    groups = [
        Group("Antminer S19 Pro", 2, base, ports={"web": 8081}),
        Group("Antminer S21", 1, addresses(base, 3)[2], ports={"web": 8081}),
    ]
    fleet = Fleet(groups)
    async with fleet as miners:
        assert [(m.host, m.model) for m in miners] == [
            (addresses(base, 3)[0], "Antminer S19 Pro"),
            (addresses(base, 3)[1], "Antminer S19 Pro"),
            (addresses(base, 3)[2], "Antminer S21"),
        ]
        host, model, ports = miners[2]
        assert ports == {"api": 4028, "web": 8081}
        assert (await api(host, "version"))["VERSION"][0]["Type"] == model
        assert fleet.state(host).spec.name == "Antminer S21"
    with pytest.raises(OSError):
        await api(host, "version")


async def test_bind_error_is_clear_and_leaves_nothing_listening():
    base = _hosts(2)
    async with Fleet([Group("Antminer S19 Pro", 1, addresses(base, 2)[1], ports={"web": 8082})]):
        with pytest.raises(BindError, match=r"cannot listen on 127\.11\.\S+:4028: .*in use"):
            async with Fleet([Group("Antminer S19 Pro", 2, base, ports={"web": 8082})]):
                pass
    # the first miner of the failed fleet was stopped again: its address is free
    async with Fleet([Group("Antminer S19 Pro", 1, base, ports={"web": 8082})]):
        pass


def test_bind_error_suggests_a_high_port_for_permission_denied():
    exc = BindError("127.1.0.1", 80, OSError(errno.EACCES, "Permission denied"))
    assert str(exc) == ("cannot listen on 127.1.0.1:80: Permission denied (ports below 1024 need root)")


async def test_process_fleet_serves_from_children():
    base = _hosts(7)
    groups = [
        Group("Antminer S19 Pro", 6, base, ports={"web": 8083}),
        Group("Antminer S21", 1, addresses(base, 7)[6], ports={"web": 8083}, faults={"board_down": 1.0}),
    ]
    fleet = ProcessFleet(groups, per_process=4)
    async with fleet as miners:
        assert len(fleet.pids) == 2 and os.getpid() not in fleet.pids
        assert len(miners) == 7 and not fleet.dead()
        replies = await asyncio.gather(*(api(m.host, "summary") for m in miners[:6]))
        assert all(r["SUMMARY"][0]["GHS 5s"] > 0 for r in replies)
        stats = (await api(miners[6].host, "stats"))["STATS"]
        assert stats[0]["Type"] == "Antminer S21" and stats[1]["chain_acn3"] == 0  # faults reach children
        pids = fleet.pids
    assert not fleet.children
    for pid in pids:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)


def test_process_fleet_reports_bind_errors():
    base = _hosts(2)
    with pytest.raises(BindError, match=r"cannot listen on .*:4028"):  # noqa: SIM117
        with ProcessFleet([Group("Antminer S19 Pro", 2, base, ports={"web": 8084})], processes=1):
            with ProcessFleet([Group("Antminer S19 Pro", 1, base, ports={"web": 8084})], processes=1):
                pass


def test_children_die_with_the_parent():
    base = _hosts(2)
    code = (
        "import sys, time\n"
        "from fleetd.sim.fleet import Group, ProcessFleet\n"
        "f = ProcessFleet([Group('Antminer S19 Pro', 2, sys.argv[1], ports={'web': 8085})], processes=2)\n"
        "f.start()\n"
        "print(*f.pids, flush=True)\n"
        "time.sleep(60)\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", code, base], stdout=subprocess.PIPE, text=True)
    try:
        pids = [int(p) for p in proc.stdout.readline().split()]  # type: ignore[union-attr]
        assert len(pids) == 2
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    deadline = time.monotonic() + 5
    alive = pids
    while alive and time.monotonic() < deadline:
        time.sleep(0.05)
        alive = [p for p in alive if _alive(p)]
    assert not alive


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie (exited, not yet reaped by init) counts as dead
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(") ", 1)[1][0] != "Z"
    except OSError:
        return False
