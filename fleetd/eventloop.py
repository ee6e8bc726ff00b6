"""The event loop fleetd runs on: uvloop where installed (less CPU per miner poll), else asyncio's.

Set FLEETD_EVENT_LOOP=asyncio to force the standard loop (e.g. to compare, or to rule uvloop out).
"""

from __future__ import annotations

import asyncio
import os


def runner(prefer: str | None = None) -> tuple[str, asyncio.Runner]:
    """(name, Runner): `prefer` ("uvloop" or "asyncio"; default $FLEETD_EVENT_LOOP or "uvloop")."""
    choice = (prefer or os.environ.get("FLEETD_EVENT_LOOP") or "uvloop").lower()
    if choice == "uvloop":
        try:
            import uvloop
        except ImportError:
            pass
        else:
            return "uvloop", asyncio.Runner(loop_factory=uvloop.new_event_loop)
    return "asyncio", asyncio.Runner()
