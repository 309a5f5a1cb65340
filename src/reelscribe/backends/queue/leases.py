"""The jobs-table half of every queue: claims, fenced writes and their events.

Both queue backends keep state here, so a job behaves the same whichever one delivers
it. Two statement shapes, the same on SQLite and PostgreSQL:

* a claim is ONE ``UPDATE … WHERE id = (SELECT … FOR UPDATE SKIP LOCKED LIMIT 1)
  RETURNING …``; SQLite renders no ``FOR UPDATE`` and needs none, since its write
  transactions begin IMMEDIATE and so run one at a time;
* a write that depends on the row's current state (fail, release, cancel, enqueue,
  reap) first locks the row with ``SELECT … FOR UPDATE`` (fenced on the lease token
  for the lease holder's calls), asks the job rules
  (:class:`~reelscribe.backends.queue.base.JobRules`, decided in the service layer)
  for an :class:`~reelscribe.backends.queue.base.Outcome`, and writes it as it is.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import (
    Float,
    FromClause,
    Integer,
    String,
    Table,
    and_,
    bindparam,
    case,
    func,
    insert,
    literal,
    null,
    or_,
    select,
    update,
)
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlalchemy.sql import ColumnElement
from sqlalchemy.sql.dml import ReturningUpdate

from reelscribe.backends.db.batching import GroupCommit
from reelscribe.backends.db.engine import reader
from reelscribe.backends.db.enums import EventKind, JobStatus, Priority
from reelscribe.backends.db.leasing import lease_due
from reelscribe.backends.db.schema import JobEventRow, JobRow
from reelscribe.backends.db.types import seconds_since, utc_after, utcnow
from reelscribe.backends.queue.base import (
    KEEP,
    Backoff,
    Claim,
    JobNotFoundError,
    JobRules,
    LeaseLost,
    LeaseState,
    Outcome,
)

J = JobRow
T = cast(Table, JobRow.__table__)
EVENTS = cast(Table, JobEventRow.__table__)

#: Set on a claim that took over an expired lease. The claim's single UPDATE sees the
#: row as it was (``SET`` reads the old values), and this message is how the
#: RETURNING clause tells a reclaim from a fresh claim.
RECLAIMED_MESSAGE = "resumed: the previous worker stopped responding"


@dataclass(frozen=True, slots=True)
class JobState:
    """What a backend needs to know about a job it could not claim."""

    status: JobStatus
    priority: Priority
    #: Seconds until ``run_after`` on the database's clock (0 when due).
    due_in: float
    #: Processing under a lease that has not expired.
    leased: bool

    @property
    def due(self) -> bool:
        return self.due_in <= 0.0


def _claimable(table: FromClause) -> ColumnElement[bool]:
    """Queued and due, or processing under an expired lease that may run again."""
    c = table.c
    return or_(
        and_(c.status == JobStatus.QUEUED, c.run_after <= utcnow()),
        and_(
            c.status == JobStatus.PROCESSING,
            c.lease_expires_at < utcnow(),
            c.attempts < c.max_attempts,
            c.cancel_requested.is_(False),
        ),
    )


# The hot statements are built once, with bound parameters (p_*: the names of the
# columns themselves are reserved in an UPDATE); building and cache-keying a
# statement per call cost more than running it.
_P_JOB = bindparam("p_job", type_=String())
_P_TOKEN = bindparam("p_token", type_=Integer())
_P_WORKER = bindparam("p_worker", type_=String())
_P_LEASE = bindparam("p_lease", type_=Float())
_FENCE = and_(T.c.id == _P_JOB, T.c.lease_token == _P_TOKEN, T.c.status == JobStatus.PROCESSING)


def _fence_params(claim: Claim) -> dict[str, Any]:
    return {"p_job": claim.job_id, "p_token": claim.token}


def _fence(claim: Claim) -> ColumnElement[bool]:
    return and_(
        J.id == claim.job_id, J.lease_token == claim.token, J.status == JobStatus.PROCESSING
    )


#: What a claim sets: the lease, a new fencing token, one more attempt.
_CLAIMED: dict[str, Any] = {
    "status": JobStatus.PROCESSING,
    "lease_owner": _P_WORKER,
    "lease_token": T.c.lease_token + 1,
    "attempts": T.c.attempts + 1,
    "lease_expires_at": utc_after(_P_LEASE),
    "heartbeat_at": utcnow(),
    "started_at": utcnow(),
    "status_message": case(
        (T.c.status == JobStatus.PROCESSING, literal(RECLAIMED_MESSAGE)), else_=null()
    ),
}
_CLAIM_RETURNS = (
    T.c.id,
    T.c.lease_token,
    T.c.attempts,
    T.c.max_attempts,
    T.c.priority,
    T.c.lease_expires_at,
    T.c.spec,
    T.c.status_message,
)


# Columns cleared whenever a job leaves ``processing``.
_UNLEASED: dict[str, Any] = {"lease_owner": None, "lease_expires_at": None}


def _end_attempt() -> dict[str, Any]:
    """Values for a job leaving ``processing``: drop the lease, add the time spent."""
    return _UNLEASED | {
        "processing_seconds": T.c.processing_seconds
        + func.coalesce(seconds_since(T.c.started_at), 0.0)
    }


def _finish(status: JobStatus) -> dict[str, Any]:
    return {"status": status, "finished_at": utcnow()}


def _requeue(after: float) -> dict[str, Any]:
    return {"status": JobStatus.QUEUED, "run_after": utc_after(after)}


#: The columns a rule decides from, in :class:`LeaseState`'s order.
_LOCKED = (J.status, J.priority, J.attempts, J.max_attempts, J.cancel_requested)

Decide = Callable[[LeaseState], Outcome]
MaybeDecide = Callable[[LeaseState], Outcome | None]


def _values(old: JobStatus, outcome: Outcome) -> dict[str, Any]:
    """The column values that write ``outcome`` over a row in status ``old``."""
    values: dict[str, Any] = {} if outcome.status is old else {"status": outcome.status}
    if old is JobStatus.PROCESSING and outcome.status is not JobStatus.PROCESSING:
        values |= _end_attempt()
    if outcome.status.is_terminal:
        values |= _finish(outcome.status)
    elif outcome.status is JobStatus.QUEUED and outcome.retry_in is not None:
        values |= _requeue(after=outcome.retry_in)
    if outcome.message is not KEEP:
        values["status_message"] = outcome.message
    if outcome.error is not None:
        values["error_code"], values["error_message"] = outcome.error
    if outcome.attempts == "uncount":
        values["attempts"] = J.attempts - 1
    elif outcome.attempts == "restart":
        values |= {"attempts": 0, "cancel_requested": False, "finished_at": None}
    if outcome.cancel_requested is not None:
        values["cancel_requested"] = outcome.cancel_requested
    if outcome.priority is not None:
        values["priority"] = outcome.priority
    return values


def _complete_statement(
    expires_at: ColumnElement[Any], status: JobStatus = JobStatus.DONE
) -> ReturningUpdate[Any]:
    values = _end_attempt() | _finish(status)
    values |= {
        "result": bindparam("p_result", type_=T.c.result.type),
        "progress": 100.0,
        "status_message": None,
        "expires_at": expires_at,
    }
    if status is JobStatus.BLOCKED:
        values |= {"error_code": "content_blocked",
                   "error_message": "blocked by content moderation"}  # fmt: skip
    return update(T).where(_FENCE).values(values).returning(T.c.id)


_RETAIN = utc_after(bindparam("p_retain", type_=Float()))
#: By (final status, kept for a while): done, or blocked by content moderation.
_COMPLETE = {
    (status, retained): _complete_statement(_RETAIN if retained else null(), status)
    for status in (JobStatus.DONE, JobStatus.BLOCKED)
    for retained in (False, True)
}

#: ONE statement: pick the first claimable row (skipping rows another transaction has
#: locked) and lease it.
_CLAIM_NEXT = lease_due(
    T,
    due=_claimable,
    order=lambda t: (t.c.priority, t.c.created_at, t.c.id),
    limit=1,
    values=_CLAIMED,
    returning=_CLAIM_RETURNS,
)
_CLAIM_JOB = (
    update(T).where(T.c.id == _P_JOB, _claimable(T)).values(_CLAIMED).returning(*_CLAIM_RETURNS)
)
_HEARTBEAT = (
    update(T)
    .where(_FENCE)
    .values(lease_expires_at=utc_after(_P_LEASE), heartbeat_at=utcnow())
    .returning(T.c.cancel_requested)
)
_EVENT = insert(EVENTS).values(
    job_id=bindparam("p_event_job", type_=String()),
    kind=EventKind.TRANSITION,
    data=bindparam("p_data", type_=EVENTS.c.data.type),
)


class LeaseTable:
    """Queue operations on the jobs table. ``notify_channel``: PostgreSQL channel told
    (in the same transaction) when a job becomes claimable now."""

    def __init__(self, engine: AsyncEngine, notify_channel: str | None = None) -> None:
        self.engine = engine
        self._reader = reader(engine)
        self.notify_channel = notify_channel if engine.dialect.name == "postgresql" else None
        # Notifications for jobs submitted together go out in one transaction.
        self._notifies: GroupCommit[Priority, None] = GroupCommit(self._notify_batch)

    # --- claims -----------------------------------------------------------------

    async def claim_next(self, worker_id: str, lease_seconds: float) -> Claim | None:
        """Claims the first claimable job in priority, then age, order."""
        return await self._claim(_CLAIM_NEXT, {}, worker_id, lease_seconds)

    async def claim_job(self, job_id: str, worker_id: str, lease_seconds: float) -> Claim | None:
        """Claims this job if it is claimable (the Redis queue delivers ids)."""
        return await self._claim(_CLAIM_JOB, {"p_job": job_id}, worker_id, lease_seconds)

    async def _claim(
        self,
        stmt: ReturningUpdate[Any],
        params: dict[str, Any],
        worker_id: str,
        lease_seconds: float,
    ) -> Claim | None:
        params = params | {"p_worker": worker_id, "p_lease": float(lease_seconds)}
        async with self.engine.begin() as conn:
            row = (await conn.execute(stmt, params)).one_or_none()
            if row is None:
                return None
            reclaimed = row.status_message == RECLAIMED_MESSAGE
            await self._transition(
                conn,
                row.id,
                JobStatus.PROCESSING if reclaimed else JobStatus.QUEUED,
                JobStatus.PROCESSING,
                worker=worker_id,
                attempt=row.attempts,
                token=row.lease_token,
            )
        return Claim(
            job_id=row.id,
            worker_id=worker_id,
            token=row.lease_token,
            attempt=row.attempts,
            max_attempts=row.max_attempts,
            priority=row.priority,
            lease_seconds=lease_seconds,
            lease_expires_at=row.lease_expires_at,
            spec=row.spec,
            reclaimed=reclaimed,
        )

    # --- fenced writes from the lease holder ---------------------------------------

    async def heartbeat(self, claim: Claim) -> bool:
        params = _fence_params(claim) | {"p_lease": float(claim.lease_seconds)}
        async with self.engine.begin() as conn:
            cancel_requested = (await conn.execute(_HEARTBEAT, params)).scalar_one_or_none()
        if cancel_requested is None:
            raise _lost(claim)
        return bool(cancel_requested)

    async def complete(
        self,
        claim: Claim,
        result: dict[str, Any],
        retain_seconds: float | None,
        status: JobStatus = JobStatus.DONE,
    ) -> None:
        """``processing → done`` (or ``→ blocked``: ended by content moderation)."""
        if status not in (JobStatus.DONE, JobStatus.BLOCKED):
            raise ValueError(f"a job cannot complete as {status}")
        params = _fence_params(claim) | {"p_result": result}
        stmt = _COMPLETE[status, retain_seconds is not None]
        if retain_seconds is not None:
            params["p_retain"] = float(retain_seconds)
        async with self.engine.begin() as conn:
            done = await conn.execute(stmt, params)
            if done.one_or_none() is None:
                raise _lost(claim)
            await self._transition(
                conn, claim.job_id, JobStatus.PROCESSING, status, attempt=claim.attempt
            )

    async def settle(self, claim: Claim, outcome: Outcome) -> None:
        """Writes ``outcome`` for the lease holder, fenced on its token (no lock: the
        outcome does not depend on the row)."""
        values = _values(JobStatus.PROCESSING, outcome)
        async with self.engine.begin() as conn:
            done = await conn.execute(update(J).where(_fence(claim)).values(values).returning(J.id))
            if done.one_or_none() is None:
                raise _lost(claim)
            await self._transition(
                conn, claim.job_id, JobStatus.PROCESSING, outcome.status, **outcome.event
            )

    async def decide(self, claim: Claim, rules: Decide) -> Outcome:
        """Locks the lease holder's row, asks ``rules`` and writes their outcome
        (waking workers when it makes the job claimable now)."""
        async with self.engine.begin() as conn:
            state = await self._lock_lease(conn, claim)
            outcome = rules(state)
            await self._apply(conn, claim.job_id, state, outcome)
        return outcome

    # --- requests about any job -------------------------------------------------

    async def request(self, job_id: str, rules: MaybeDecide) -> JobState:
        """Locks any job's row, asks ``rules`` and writes their outcome, if any.
        Returns the job's state after it. Raises :class:`JobNotFoundError`."""
        async with self.engine.begin() as conn:
            state = await self._lock(conn, job_id)
            outcome = rules(state)
            if outcome is not None:
                await self._apply(conn, job_id, state, outcome, notify=False)
            after = await self._state(conn, job_id)
            if after.status is JobStatus.QUEUED and after.due:
                await self._notify(conn, after.priority)
        return after

    async def state(self, job_id: str) -> JobState | None:
        async with self._reader.connect() as conn:
            try:
                return await self._state(conn, job_id)
            except JobNotFoundError:
                return None

    async def reap(self, rules: MaybeDecide) -> int:
        """Asks ``rules`` about every job whose lease expired and writes their outcomes.
        Returns how many jobs changed."""
        expired = (
            select(J.id, *_LOCKED)
            .where(J.status == JobStatus.PROCESSING, J.lease_expires_at < utcnow())
            .with_for_update(skip_locked=True)  # a row being claimed is the claim's
        )
        count = 0
        async with self.engine.begin() as conn:
            for row in (await conn.execute(expired)).all():
                state = LeaseState(*row[1:])
                outcome = rules(state)
                if outcome is not None:
                    await self._apply(conn, row.id, state, outcome, notify=False)
                    count += 1
        return count

    async def next_due(self) -> float | None:
        """Seconds until a job may become claimable: the next retry is due or a lease
        that may be taken over expires (None: no such job)."""
        soonest = select(
            func.min(case((J.status == JobStatus.QUEUED, J.run_after), else_=J.lease_expires_at))
        ).where(
            or_(
                J.status == JobStatus.QUEUED,
                and_(
                    J.status == JobStatus.PROCESSING,
                    J.attempts < J.max_attempts,
                    J.cancel_requested.is_(False),
                ),
            )
        )
        async with self._reader.connect() as conn:
            stmt = select(seconds_since(soonest.scalar_subquery()))
            since = (await conn.execute(stmt)).scalar_one_or_none()
        return None if since is None else max(0.0, -float(since))

    # --- helpers ----------------------------------------------------------------

    async def _lock(self, conn: AsyncConnection, job_id: str) -> LeaseState:
        stmt = select(*_LOCKED).where(J.id == job_id).with_for_update()
        row = (await conn.execute(stmt)).one_or_none()
        if row is None:
            raise JobNotFoundError(f"no job {job_id}")
        return LeaseState(*row)

    async def _lock_lease(self, conn: AsyncConnection, claim: Claim) -> LeaseState:
        stmt = select(*_LOCKED).where(_fence(claim)).with_for_update()
        row = (await conn.execute(stmt)).one_or_none()
        if row is None:
            raise _lost(claim)
        return LeaseState(*row)

    async def _apply(
        self,
        conn: AsyncConnection,
        job_id: str,
        state: LeaseState,
        outcome: Outcome,
        *,
        notify: bool = True,
    ) -> None:
        await conn.execute(update(J).where(J.id == job_id).values(_values(state.status, outcome)))
        if outcome.status is not state.status:
            await self._transition(conn, job_id, state.status, outcome.status, **outcome.event)
        if notify and outcome.status is JobStatus.QUEUED and not outcome.retry_in:
            await self._notify(conn, outcome.priority or state.priority)

    async def _state(self, conn: AsyncConnection, job_id: str) -> JobState:
        stmt = select(
            J.status,
            J.priority,
            seconds_since(J.run_after).label("since"),
            and_(J.status == JobStatus.PROCESSING, J.lease_expires_at >= utcnow()).label("leased"),
        ).where(J.id == job_id)
        row = (await conn.execute(stmt)).one_or_none()
        if row is None:
            raise JobNotFoundError(f"no job {job_id}")
        return JobState(row.status, row.priority, max(0.0, -row.since), bool(row.leased))

    async def notify(self, priority: Priority) -> None:
        """Wakes listening workers (PostgreSQL NOTIFY; nothing to do on SQLite)."""
        if self.notify_channel is not None:
            await self._notifies(priority)

    async def _notify_batch(self, priorities: Sequence[Priority]) -> Sequence[None]:
        async with self.engine.begin() as conn:
            for priority in sorted(set(priorities), key=lambda p: p.rank):
                await self._notify(conn, priority)
        return [None] * len(priorities)

    async def _notify(self, conn: AsyncConnection, priority: Priority) -> None:
        if self.notify_channel is not None:
            await conn.execute(select(func.pg_notify(self.notify_channel, priority.value)))

    @staticmethod
    async def _transition(
        conn: AsyncConnection, job_id: str, old: JobStatus, new: JobStatus, **data: Any
    ) -> None:
        payload = {"from": old.value, "to": new.value} | data
        await conn.execute(_EVENT, {"p_event_job": job_id, "p_data": payload})


def default_rules(backoff: Backoff | None) -> JobRules:
    """The service's :class:`~reelscribe.service.manager.JobManager`, for a queue
    opened without rules of its own (imported late: the rules sit above the backends)."""
    from reelscribe.service.manager import JobManager

    return JobManager(backoff)


def _lost(claim: Claim) -> LeaseLost:
    return LeaseLost(
        f"job {claim.job_id}: the lease of {claim.worker_id} (token {claim.token}) is no "
        "longer current; another worker took the job over or it ended"
    )
