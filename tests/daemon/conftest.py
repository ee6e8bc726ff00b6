"""Helpers for daemon tests: a /24 of 127.13.x.y per test, configs, waiting for conditions."""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Callable
from typing import Any

import pytest

from fleetd.config import Config, parse_config
from tests.conftest import web_port

BLOCK = 13
_subnets = itertools.count(1)


def subnet() -> str:
    """A fresh 127.13.N. prefix; addresses .1 and up are free for this test."""
    return f"127.{BLOCK}.{next(_subnets)}."


def config(
    hosts: list[str],
    *,
    discovery: list[str] | None = None,
    miner: dict[str, Any] | None = None,
    **polling: Any,
) -> Config:
    port = web_port()
    data: dict[str, Any] = {
        "polling": {"interval_s": 0.5, "jitter_s": 0.0, "timeout_s": 1.0, "connect_timeout_s": 0.5} | polling,
        "miners": [{"host": h, "web_port": port} | (miner or {}) for h in hosts],
    }
    if discovery:
        data["discovery"] = [{"targets": discovery, "web_port": port, "interval_s": 60}]
    return parse_config(data)


async def until(cond: Callable[[], bool], within: float = 10.0, what: str = "condition") -> None:
    deadline = time.monotonic() + within
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


@pytest.fixture
def ports() -> dict[str, int]:
    return {"web": web_port()}
