"""``Dispatcher``: turns ended jobs into outbox rows and delivers them (the loop)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Iterable
from types import TracebackType
from typing import Self

import anyio

from reelscribe.backends.db import AsyncEngine
from reelscribe.backends.db.outbox import DeliveryState, Leased, OutboxStore
from reelscribe.backends.faults import Retrier
from reelscribe.backends.queue.base import Backoff
from reelscribe.webhooks.events import EVENTS, outbox_row
from reelscribe.webhooks.outbox import DEFAULT_BACKOFF, DEFAULT_MAX_AGE, check_policy, settle
from reelscribe.webhooks.sender import Sender, Sent

log = logging.getLogger("reelscribe.webhooks")


class Dispatcher:
    """Turns ended jobs into outbox rows and delivers them. Run one or more per
    deployment (e.g. inside each API process): leases keep them from sending the same
    delivery at once.

    ``allowed_networks``: holes in the SSRF guard (``Settings.allowed_networks``);
    ``timeout``: seconds per connect/read/write; ``clock``: the signature timestamp's
    clock (Unix seconds); ``backoff``/``max_age``: the retry schedule (see
    :func:`~reelscribe.webhooks.outbox.retry_offsets`); ``lease_seconds``: how long a
    delivery is reserved for the dispatcher sending it (default ``max(30, 3 × timeout)``,
    so it outlasts the request); ``sweep_window``/``full_sweep_interval``: see
    :meth:`sweep`.
    """

    def __init__(
        self,
        engine: AsyncEngine,
        secret: str,
        *,
        allowed_networks: Iterable[str] = (),
        timeout: float = 10.0,
        clock: Callable[[], float] = time.time,
        backoff: Backoff = DEFAULT_BACKOFF,
        max_age: float = DEFAULT_MAX_AGE,
        lease_seconds: float | None = None,
        batch_size: int = 20,
        sweep_window: float = 600.0,
        full_sweep_interval: float = 300.0,
    ) -> None:
        check_policy(backoff, max_age)
        if not secret:
            raise ValueError("webhooks need a signing secret")
        self.engine = engine
        self.outbox = OutboxStore(engine)
        self.backoff = backoff
        self.max_age = max_age
        self.lease_seconds = lease_seconds if lease_seconds is not None else max(30.0, 3 * timeout)
        self.batch_size = batch_size
        self.sweep_window = sweep_window
        self.full_sweep_interval = full_sweep_interval
        self._next_full_sweep = float("-inf")
        self.sender = Sender(
            secret, allowed_networks=allowed_networks, timeout=timeout, clock=clock
        )

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self.sender.aclose()

    # --- the outbox -------------------------------------------------------------------

    async def sweep(self) -> int:
        """Adds an outbox row for every job in ``done``, ``failed`` or ``cancelled``
        with a ``webhook_url`` and no row for that event yet; returns how many.

        To keep a frequent sweep cheap, most sweeps only look at jobs that finished in
        the last ``sweep_window`` seconds (or have no ``finished_at``); the first sweep
        and one every ``full_sweep_interval`` seconds look at every job, catching what a
        long pause missed.
        """
        full = time.monotonic() >= self._next_full_sweep
        page = self.batch_size * 10
        added = 0
        while True:
            jobs = await self.outbox.ended_jobs(
                EVENTS, within=None if full else self.sweep_window, limit=page
            )
            if not jobs:
                break
            added += await self.outbox.add([outbox_row(job) for job in jobs])
            # Every selected job has its row now (ours or a concurrent sweep's), so the
            # next query moves on; a short page means there is nothing more.
            if len(jobs) < page:
                break
        if full:
            self._next_full_sweep = time.monotonic() + self.full_sweep_interval
        if added:
            log.debug("webhooks: %d new deliveries", added)
        return added

    # --- delivering ---------------------------------------------------------------

    async def deliver_due(self, limit: int | None = None) -> int:
        """Leases up to ``limit`` (default ``batch_size``) due deliveries, sends them
        concurrently and records the outcomes; returns how many attempts were made."""
        leased = await self.outbox.lease(
            self.batch_size if limit is None else limit, self.lease_seconds
        )
        if not leased:
            return 0
        try:
            async with anyio.create_task_group() as tg:
                for delivery in leased:
                    tg.start_soon(self._attempt, delivery)
        finally:
            # The guard keeps every refusal for callers that lose the exception; this
            # one catches it, and a long-lived guard must not grow without bound.
            self.sender.guard.refusals.clear()
        return len(leased)

    async def _attempt(self, delivery: Leased) -> None:
        sent = await self.sender.send(delivery.id, delivery.event, delivery.url, delivery.payload)
        try:
            await self._record(delivery, sent)
        except Exception:
            # Not fatal to the other deliveries of the batch: this one stays leased
            # until its lease runs out and is then sent again (at least once).
            log.exception(
                "webhook %s %s: recording the attempt failed", delivery.event, delivery.id
            )

    async def _record(self, delivery: Leased, sent: Sent) -> None:
        settled = await self.outbox.record(
            delivery,
            status_code=sent.status_code,
            error=sent.error,
            duration_ms=sent.duration_ms,
            decide=lambda first: settle(
                sent,
                attempt=delivery.attempt,
                at=delivery.at,
                first=first,
                backoff=self.backoff,
                max_age=self.max_age,
            ),
        )
        if settled is None:
            # Another dispatcher took the delivery over (our lease had run out) or
            # already delivered it; its write stands.
            log.info("webhook %s %s: outcome superseded", delivery.event, delivery.id)
        elif sent.ok:
            log.info("webhook %s %s delivered", delivery.event, delivery.id)
        elif settled.state is DeliveryState.FAILED:
            log.warning(
                "webhook %s %s given up after %d attempts: %s",
                delivery.event,
                delivery.id,
                delivery.attempt,
                sent.error,
            )

    # --- the loop -------------------------------------------------------------------

    async def run(self, stop: asyncio.Event, interval: float = 1.0) -> None:
        """Sweeps and delivers until ``stop`` is set; goes round again at once while
        full batches keep coming, else waits ``interval`` seconds."""
        # One warning when an outage starts and one when it ends, not a traceback a
        # second (Retrier); a bug, not an outage, is still logged with its traceback.
        retrier = Retrier("webhook dispatch", log, base=interval, cap=max(interval, 10.0))
        while not stop.is_set():
            busy = False
            wait = interval
            try:
                await self.sweep()
                busy = await self.deliver_due() >= self.batch_size
                retrier.succeeded()
            except Exception as exc:
                # The loop must outlive a database restart or a bad row; the outbox
                # keeps the work, so the next round picks it up.
                wait = max(interval, retrier.failed(exc))
                busy = False
            if not busy:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), wait)
