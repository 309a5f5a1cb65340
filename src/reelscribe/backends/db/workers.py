"""The ``workers`` table: each worker process's heartbeat (see :class:`WorkerRow`).

Workers :func:`publish` every few seconds; ``/readyz`` and ``/metrics`` read
:func:`live_workers`. Ages are computed by the database (its clock, not a host's).
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from reelscribe.backends.db.engine import reader
from reelscribe.backends.db.schema import WorkerRow
from reelscribe.backends.db.types import seconds_since, utc_after, utcnow

W = WorkerRow


@dataclass(frozen=True, slots=True)
class WorkerBeat:
    """What a worker tells about itself at each heartbeat."""

    id: str
    host: str
    pid: int
    slots: int
    busy: int
    #: Seconds since a slot last asked the queue for a job (None: never).
    claim_age: float | None
    claim_failing: bool


@dataclass(frozen=True, slots=True)
class WorkerState:
    id: str
    host: str
    pid: int
    slots: int
    busy: int
    #: Seconds since its last heartbeat and since its last claim attempt.
    seen_age: float
    claim_age: float | None
    claim_failing: bool

    def healthy(self, stale_seconds: float) -> bool:
        """Heartbeating, and either taking jobs (a recent, successful claim attempt) or
        busy in every slot (a long job does not ask for another)."""
        if self.seen_age > stale_seconds or self.claim_failing:
            return False
        if self.busy >= self.slots:
            return True
        return self.claim_age is not None and self.claim_age <= stale_seconds


async def publish(engine: AsyncEngine, beat: WorkerBeat, *, prune_after: float = 3600.0) -> None:
    """Writes the worker's row (and deletes rows of workers gone for ``prune_after``)."""
    claim_at = None if beat.claim_age is None else utc_after(-beat.claim_age)
    values = {
        "host": beat.host, "pid": beat.pid, "slots": beat.slots, "busy": beat.busy,
        "seen_at": utcnow(), "claim_at": claim_at, "claim_failing": beat.claim_failing,
    }  # fmt: skip
    async with engine.begin() as conn:
        changed = await conn.execute(update(W).where(W.id == beat.id).values(values))
        if changed.rowcount == 0:
            await conn.execute(insert(W).values(id=beat.id, started_at=utcnow(), **values))
        await conn.execute(delete(W).where(seconds_since(W.seen_at) > prune_after))


async def forget(engine: AsyncEngine, worker_id: str) -> None:
    """Removes a worker's row (at a clean shutdown)."""
    async with engine.begin() as conn:
        await conn.execute(delete(W).where(W.id == worker_id))


async def live_workers(engine: AsyncEngine, *, within: float) -> list[WorkerState]:
    """Workers seen in the last ``within`` seconds."""
    stmt = select(
        W.id, W.host, W.pid, W.slots, W.busy, seconds_since(W.seen_at), seconds_since(W.claim_at),
        W.claim_failing,
    ).where(seconds_since(W.seen_at) <= within).order_by(W.id)  # fmt: skip
    async with reader(engine).connect() as conn:
        rows = (await conn.execute(stmt)).all()
    return [
        WorkerState(
            id=row[0], host=row[1], pid=row[2], slots=row[3], busy=row[4],
            seen_age=max(0.0, float(row[5])),
            claim_age=None if row[6] is None else max(0.0, float(row[6])),
            claim_failing=bool(row[7]),
        )
        for row in rows
    ]  # fmt: skip
