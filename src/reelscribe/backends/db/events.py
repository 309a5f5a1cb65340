"""Fenced writes of a running job's progress and steps.

The worker reports what the pipeline is doing (stage, percentage, ETA) and when each
step starts and ends. Every write carries the claim's fencing token, so a worker that
lost its lease cannot overwrite the job's state or add events to it.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import and_, insert, update
from sqlalchemy.ext.asyncio import AsyncEngine

from reelscribe.backends.db.enums import EventKind, JobStatus
from reelscribe.backends.db.schema import JobEventRow, JobRow
from reelscribe.backends.db.types import utcnow
from reelscribe.backends.queue import Claim
from reelscribe.errors import LeaseLost


async def record(
    engine: AsyncEngine,
    claim: Claim,
    *,
    progress: float | None = None,
    stage: str | None = None,
    message: str | None = None,
    events: list[tuple[EventKind, dict[str, Any]]] = (),  # type: ignore[assignment]
) -> None:
    """Updates the job row and appends ``events`` in one transaction, only while
    ``claim`` is the job's current lease (else raises LeaseLost)."""
    values: dict[str, Any] = {"updated_at": utcnow()}
    if progress is not None:
        values["progress"] = round(max(0.0, min(100.0, progress)), 2)
    if stage is not None:
        values["stage"] = stage
    if message is not None:
        values["status_message"] = message[:500]
    fence = and_(
        JobRow.id == claim.job_id,
        JobRow.lease_token == claim.token,
        JobRow.status == JobStatus.PROCESSING,
    )
    async with engine.begin() as conn:
        done = await conn.execute(update(JobRow).where(fence).values(values).returning(JobRow.id))
        if done.one_or_none() is None:
            raise LeaseLost(f"job {claim.job_id}: lease token {claim.token} is no longer current")
        if events:
            await conn.execute(
                insert(JobEventRow),
                [
                    {
                        "job_id": claim.job_id,
                        "kind": kind,
                        "data": data | {"attempt": claim.attempt},
                    }
                    for kind, data in events
                ],
            )
