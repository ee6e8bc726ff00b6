"""The emulator's slow-degradation faults: physics on the emulated clock, plans and the CLI option."""

from __future__ import annotations

import subprocess
import sys

import pytest

from fleetd.sim.base import Faults, MinerState
from fleetd.sim.fleet import FAULTS, Group, build, plan
from fleetd.sim.models import lookup

SPEC = lookup("Antminer S19 Pro").spec


def _state(**faults: bool) -> MinerState:
    s = MinerState(spec=SPEC, faults=Faults(**faults), jitter=0.0, time_scale=3600.0)
    s.degrading_since -= 10.0  # ten real seconds: ten emulated hours
    return s


def test_board_degrading_loses_the_last_boards_hashrate_over_emulated_time() -> None:
    shares = _state(board_degrading=True).board_fractions()
    assert shares[:2] == [pytest.approx(1 / 3)] * 2
    assert shares[2] == pytest.approx(1 / 3 * 0.8, rel=0.01)  # 2 % an hour for 10 h
    old = _state(board_degrading=True)
    old.degrading_since -= 3600.0  # far past the floor
    assert old.board_fractions()[2] == pytest.approx(1 / 3 * 0.1)


def test_fan_degrading_speeds_the_fans_up_and_heats_the_chips() -> None:
    healthy, worn = _state(), _state(fan_degrading=True)
    assert worn.fan_rpms()[0] == pytest.approx(SPEC.fan_rpm * 1.15, rel=0.01)
    assert worn.chip_temp_c() == pytest.approx(healthy.chip_temp_c() + 4.0, abs=0.2)
    worn.sleep()
    assert worn.fan_rpms()[0] == int(SPEC.fan_rpm * 0.3)  # asleep: nothing to cool


def test_faults_and_time_scale_reach_the_emulator() -> None:
    assert {"board_degrading", "fan_degrading"} <= set(FAULTS)
    (p,) = plan([Group("Antminer S19 Pro", 1, "127.60.200.1", faults={"fan_degrading": 1.0}, time_scale=60)])
    assert p.faults.fan_degrading and p.time_scale == 60
    assert build(p).state.time_scale == 60


@pytest.mark.parametrize("value", ["0", "-1", "nan", "lots", "2e6"])
def test_sim_rejects_a_bad_time_scale(value: str) -> None:
    res = subprocess.run(
        [sys.executable, "-m", "fleetd", "sim", "--time-scale", value],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert res.returncode != 0 and "time scale" in res.stderr
