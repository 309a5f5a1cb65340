"""JobChanges: a live view sleeps until its job changes, or until its timeout."""

from __future__ import annotations

import asyncio

from reelscribe.service.changes import JobChanges


def test_a_change_wakes_the_followers_of_that_job_only() -> None:
    async def main() -> tuple[bool, bool, bool, int]:
        changes = JobChanges()
        first = asyncio.create_task(changes.wait("a", timeout=60))
        second = asyncio.create_task(changes.wait("a", timeout=60))
        other = asyncio.create_task(changes.wait("b", timeout=0.05))
        await asyncio.sleep(0.01)
        changes.notify("a")
        woken = await asyncio.wait_for(asyncio.gather(first, second), timeout=10)
        return woken[0], woken[1], await other, len(changes._events)

    assert asyncio.run(main()) == (True, True, False, 0)  # nothing left behind


def test_a_change_with_nobody_following_is_not_kept() -> None:
    async def main() -> bool:
        changes = JobChanges()
        changes.notify("a")  # before anyone waits: not remembered
        return await changes.wait("a", timeout=0.05)

    assert asyncio.run(main()) is False
