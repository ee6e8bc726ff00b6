"""`fleetd demo` names the miners it makes faulty on purpose, so a dead one does not look like a bug."""

from __future__ import annotations

from fleetd.cli.demo import deliberate_faults
from fleetd.sim.fleet import Group, plan


def test_the_dead_and_the_broken_are_named() -> None:
    plans = plan(
        [
            Group("Antminer S19 Pro", 4, "127.84.9.1", faults={"board_down": 0.25}),
            Group("Whatsminer M50S", 4, "127.84.9.11", faults={"dead": 0.5}),
        ]
    )
    dead = [p.host for p in plans if p.faults.dead]
    broken = [p.host for p in plans if p.faults.board_down]
    assert len(dead) == 2 and len(broken) == 1
    line = deliberate_faults(plans)
    assert line.startswith("  deliberate faults, to show what they look like: ")
    assert f"dead, never answers, shown as down: {', '.join(dead)}" in line
    assert f"a hashboard down: {broken[0]}" in line


def test_no_line_without_faults() -> None:
    assert deliberate_faults(plan([Group("Antminer S19 Pro", 2, "127.84.9.31")])) == ""
