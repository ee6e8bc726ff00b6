"""The process settings `fleetd run`, demo and bench share: event loop choice, collector thresholds."""

from __future__ import annotations

import asyncio
import gc

from fleetd import runtime


def test_runner_prefers_uvloop_and_honours_the_environment(monkeypatch):
    name, runner = runtime.runner()
    with runner as r:
        loop_type = r.run(_loop_type())
    assert name == "uvloop" and "uvloop" in loop_type  # installed with fleetd
    monkeypatch.setenv("FLEETD_EVENT_LOOP", "asyncio")
    name, runner = runtime.runner()
    with runner as r:
        assert name == "asyncio" and "uvloop" not in r.run(_loop_type())


async def _loop_type() -> str:
    return type(asyncio.get_running_loop()).__module__


def test_tune_gc_raises_thresholds():
    before = gc.get_threshold()
    try:
        runtime.tune_gc()
        assert gc.get_threshold() == runtime.GC_THRESHOLDS
        assert gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()
        gc.set_threshold(*before)
