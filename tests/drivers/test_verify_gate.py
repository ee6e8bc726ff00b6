"""verify.until holds the caller's read gate only while it reads, never while it waits."""

from __future__ import annotations

import asyncio

from fleetd.drivers import verify


async def test_each_read_holds_a_slot_and_the_waits_none() -> None:
    gate = asyncio.Semaphore(1)
    seen: list[bool] = []

    async def read() -> int:
        seen.append(gate.locked())
        return len(seen)

    async def other() -> None:  # runs in the waits between reads, when the slot is free
        async with gate:
            seen.append(False)

    async def verifying() -> verify.Outcome[int]:
        verify.READ_GATE.set(gate)  # this task's context only
        return await verify.until(read, lambda n: n >= 4, deadline=verify.deadline_in(5.0), interval=0.05)

    task = asyncio.create_task(verifying())
    await asyncio.sleep(0.02)
    await other()
    end = await task
    assert end.ok and seen.count(True) >= 3 and False in seen
    assert not gate.locked() and verify.READ_GATE.get() is None
