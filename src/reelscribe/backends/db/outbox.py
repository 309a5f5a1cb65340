"""``OutboxStore``: the webhook outbox (``webhook_deliveries``, ``webhook_attempts``)
and the jobs-table query that fills it. Statements only: what an attempt's outcome
does to its delivery is decided by :mod:`reelscribe.webhooks.outbox`."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from enum import StrEnum
from typing import Any, cast

from sqlalchemy import (
    FromClause,
    Row,
    Table,
    and_,
    case,
    exists,
    func,
    insert,
    literal,
    or_,
    select,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.sql import ColumnElement
from sqlalchemy.sql.dml import Insert

from reelscribe.backends.db.engine import reader
from reelscribe.backends.db.enums import JobStatus
from reelscribe.backends.db.leasing import lease_due
from reelscribe.backends.db.schema import JobRow, WebhookAttemptRow, WebhookDeliveryRow
from reelscribe.backends.db.types import utc_after, utcnow

J = JobRow
D = cast(Table, WebhookDeliveryRow.__table__)
A = cast(Table, WebhookAttemptRow.__table__)


class DeliveryState(StrEnum):
    PENDING = "pending"
    DELIVERED = "delivered"
    FAILED = "failed"


@dataclasses.dataclass(frozen=True, slots=True)
class Leased:
    id: str
    event: str
    url: str
    payload: dict[str, Any]
    #: The delivery's attempt counter after this lease: the fence for writing back.
    attempt: int
    #: When the lease was taken (database clock): the attempt's time.
    at: datetime


@dataclasses.dataclass(frozen=True, slots=True)
class Settle:
    """What an attempt does to its delivery: ``state`` (None: stays pending, due again
    after ``retry_in`` seconds). ``final``: written even if the lease ran out."""

    state: DeliveryState | None
    retry_in: float = 0.0
    final: bool = False


def _due(table: FromClause) -> ColumnElement[bool]:
    """Pending, due, and not leased by a dispatcher (database clock)."""
    c = table.c
    return and_(
        c.state == DeliveryState.PENDING.value,
        c.next_attempt_at <= utcnow(),
        or_(c.lease_expires_at.is_(None), c.lease_expires_at < utcnow()),
    )


def _insert_new(dialect: str) -> Insert:
    """INSERT into the outbox that skips job ends already there, so sweeps
    racing each other need no lock: the unique index decides."""
    index = ["job_id", "event", "job_token"]
    if dialect == "postgresql":
        return postgresql.insert(D).on_conflict_do_nothing(index_elements=index)
    if dialect == "sqlite":
        return sqlite.insert(D).on_conflict_do_nothing(index_elements=index)
    raise NotImplementedError(f"webhook outbox on {dialect}")


class OutboxStore:
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self._reader = reader(engine)

    async def ended_jobs(
        self, events: Mapping[JobStatus, str], *, within: float | None, limit: int
    ) -> Sequence[Row[Any]]:
        """Up to ``limit`` jobs in one of ``events``' statuses, with a ``webhook_url``
        and no outbox row for that end yet; only those that finished in the last
        ``within`` seconds (or have no ``finished_at``) unless None. Each row carries
        the database's ``now``."""
        event = case(*((J.status == status, literal(name)) for status, name in events.items()))
        wanted = and_(
            J.status.in_(list(events)),
            J.spec["webhook_url"].as_string().is_not(None),
            ~exists().where(D.c.job_id == J.id, D.c.event == event, D.c.job_token == J.lease_token),
        )
        if within is not None:
            wanted = and_(wanted, or_(J.finished_at.is_(None), J.finished_at >= utc_after(-within)))
        stmt = (
            select(
                J.id,
                J.status,
                J.spec,
                J.result,
                J.error_code,
                J.error_message,
                J.created_at,
                J.finished_at,
                J.lease_token,
                utcnow().label("now"),
            )
            .where(wanted)
            .order_by(J.id)
            .limit(limit)
        )
        async with self._reader.connect() as conn:
            return (await conn.execute(stmt)).all()

    async def add(self, rows: list[dict[str, Any]]) -> int:
        """Inserts deliveries, skipping job ends already there; returns how many went in."""
        stmt = _insert_new(self.engine.dialect.name).returning(D.c.id)
        async with self.engine.begin() as conn:
            return len((await conn.execute(stmt, rows)).all())

    async def lease(self, limit: int, lease_seconds: float) -> list[Leased]:
        """Leases up to ``limit`` due deliveries, oldest due first (one more attempt each)."""
        stmt = lease_due(
            D,
            due=_due,
            order=lambda t: (t.c.next_attempt_at, t.c.id),
            limit=limit,
            values={"lease_expires_at": utc_after(lease_seconds), "attempts": D.c.attempts + 1},
            returning=(D.c.id, D.c.event, D.c.url, D.c.payload, D.c.attempts, utcnow().label("at")),
        )
        async with self.engine.begin() as conn:
            rows = (await conn.execute(stmt)).all()
        return [Leased(r.id, r.event, r.url, r.payload, r.attempts, r.at) for r in rows]

    async def record(
        self,
        delivery: Leased,
        *,
        status_code: int | None,
        error: str | None,
        duration_ms: float,
        decide: Callable[[datetime | None], Settle],
    ) -> Settle | None:
        """Keeps the attempt, asks ``decide`` (given the first attempt's time) what it
        does to the delivery and writes that; None when another dispatcher took the
        delivery over meanwhile (its write stands)."""
        pending = and_(D.c.id == delivery.id, D.c.state == DeliveryState.PENDING.value)
        async with self.engine.begin() as conn:
            # The attempt happened whoever holds the lease now: always keep it.
            await conn.execute(
                insert(A).values(
                    delivery_id=delivery.id,
                    at=delivery.at,
                    status_code=status_code,
                    error=error,
                    duration_ms=duration_ms,
                )
            )
            first = select(func.min(A.c.at)).where(A.c.delivery_id == delivery.id)
            settle = decide((await conn.execute(first)).scalar_one_or_none())
            # Still ours: no other dispatcher leased the row after our lease ran out.
            where = pending if settle.final else and_(pending, D.c.attempts == delivery.attempt)
            values: dict[str, Any] = {"lease_expires_at": None}
            if settle.state is DeliveryState.DELIVERED:
                values |= {"state": settle.state.value, "delivered_at": utcnow()}
            elif settle.state is not None:
                values |= {"state": settle.state.value}
            else:
                values |= {"next_attempt_at": utc_after(settle.retry_in)}
            changed = (await conn.execute(update(D).where(where).values(values))).rowcount
        return settle if changed else None

    async def for_job(self, job_id: str) -> tuple[Sequence[Row[Any]], Sequence[Row[Any]]]:
        """A job's deliveries and their attempts, each oldest first."""
        deliveries_stmt = select(D).where(D.c.job_id == job_id).order_by(D.c.created_at, D.c.id)
        attempts_stmt = (
            select(A)
            .join(D, D.c.id == A.c.delivery_id)
            .where(D.c.job_id == job_id)
            .order_by(A.c.id)
        )
        async with self._reader.connect() as conn:
            deliveries = (await conn.execute(deliveries_stmt)).all()
            attempts = (await conn.execute(attempts_stmt)).all()
        return deliveries, attempts
