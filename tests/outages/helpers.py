"""Helpers for outage tests: a daemon over emulated miners, and reading its /metrics figures."""

from __future__ import annotations

import contextlib
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from fleetd.config import parse_config
from fleetd.daemon.core import Daemon
from fleetd.exporters.prometheus import Exporter
from fleetd.sim.fleet import Fleet, Group
from tests.conftest import web_port

from .conftest import subnet, until


def config(hosts: list[str], **sections: Any) -> Any:
    data: dict[str, Any] = {
        "polling": {"interval_s": 0.3, "jitter_s": 0.0, "timeout_s": 1.0, "connect_timeout_s": 0.5},
        "miners": [{"host": h, "web_port": web_port()} for h in hosts],
    }
    for k, v in sections.items():
        data[k] = data.get(k, {}) | v if isinstance(v, dict) else v
    return parse_config(data)


@contextlib.asynccontextmanager
async def fleet(count: int, block: int = 80) -> AsyncIterator[tuple[Fleet, list[str]]]:
    groups = [Group("Antminer S19 Pro", count, subnet(block) + "1", {"web": web_port()}, ramp_s=0, jitter=0)]
    f = Fleet(groups)
    async with f as miners:
        yield f, [m.host for m in miners]


@contextlib.asynccontextmanager
async def daemon(cfg: Any, state_dir: Path) -> AsyncIterator[Daemon]:
    d = Daemon(cfg, state_dir=state_dir)
    await d.start()
    try:
        yield d
    finally:
        await d.stop()


async def metrics(d: Daemon) -> dict[str, float]:
    """The daemon's own (unlabelled) figures as /metrics shows them."""
    ex = Exporter(lambda: d.state)
    ex.bind(d)
    text = (await ex.scrape()).decode()
    d.on_cycle.remove(ex._count)
    out: dict[str, float] = {}
    for m in re.finditer(r"^(fleetd_(?:storage|mqtt)_[a-z_]+) (\S+)$", text, re.M):
        out[m.group(1)] = float(m.group(2))
    return out


__all__ = ["config", "daemon", "fleet", "metrics", "until"]
