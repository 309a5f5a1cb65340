"""Creating and reading job rows. Queue operations on the rows live in
:mod:`reelscribe.backends.queue`; this module never changes a job's lease."""

from __future__ import annotations

import os
import threading
import time
import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, insert, null, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from reelscribe.backends.db.batching import GroupCommit
from reelscribe.backends.db.engine import reader
from reelscribe.backends.db.enums import EventKind, JobStatus, Priority
from reelscribe.backends.db.schema import (
    JobEventRow,
    JobRow,
    WebhookAttemptRow,
    WebhookDeliveryRow,
)
from reelscribe.backends.db.types import utcnow

_uuid_lock = threading.Lock()
_uuid_last = (0, 0)


def new_job_id() -> str:
    """A UUIDv7 (RFC 9562): time-ordered, so ids created one after another sort in
    creation order; the claim query breaks ``created_at`` ties (SQLite keeps
    milliseconds) with the id. Within one millisecond a counter keeps the order."""
    global _uuid_last
    with _uuid_lock:
        millis = time.time_ns() // 1_000_000
        last_millis, counter = _uuid_last
        if millis <= last_millis:
            millis, counter = last_millis, counter + 1
            if counter > 0xFFF:  # 4,096 ids in one millisecond: borrow the next one
                millis, counter = millis + 1, 0
        else:
            counter = int.from_bytes(os.urandom(2)) & 0x3FF  # room to count up
        _uuid_last = (millis, counter)
    rand = int.from_bytes(os.urandom(8)) & ((1 << 62) - 1)
    value = (millis & ((1 << 48) - 1)) << 80
    value |= 0x7 << 76 | (counter & 0xFFF) << 64  # version 7, 12-bit counter (rand_a)
    value |= 0b10 << 62 | rand  # RFC 4122 variant, 62 random bits (rand_b)
    return str(uuid.UUID(int=value))


class JobStore:
    """Job rows over one engine (shared per process)."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self._reader = reader(engine)
        # Concurrent creates share a transaction (see GroupCommit).
        self._inserts: GroupCommit[dict[str, Any], tuple[JobRow, bool]] = GroupCommit(
            self._insert_batch
        )

    async def create(
        self,
        spec: dict[str, Any],
        *,
        priority: Priority = Priority.NORMAL,
        owner_key_id: str | None = None,
        idempotency_key: str | None = None,
        max_attempts: int = 3,
        job_id: str | None = None,
        audio_reserved_seconds: float | None = None,
    ) -> tuple[JobRow, bool]:
        """Inserts a ``queued`` job (and its first event) and returns it with True; or,
        when the owner already has a job under ``idempotency_key``, returns that job
        with False. Hand the id to ``Queue.submitted`` afterwards to wake a worker.

        Concurrent calls are written in one transaction (a group commit)."""
        row = {
            "id": job_id or new_job_id(),
            "spec": spec,
            "status": JobStatus.QUEUED,
            "priority": priority,
            "max_attempts": max_attempts,
            "owner_key_id": owner_key_id,
            "idempotency_key": idempotency_key,
            "audio_reserved_seconds": audio_reserved_seconds,
        }
        return await self._inserts(row)

    async def _insert_batch(
        self, rows: Sequence[dict[str, Any]]
    ) -> Sequence[tuple[JobRow, bool] | BaseException]:
        """Inserts the jobs of one group commit and their first events in one
        transaction. A unique-key conflict anywhere fails the whole batch; then each
        job is inserted on its own so only the conflicting ones see it."""
        try:
            async with self.engine.begin() as conn:
                inserted = await conn.execute(
                    insert(JobRow).returning(
                        *JobRow.__table__.columns, sort_by_parameter_order=True
                    ),
                    list(rows),
                )
                created = [JobRow(**values) for values in inserted.mappings().all()]
                await conn.execute(
                    insert(JobEventRow),
                    [
                        {
                            "job_id": row["id"],
                            "kind": EventKind.TRANSITION,
                            "data": {"from": None, "to": JobStatus.QUEUED.value},
                        }
                        for row in rows
                    ],
                )
        except IntegrityError as exc:
            if len(rows) > 1:
                return [await self._insert_alone(row) for row in rows]
            # The unique (owner, key) index is the arbiter: of two concurrent requests
            # one inserts, the other lands here and returns the winner's job.
            existing = await self.find_by_idempotency_key(
                rows[0]["owner_key_id"], rows[0]["idempotency_key"]
            )
            return [exc if existing is None else (existing, False)]
        # Built from RETURNING: a second read of the row would cost a round trip.
        return [(row, True) for row in created]

    async def _insert_alone(self, row: dict[str, Any]) -> tuple[JobRow, bool] | BaseException:
        try:
            return (await self._insert_batch([row]))[0]
        except Exception as exc:  # only this caller's request fails
            return exc

    async def get(self, job_id: str) -> JobRow | None:
        async with self._session() as session:
            return await session.get(JobRow, job_id)

    async def find_by_idempotency_key(
        self, owner_key_id: str | None, idempotency_key: str | None
    ) -> JobRow | None:
        if idempotency_key is None:
            return None
        stmt = select(JobRow).where(
            func.coalesce(JobRow.owner_key_id, "") == (owner_key_id or ""),
            JobRow.idempotency_key == idempotency_key,
        )
        async with self._session() as session:
            return (await session.execute(stmt)).scalar_one_or_none()

    async def events(self, job_id: str) -> Sequence[JobEventRow]:
        """The job's history, oldest first."""
        stmt = select(JobEventRow).where(JobEventRow.job_id == job_id).order_by(JobEventRow.id)
        async with self._session() as session:
            return (await session.execute(stmt)).scalars().all()

    async def expire_done(self) -> Sequence[str]:
        """``done → expired`` for jobs past ``expires_at``; returns their ids so the
        caller can delete their outputs."""
        stmt = (
            update(JobRow)
            .where(JobRow.status == JobStatus.DONE, JobRow.expires_at < utcnow())
            .values(status=JobStatus.EXPIRED)
            .returning(JobRow.id)
        )
        async with self.engine.begin() as conn:
            ids = (await conn.execute(stmt)).scalars().all()
            if ids:
                await conn.execute(
                    insert(JobEventRow),
                    [
                        {
                            "job_id": job_id,
                            "kind": EventKind.TRANSITION,
                            "data": {"from": "done", "to": "expired"},
                        }
                        for job_id in ids
                    ],
                )
        return ids

    async def delete_ended(
        self, statuses: Sequence[JobStatus], before: datetime, *, limit: int = 1000
    ) -> int:
        """Deletes up to ``limit`` jobs in ``statuses`` that finished before ``before``
        (expired ones only once their results are gone), with their events and webhook
        deliveries, in one short transaction; returns how many jobs went.

        Batches keep each transaction's locks and WAL small whatever the backlog: the
        jobs are found through ``ix_jobs_status_finished_at`` and their rows in the other
        tables through their ``job_id`` indexes, so a batch costs the same at a thousand
        jobs as at ten million. Call it until it returns less than ``limit``."""
        pick = (
            select(JobRow.id)
            .where(
                JobRow.status.in_(list(statuses)),
                JobRow.finished_at < before,
                or_(JobRow.status != JobStatus.EXPIRED, JobRow.result.is_(None)),
            )
            .limit(limit)
            # PostgreSQL: a job being retried right now is left for the next sweep, and
            # a retry that comes during the batch waits and then finds it gone.
            .with_for_update(skip_locked=True)
        )
        async with self.engine.begin() as conn:
            ids = list((await conn.execute(pick)).scalars().all())
            if not ids:
                return 0
            deliveries = select(WebhookDeliveryRow.id).where(WebhookDeliveryRow.job_id.in_(ids))
            # Explicit, not only ON DELETE CASCADE: one statement per table, each on
            # an index, rather than a cascade trigger per row.
            await conn.execute(
                delete(WebhookAttemptRow).where(WebhookAttemptRow.delivery_id.in_(deliveries))
            )
            await conn.execute(delete(WebhookDeliveryRow).where(WebhookDeliveryRow.job_id.in_(ids)))
            await conn.execute(delete(JobEventRow).where(JobEventRow.job_id.in_(ids)))
            await conn.execute(delete(JobRow).where(JobRow.id.in_(ids)))
        return len(ids)

    async def expired_with_results(self, limit: int) -> Sequence[str]:
        """Ids of up to ``limit`` expired jobs that still name their result files."""
        stmt = (
            select(JobRow.id)
            .where(JobRow.status == JobStatus.EXPIRED, JobRow.result.is_not(None))
            .limit(limit)
        )
        async with self.engine.connect() as conn:
            return (await conn.execute(stmt)).scalars().all()

    async def drop_result(self, job_id: str) -> None:
        """Forgets the job's result (its files are gone)."""
        async with self.engine.begin() as conn:
            # SQL NULL, not JSON null: expired_with_results looks for rows with a result.
            await conn.execute(update(JobRow).where(JobRow.id == job_id).values(result=null()))

    async def leased(self, job_id: str, token: int) -> JobRow | None:
        """The job while it is processing under lease ``token``."""
        stmt = select(JobRow).where(
            JobRow.id == job_id, JobRow.lease_token == token, JobRow.status == JobStatus.PROCESSING
        )
        async with self._session() as session:
            found: JobRow | None = (await session.scalars(stmt)).one_or_none()
        return found

    async def outcome(self, job_id: str) -> tuple[JobStatus, dict[str, Any] | None] | None:
        """The job's status and result, without the rest of its row."""
        stmt = select(JobRow.status, JobRow.result).where(JobRow.id == job_id)
        async with self._reader.connect() as conn:
            row = (await conn.execute(stmt)).one_or_none()
        return None if row is None else (row.status, row.result)

    async def count(self, status: JobStatus) -> int:
        stmt = select(func.count()).select_from(JobRow).where(JobRow.status == status)
        async with self._reader.connect() as conn:
            return int((await conn.execute(stmt)).scalar_one())

    async def page(
        self,
        *,
        owner_key_id: str | None,
        any_owner: bool,
        status: JobStatus | None,
        limit: int,
        below: str | None,
    ) -> Sequence[JobRow]:
        """Up to ``limit`` jobs, newest (highest id) first, with ids below ``below``."""
        stmt = select(JobRow).order_by(JobRow.id.desc()).limit(limit)
        if not any_owner:
            stmt = stmt.where(JobRow.owner_key_id == owner_key_id)
        if status is not None:
            stmt = stmt.where(JobRow.status == status)
        if below is not None:
            stmt = stmt.where(JobRow.id < below)
        async with self._session() as session:
            return (await session.scalars(stmt)).all()

    async def delete(self, job_id: str) -> None:
        """Deletes the job and its history."""
        async with self.engine.begin() as conn:
            # Explicit, not only ON DELETE CASCADE: SQLite honours that only with
            # foreign keys switched on for the connection.
            await conn.execute(delete(JobEventRow).where(JobEventRow.job_id == job_id))
            await conn.execute(delete(JobRow).where(JobRow.id == job_id))

    async def edit(
        self, job_id: str, *, result: dict[str, Any], spec: dict[str, Any], event: dict[str, Any]
    ) -> None:
        """Replaces a finished job's result and spec, recording ``event`` beside them."""
        async with self.engine.begin() as conn:
            await conn.execute(
                update(JobRow)
                .where(JobRow.id == job_id)
                .values(result=result, spec=spec, updated_at=utcnow())
            )
            await conn.execute(
                insert(JobEventRow).values(job_id=job_id, kind=EventKind.PROGRESS, data=event)
            )

    async def events_after(self, job_id: str, after_id: int = 0) -> Sequence[JobEventRow]:
        stmt = (
            select(JobEventRow)
            .where(JobEventRow.job_id == job_id, JobEventRow.id > after_id)
            .order_by(JobEventRow.id)
        )
        async with self._session() as session:
            return (await session.scalars(stmt)).all()

    async def recent_steps(self, limit: int) -> Sequence[dict[str, Any]]:
        """The data of the last ``limit`` finished pipeline steps, of any job."""
        stmt = (
            select(JobEventRow.data)
            .where(JobEventRow.kind == EventKind.STEP_FINISH)
            .order_by(JobEventRow.id.desc())
            .limit(limit)
        )
        async with self._reader.connect() as conn:
            return (await conn.execute(stmt)).scalars().all()

    async def count_by_status(self) -> dict[JobStatus, int]:
        stmt = select(JobRow.status, func.count()).group_by(JobRow.status)
        async with self._reader.connect() as conn:
            return {status: count for status, count in (await conn.execute(stmt)).all()}

    def _session(self) -> AsyncSession:
        # Rows are handed out after the session closes: do not expire them on commit.
        return AsyncSession(bind=self._reader, expire_on_commit=False)
