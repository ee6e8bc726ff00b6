"""The executor sends a whole step, then verifies it: real drivers against emulated miners on loopback."""

from __future__ import annotations

from fleetd.drivers import Driver, Endpoint, Timeouts, detect

from fleetd.bench_curtail import spike_config
from fleetd.curtail.model import Action, Actual, Target
from fleetd.curtail.ramp import Command, ControlState, StepPlan
from fleetd.executor.runner import execute
from fleetd.sim.fleet import Fleet, Group, SimMiner
from tests.conftest import loopback_host

FAST = Timeouts(connect_s=1.0, read_s=1.0, verify_s=3.0, verify_interval_s=0.1)
MODELS = ("Antminer S19 Pro", "Whatsminer M60S_VK40", "Whatsminer M50S_VH50", "Antminer S19k Pro",
          "Antminer S21 Pro", "Antminer S19")  # fmt: skip


async def _drivers(miners: list[SimMiner], hosts: list[str]) -> dict[str, Driver]:
    out = {}
    for m in miners:
        ep = Endpoint(m.host, web_port=m.ports.get("web", 80), timeouts=FAST)
        found = await detect(ep)
        assert found is not None, m.host
        out[m.host] = drv = found[0](ep)
        await drv.read()  # as the daemon has polled it
    assert set(out) == set(hosts)
    return out


async def test_every_command_is_sent_before_any_is_verified_and_an_ignored_one_fails() -> None:
    groups = [Group(model, count=1, base=loopback_host(92), ramp_s=0.2, jitter=0.0) for model in MODELS]
    groups.append(
        Group("Antminer S19 Pro", count=1, base=loopback_host(92), faults={"ignore_power_commands": 1.0})
    )
    fleet = Fleet(groups)
    async with fleet as miners:
        hosts = [m.host for m in miners]
        drivers = await _drivers(miners, hosts)
        ignoring = hosts[-1]
        step = StepPlan(tuple(Command(h, Target(Action.SLEEP), 1, -3.0) for h in hosts))
        states = {h: ControlState(Actual.RUNNING) for h in hosts}
        at_sent: dict[str, bool] = {}

        def sent() -> None:
            at_sent.update({h: fleet.state(h).sleeping for h in hosts})

        # One slot: a miner waiting between re-reads must not hold it, or the others could not verify.
        outcomes = await execute(
            step, states, drivers.get, spike_config(len(hosts)), enforce=True, concurrency=1, on_sent=sent
        )
        for d in drivers.values():
            await d.close()
    assert at_sent == {h: h != ignoring for h in hosts}  # all acknowledged before verification began
    by_host = {o.command.miner_id: o for o in outcomes}
    assert [o.command.miner_id for o in outcomes] == hosts
    for h in hosts[:-1]:
        o = by_host[h]
        assert o.ok and o.state.actual is Actual.SLEEPING, (h, o.error)
        assert o.snapshot is not None and not o.snapshot.is_mining
    bad = by_host[ignoring]
    assert not bad.ok and "acknowledged but not in effect" in bad.error
    assert bad.state.failures == 1 and bad.state.actual is Actual.RUNNING
