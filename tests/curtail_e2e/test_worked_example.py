"""The README's worked example (config/curtailment.example.toml) runs as written: its simulator command
line and its rules put exactly the S19 Pros and M50Ss to sleep in a $70/MWh spike, two at a time.

Only timing is compressed (poll and decision intervals, ramp step, dwell); the miners, addresses, ports,
prices and rules are the example's own.
"""

from __future__ import annotations

import asyncio
import shlex
import time
import tomllib
from pathlib import Path
from typing import Any

from fleetd.cli import build_parser
from fleetd.cli.sim import _prices, build_groups
from fleetd.config import parse_config
from fleetd.curtail.model import Actual
from fleetd.daemon import Daemon
from fleetd.daemon.events import EventKind
from fleetd.sim.fleet import Fleet

EXAMPLE = Path(__file__).parents[2] / "config" / "curtailment.example.toml"
README = Path(__file__).parents[2] / "README.md"


def example_commands() -> list[list[str]]:
    """The shell commands in the example's header comment, continuation lines joined."""
    lines, out, cur = EXAMPLE.read_text().splitlines(), [], ""
    for line in lines:
        if not line.startswith("#   "):
            continue
        cur += line[4:].rstrip()
        if cur.endswith("\\"):
            cur = cur[:-1] + " "
            continue
        out.append(shlex.split(cur.rstrip("& ")))
        cur = ""
    return out


def test_the_readme_shows_the_example_commands() -> None:
    readme = " ".join(README.read_text().split())
    for argv in example_commands():
        assert shlex.join(argv).replace("'", '"') in readme.replace("\\ ", ""), argv


def test_the_example_config_is_valid() -> None:
    from fleetd.cli.check_config import main as _  # noqa: F401  (check-config is what operators run)

    cfg = parse_config(tomllib.loads(EXAMPLE.read_text()))
    assert cfg.curtailment is not None and cfg.economics is not None


async def _until(cond: Any, within: float, what: str) -> None:
    deadline = time.monotonic() + within
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.1)


async def test_the_worked_example_sleeps_the_loss_makers(tmp_path: Path) -> None:
    sim, run = example_commands()
    assert sim[:2] == ["fleetd", "sim"] and run[:2] == ["fleetd", "run"]
    args = build_parser().parse_args(sim[1:])
    groups = build_groups(args)
    prices = _prices(args)
    assert prices is not None and prices.scenario.high == 70.0
    prices.scenario.price_now = prices.scenario.low
    data = tomllib.loads(EXAMPLE.read_text())
    data["polling"]["interval_s"] = 0.5
    c = data["curtailment"]
    c["interval_s"] = 1.0
    c["ramp"]["step_s"] = 0.5
    c["dwell"] = {"min_on_s": 0.0, "min_off_s": 0.0}
    cfg = parse_config(data)
    async with Fleet(groups) as miners, prices:
        hosts = [m.host for m in miners]
        d = Daemon(cfg, state_dir=tmp_path)
        await d.start()
        try:
            await _until(lambda: len(d.state.miners) == 12, 20, "discovery")
            st = lambda: d.curtail_status  # noqa: E731
            await _until(lambda: st() is not None and len(st().miners) == 12, 20, "a pass over 12")
            await _until(lambda: all(st().miners[h].actual is Actual.RUNNING for h in hosts), 20, "running")
            # the first decision waited for the first price: no stale-price fail-safe at the start
            assert not [e for e in d.events if e.kind is EventKind.CURTAIL_FAILSAFE]
            prices.scenario.price_now = prices.scenario.high
            losers = [m.host for m in miners if not m.model.startswith("Antminer S21")]
            await _until(
                lambda: all(st().miners[h].actual is Actual.SLEEPING for h in losers), 60, "losers asleep"
            )
            keep = set(hosts) - set(losers)
            assert len(losers) == 8 and all(st().miners[h].actual is Actual.RUNNING for h in keep)
            sent = sorted(e.at for e in d.events if e.kind is EventKind.CURTAIL_COMMAND)
            assert len(sent) == 8
            assert all(sent[i + 2] - sent[i] >= 0.45 for i in range(len(sent) - 2))  # 2 per 0.5 s step
        finally:
            await d.stop()


def test_the_reference_config_curtailment_block_parses_when_uncommented() -> None:
    import re

    text = (EXAMPLE.parent / "fleetd.example.toml").read_text()
    block = text[text.index("# [curtailment]\n") :]
    lines = [ln[2:] for ln in block.splitlines() if re.match(r"# (\[|[a-z_]+ = )", ln)]
    cfg = parse_config(tomllib.loads("\n".join(lines)))
    from fleetd.curtail.config import parse_curtailment

    c = parse_curtailment(cfg.curtailment or {})
    assert [r.kind for r in c.rules] == ["economic", "price_strike", "schedule", "power_cap"]
    assert c.mqtt_dr is not None and c.pins and c.ramp.max_kw == 500.0
