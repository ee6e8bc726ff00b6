"""Process-wide settings: the event loop, the garbage collector and the open-files limit.

`fleetd run`, `fleetd demo` and `fleetd bench` use the first two, so the benchmark measures what runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import os
import resource

# The collector's default first threshold (700 net new container objects) makes it run many times
# per poll cycle, and each older-generation pass walks the whole fleet state: a third of the poll
# path's CPU at 10,000 miners. Polling frees almost everything by reference counting, so rarer
# collections keep little garbage (at most a few tens of thousands of objects) for much less CPU.
GC_THRESHOLDS = (20_000, 20, 20)


def runner(prefer: str | None = None) -> tuple[str, asyncio.Runner]:
    """(name, Runner): uvloop where installed (less CPU per miner poll), else asyncio's.

    `prefer` is "uvloop" or "asyncio"; by default $FLEETD_EVENT_LOOP, else "uvloop".
    """
    choice = (prefer or os.environ.get("FLEETD_EVENT_LOOP") or "uvloop").lower()
    if choice == "uvloop":
        try:
            import uvloop
        except ImportError:
            pass
        else:
            return "uvloop", asyncio.Runner(loop_factory=uvloop.new_event_loop)
    return "asyncio", asyncio.Runner()


def tune_gc() -> None:
    """Collect less often, and leave what exists at start-up (modules, config) out of future passes."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)


def raise_nofile(want: int | None = None) -> int:
    """Raise the soft open-files limit to `want` (None: the hard limit) as far as allowed; the limit after.

    Never lowers it. The result may be resource.RLIM_INFINITY.
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    inf = resource.RLIM_INFINITY
    if soft == inf:
        return soft
    target = hard if want is None or (hard != inf and want > hard) else want
    if target == inf or target > soft:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
    return soft
