"""Read-only figures across the jobs tables, for ``/metrics`` and ``/readyz``."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncEngine

from reelscribe.backends.db.engine import reader
from reelscribe.backends.db.enums import EventKind, JobStatus
from reelscribe.backends.db.schema import JobEventRow, JobRow
from reelscribe.backends.db.types import seconds_since


@dataclass(frozen=True, slots=True)
class Activity:
    """The jobs by status now, and what happened since a moment."""

    counts: dict[JobStatus, int]
    #: The data of every pipeline step that finished since then.
    steps: list[dict[str, Any]]
    #: ``(started_at, run_after)`` of every claim since then.
    claims: list[tuple[datetime | None, datetime | None]]


async def activity(engine: AsyncEngine, since: datetime) -> Activity:
    async with reader(engine).connect() as conn:
        counts = dict(
            (await conn.execute(select(JobRow.status, func.count()).group_by(JobRow.status))).all()
        )
        steps = (
            await conn.execute(
                select(JobEventRow.data).where(
                    JobEventRow.kind == EventKind.STEP_FINISH, JobEventRow.at >= since
                )
            )
        ).scalars()
        claims = (
            await conn.execute(
                select(JobRow.started_at, JobRow.run_after).where(JobRow.started_at >= since)
            )
        ).all()
        return Activity(counts, list(steps), [(started, due) for started, due in claims])


async def overdue(engine: AsyncEngine, seconds: float) -> int:
    """How many jobs have been queued and due for over ``seconds``."""
    stmt = (
        select(func.count())
        .select_from(JobRow)
        .where(JobRow.status == JobStatus.QUEUED, seconds_since(JobRow.run_after) > seconds)
    )
    async with reader(engine).connect() as conn:
        return int((await conn.execute(stmt)).scalar_one())


async def ping(engine: AsyncEngine) -> None:
    """One round trip to the database; raises when it cannot be reached."""
    async with engine.connect() as conn:
        await conn.execute(text("SELECT 1"))
