"""``DatabaseQueue``: the jobs table is the queue (the default; no extra service).

The same statements run on SQLite and PostgreSQL (see :mod:`.leases`). Waiting
differs: on PostgreSQL with asyncpg a dedicated connection LISTENs and ``wait``
returns as soon as a job becomes claimable; elsewhere ``wait`` polls. Both wake in
time for the next retry or lease expiry the table knows about.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from types import TracebackType
from typing import Any, Self

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from reelscribe.backends.db.enums import JobStatus, Priority
from reelscribe.backends.faults import describe
from reelscribe.backends.queue.base import Backoff, Claim, JobRules
from reelscribe.backends.queue.leases import LeaseTable, default_rules
from reelscribe.errors import ReelscribeError

log = logging.getLogger("reelscribe.queue")


class DatabaseQueue:
    """A :class:`~reelscribe.backends.queue.base.Queue` on the jobs table.

    ``rules`` decide every transition (default: a
    :class:`~reelscribe.service.manager.JobManager` with ``backoff``);
    ``poll_interval`` bounds a wait where no notification can arrive (SQLite, or a
    PostgreSQL driver without LISTEN support here); ``reap_interval`` is how often
    ``claim`` ends jobs whose lease expired for good.
    """

    def __init__(
        self,
        engine: AsyncEngine,
        *,
        rules: JobRules | None = None,
        backoff: Backoff | None = None,
        channel: str = "reelscribe_jobs",
        poll_interval: float = 1.0,
        reap_interval: float = 5.0,
    ) -> None:
        self.engine = engine
        self.rules = rules or default_rules(backoff)
        self.leases = LeaseTable(engine, notify_channel=channel)
        self.channel = channel
        self.poll_interval = poll_interval
        self.reap_interval = reap_interval
        self._last_reap = float("-inf")
        self._listener: _PgListener | None = None
        self._local = asyncio.Event()

    async def __aenter__(self) -> Self:
        if self.engine.dialect.name == "postgresql" and self.engine.dialect.driver == "asyncpg":
            self._listener = _PgListener(self.engine, self.channel)
            await self._listener.ensure()  # PostgreSQL down: polls until it is back
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._listener is not None:
            await self._listener.stop()
            self._listener = None

    async def enqueue(self, job_id: str, priority: Priority | None = None) -> JobStatus:
        state = await self.leases.request(job_id, lambda s: self.rules.enqueued(s, priority))
        status = state.status
        # Workers in this process (``reelscribe serve``) wake at once, without waiting
        # for a poll (SQLite) or a round trip through NOTIFY (PostgreSQL).
        self._local.set()
        return status

    async def submitted(self, job_id: str, priority: Priority) -> None:
        # A new row is claimable as it is; only the sleeping workers need telling.
        self._local.set()
        await self.leases.notify(priority)

    async def claim(self, worker_id: str, lease_seconds: float) -> Claim | None:
        if time.monotonic() - self._last_reap >= self.reap_interval:
            await self.reap()
        return await self.leases.claim_next(worker_id, lease_seconds)

    async def heartbeat(self, claim: Claim) -> bool:
        return await self.leases.heartbeat(claim)

    async def complete(
        self,
        claim: Claim,
        result: dict[str, Any],
        *,
        retain_seconds: float | None = None,
        status: JobStatus = JobStatus.DONE,
    ) -> None:
        await self.leases.complete(claim, result, retain_seconds, status)

    async def fail(
        self, claim: Claim, error: ReelscribeError, *, retryable: bool | None = None
    ) -> JobStatus:
        outcome = await self.leases.decide(claim, lambda s: self.rules.failed(s, error, retryable))
        return outcome.status

    async def release(self, claim: Claim) -> None:
        await self.leases.decide(claim, self.rules.released)

    async def cancelled(self, claim: Claim) -> None:
        await self.leases.settle(claim, self.rules.stopped())

    async def cancel(self, job_id: str) -> JobStatus:
        return (await self.leases.request(job_id, self.rules.cancelled)).status

    async def reap(self) -> int:
        self._last_reap = time.monotonic()
        return await self.leases.reap(self.rules.expired)

    async def wait(self, timeout: float) -> None:
        due = await self.leases.next_due()
        limit = max(0.0, timeout if due is None else min(timeout, due))
        waiters: list[asyncio.Future[Any]] = [asyncio.ensure_future(self._local.wait())]
        if self._listener is None or not await self._listener.ensure():
            limit = min(limit, self.poll_interval)
        else:
            waiters.append(asyncio.ensure_future(self._listener.wait(limit)))
        try:
            await asyncio.wait(waiters, timeout=limit, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiter in waiters:
                waiter.cancel()
            self._local.clear()


class _PgListener:
    """LISTEN on a connection of its own (asyncpg calls back on notifications)."""

    def __init__(self, engine: AsyncEngine, channel: str) -> None:
        self.engine = engine
        self.channel = channel
        self._event = asyncio.Event()
        self._conn: AsyncConnection | None = None
        self._driver: Any = None  # asyncpg.Connection (asyncpg ships no type hints)
        self._down = False

    async def start(self) -> None:
        self._conn = await self.engine.connect()
        raw = await self._conn.get_raw_connection()
        self._driver = raw.driver_connection
        await self._driver.add_listener(self.channel, self._notified)

    async def ensure(self) -> bool:
        """(Re)starts listening when the connection is missing or was closed (the
        server restarted); False when PostgreSQL cannot be reached now (then the
        queue polls). A notification lost meanwhile costs one poll interval."""
        if self._driver is not None and not self._driver.is_closed():
            return True
        with contextlib.suppress(Exception):
            await self.stop()
        try:
            await self.start()
        except Exception as exc:
            if not self._down:  # once per outage
                log.warning("LISTEN %s unavailable (%s); polling", self.channel, describe(exc))
            self._down = True
            with contextlib.suppress(Exception):
                await self.stop()
            return False
        if self._down:
            log.warning("LISTEN %s restored", self.channel)
        self._down = False
        self._event.set()  # something may have been notified while nobody listened
        return True

    def _notified(self, *_: object) -> None:
        self._event.set()

    async def wait(self, timeout: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._event.wait(), timeout)
        self._event.clear()

    async def stop(self) -> None:
        if self._conn is None:
            return
        conn, driver, self._conn, self._driver = self._conn, self._driver, None, None
        try:
            if driver is not None and not driver.is_closed():
                await driver.remove_listener(self.channel, self._notified)
        finally:
            # Closed rather than pooled: a pooled connection must not keep listening.
            await conn.invalidate()
            await conn.close()
