"""In-process news of job changes, so a live view need not wait for its next poll.

A worker that writes a job's progress or ends it says so here; a Server-Sent Events
stream in the same process (``reelscribe serve``) wakes at once instead of at its next
database read. Other processes are not told: their streams still read the database
every few hundred milliseconds, which stays the source of truth either way.
"""

from __future__ import annotations

import asyncio
from collections import Counter


class JobChanges:
    def __init__(self) -> None:
        self._events: dict[str, asyncio.Event] = {}
        self._waiting: Counter[str] = Counter()

    def notify(self, job_id: str) -> None:
        event = self._events.pop(job_id, None)
        if event is not None:
            event.set()

    async def wait(self, job_id: str, timeout: float) -> bool:
        """Sleeps until ``job_id`` changes or ``timeout`` passes; True if it changed."""
        event = self._events.setdefault(job_id, asyncio.Event())
        self._waiting[job_id] += 1
        try:
            async with asyncio.timeout(timeout):
                await event.wait()
            return True
        except TimeoutError:
            return False
        finally:
            self._waiting[job_id] -= 1
            if not self._waiting[job_id]:  # nobody follows the job: leave nothing behind
                del self._waiting[job_id]
                self._events.pop(job_id, None)
