"""The outbox's rules (what an attempt does to its delivery, and the retry schedule)
and its read side for the API (:func:`list_deliveries`)."""

from __future__ import annotations

import dataclasses
from datetime import datetime
from typing import Any

from reelscribe.backends.db import AsyncEngine
from reelscribe.backends.db.outbox import DeliveryState, OutboxStore, Settle
from reelscribe.backends.queue.base import Backoff
from reelscribe.webhooks.events import iso
from reelscribe.webhooks.sender import Sent

#: 5 s, 10 s, 20 s … doubling up to 10 minutes, each stretched by up to 10 % so that
#: deliveries failing together (a receiver went down) do not come back together.
DEFAULT_BACKOFF = Backoff(base=5.0, factor=2.0, max_delay=600.0, jitter=0.1)
#: A delivery is given up once an attempt made this long after the first one fails.
DEFAULT_MAX_AGE = 3600.0


def retry_offsets(
    backoff: Backoff = DEFAULT_BACKOFF, max_age: float = DEFAULT_MAX_AGE
) -> list[float]:
    """Seconds after the first attempt at which each attempt of an always-failing
    delivery is made, at the shortest delays (jitter only adds). The last one is the
    first at or past ``max_age``: retries always span at least ``max_age``."""
    check_policy(backoff, max_age)
    shortest = dataclasses.replace(backoff, jitter=0.0)
    offsets = [0.0]
    while offsets[-1] < max_age:
        offsets.append(offsets[-1] + shortest.delay(len(offsets)))
    return offsets


def check_policy(backoff: Backoff, max_age: float) -> None:
    if backoff.base <= 0 or backoff.factor < 1 or backoff.max_delay <= 0 or max_age < 0:
        raise ValueError(f"invalid webhook retry policy: {backoff}, max_age={max_age}")


def settle(
    sent: Sent,
    *,
    attempt: int,
    at: datetime,
    first: datetime | None,
    backoff: Backoff,
    max_age: float,
) -> Settle:
    """A 2xx delivers (final even if the lease ran out meanwhile); a refused target, or
    a failure ``max_age`` or more after the first attempt (both on the database's
    clock), gives up; anything else is due again after the backoff."""
    if sent.ok:
        return Settle(DeliveryState.DELIVERED, final=True)
    too_old = first is not None and (at - first).total_seconds() >= max_age
    if sent.permanent or too_old:
        return Settle(DeliveryState.FAILED)
    return Settle(None, retry_in=backoff.delay(attempt))


async def list_deliveries(engine: AsyncEngine, job_id: str) -> list[dict[str, Any]]:
    """A job's webhook deliveries, oldest first, each with its attempts (oldest first),
    as JSON-ready dicts (times as ISO 8601 strings, UTC)::

        {"id", "event", "url", "state", "payload" (the body sent), "created_at", "delivered_at",
         "next_attempt_at" (None unless pending),
         "attempts": [{"at", "status_code", "error", "duration_ms"}, …]}
    """
    deliveries, attempts = await OutboxStore(engine).for_job(job_id)
    by_delivery: dict[str, list[dict[str, Any]]] = {d.id: [] for d in deliveries}
    for a in attempts:
        # A delivery added between the two reads has no entry; the next call shows it.
        if a.delivery_id not in by_delivery:
            continue
        by_delivery[a.delivery_id].append(
            {
                "at": iso(a.at),
                "status_code": a.status_code,
                "error": a.error,
                "duration_ms": a.duration_ms,
            }
        )
    return [
        {
            "id": d.id,
            "event": d.event,
            "url": d.url,
            "state": d.state,
            "payload": d.payload,
            "created_at": iso(d.created_at),
            "delivered_at": iso(d.delivered_at),
            "next_attempt_at": (
                iso(d.next_attempt_at) if d.state == DeliveryState.PENDING.value else None
            ),
            "attempts": by_delivery[d.id],
        }
        for d in deliveries
    ]
