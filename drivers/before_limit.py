"""A miner's own setting from before fleetd's first power limit, for wake to restore.

Kept in memory (module-level, so a driver rebuilt by the daemon still knows it) and in the state
directory's modes journal (so a restarted daemon does too), by a key naming vendor, host and port.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path

from fleetd.drivers.antminer import modes as journal
from fleetd.drivers.base import Sent

from fleetd.model import Snapshot

_MEMORY: dict[str, str] = {}


class BeforeLimit:
    """The setting (a power limit, a preset, a power target) to restore for one miner."""

    def __init__(self, key: str, state_dir: Path | None) -> None:
        self.key = key
        self.state_dir = state_dir

    def get(self) -> str | None:
        value = _MEMORY.get(self.key)
        if value is None and self.state_dir is not None:
            value = journal.journal(self.state_dir).get(self.key)
        return value

    def set(self, value: str | None) -> None:
        """Remember `value` (None: forget it), in memory and in `state_dir`."""
        if value is None:
            _MEMORY.pop(self.key, None)
        else:
            _MEMORY[self.key] = value
        if self.state_dir is not None:
            journal.journal(self.state_dir).set(self.key, value)

    def watts(self) -> int | None:
        value = self.get()
        return int(value) if value is not None and value.isdigit() else None


async def restore_watts(woke: Sent, before: BeforeLimit, send: Callable[[int], Awaitable[Sent]]) -> Snapshot:
    """`woke` verified; then back to the limit (W) from before fleetd's first one, if any, verified too."""
    snap = await woke.confirm()
    watts = before.watts()
    if watts is None:
        return snap
    if snap.power_limit_w is None or abs(snap.power_limit_w - watts) >= 1:
        snap = await (await send(watts)).confirm()
    before.set(None)
    return snap


def forget_all() -> None:
    """Clear the in-memory copies (tests: a process restart)."""
    _MEMORY.clear()
