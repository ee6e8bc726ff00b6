"""The daemon polls a miner configured with driver = "pyasic" and applies [drivers] pyasic_fallback."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import pytest
from fleetd.drivers import detection_classes

from fleetd.config import parse_config
from fleetd.daemon.core import Daemon

from .conftest import M50S, Start

pytest.importorskip("pyasic")


def _config(host: str, fallback: bool) -> Any:
    return parse_config(
        {
            "polling": {"interval_s": 0.5, "jitter_s": 0.0, "timeout_s": 3.0, "connect_timeout_s": 1.0},
            "drivers": {"pyasic_fallback": fallback},
            "miners": [{"host": host, "driver": "pyasic"}],
        }
    )


async def _until(cond: Any, what: str, within: float = 15.0) -> None:
    deadline = time.monotonic() + within
    while not cond():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.05)


async def test_daemon_polls_through_pyasic_and_applies_the_switch(start: Start, tmp_path: Path) -> None:
    _, ep = await start(M50S)
    d = Daemon(_config(ep.host, fallback=True), state_dir=tmp_path)
    await d.start()
    try:
        await _until(lambda: d.state.up() == 1, "the miner up")
        rec = d.state.miners[ep.host]
        assert rec.driver == "pyasic" and rec.identity is not None and rec.identity.api == "pyasic"
        assert "pyasic" in [c.name for c in detection_classes()]
        await d.reload(_config(ep.host, fallback=False))
        assert "pyasic" not in [c.name for c in detection_classes()]
    finally:
        await d.stop()
