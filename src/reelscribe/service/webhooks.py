"""Webhooks: ``job.completed``, ``job.failed`` and ``job.cancelled``, POSTed to a job's
``webhook_url`` from a durable outbox (the ``webhook_deliveries`` table)::

    a job ends (any process)        jobs.status: done / failed / cancelled
         │  Dispatcher.sweep()      one outbox row per end of a job; a unique index makes
         ▼                          a second sweep, or a second dispatcher, a no-op
    pending ── deliver_due() ──►    lease due rows (database clock), POST through the
         ▲                          SSRF guard, one webhook_attempts row per attempt
         │                     ├──► 2xx: delivered
         └── backoff ◄─────────┼──  anything else: due again in 5 s, 10 s, 20 s … 10 min
                               └──► failed: still failing an hour after the first
                                    attempt, or the URL is refused by the SSRF guard

Events are found by sweeping the jobs table rather than written by whoever ends a job:
a worker may die right after committing ``done``, and the sweep still sees the job, so
no event is lost and the queue code needs no hook.

Delivery is at least once: a dispatcher that dies after the receiver answered but
before it wrote the answer down leaves its lease to expire, and the delivery is sent
again. Receivers deduplicate on ``Reelscribe-Delivery`` (the body's ``id``); signatures
and replay protection are described in :mod:`reelscribe.service.webhook_signing`.

The body::

    {"id": "<delivery id>", "type": "job.completed", "created_at": "2026-…Z",
     "data": {"job": {"id", "status", "created_at", "finished_at",
                      "error": {"code", "message"} | null,
                      "outputs": ["json", "srt"],        (names of the result's outputs)
                      "metadata": {…}}}}                 (the spec's metadata)

One delivery per end of a job: the outbox's unique index is (job, event, the job's lease
token when it ended), so sweeps never repeat one, and a failed job retried by hand that
fails again (after a new claim, a new token) sends its second ``job.failed``.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
import time
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from enum import StrEnum
from types import TracebackType
from typing import Any, Self, cast

import anyio
import httpx
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
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlalchemy.sql import ColumnElement
from sqlalchemy.sql.dml import Insert

from reelscribe import __version__
from reelscribe.backends.db.engine import reader
from reelscribe.backends.db.enums import JobStatus
from reelscribe.backends.db.schema import JobRow, WebhookAttemptRow, WebhookDeliveryRow
from reelscribe.backends.db.store import new_job_id
from reelscribe.backends.db.types import utc_after, utcnow
from reelscribe.backends.faults import Retrier
from reelscribe.backends.queue.base import Backoff
from reelscribe.errors import BlockedURLError, ReelscribeError
from reelscribe.netguard import Allowlist, URLGuard, guarded_transport
from reelscribe.service.webhook_signing import (
    HEADER_DELIVERY,
    HEADER_EVENT,
    HEADER_SIGNATURE,
    HEADER_TIMESTAMP,
    signature_header,
    verify_signature,
)

__all__ = [
    "DEFAULT_BACKOFF",
    "DEFAULT_MAX_AGE",
    "EVENTS",
    "DeliveryState",
    "Dispatcher",
    "list_deliveries",
    "retry_offsets",
    "verify_signature",
]

log = logging.getLogger(__name__)

J = JobRow
D = cast(Table, WebhookDeliveryRow.__table__)
A = cast(Table, WebhookAttemptRow.__table__)

#: The event each terminal status sends.
EVENTS: Mapping[JobStatus, str] = {
    JobStatus.DONE: "job.completed",
    JobStatus.FAILED: "job.failed",
    JobStatus.CANCELLED: "job.cancelled",
    JobStatus.BLOCKED: "job.blocked",
}


class DeliveryState(StrEnum):
    PENDING = "pending"
    DELIVERED = "delivered"
    FAILED = "failed"


#: 5 s, 10 s, 20 s … doubling up to 10 minutes, each stretched by up to 10 % so that
#: deliveries failing together (a receiver went down) do not come back together.
DEFAULT_BACKOFF = Backoff(base=5.0, factor=2.0, max_delay=600.0, jitter=0.1)
#: A delivery is given up once an attempt made this long after the first one fails.
DEFAULT_MAX_AGE = 3600.0

#: Longest stored error text per attempt.
_MAX_ERROR = 500


def retry_offsets(
    backoff: Backoff = DEFAULT_BACKOFF, max_age: float = DEFAULT_MAX_AGE
) -> list[float]:
    """Seconds after the first attempt at which each attempt of an always-failing
    delivery is made, at the shortest delays (jitter only adds). The last one is the
    first at or past ``max_age``: retries always span at least ``max_age``."""
    _check_policy(backoff, max_age)
    shortest = dataclasses.replace(backoff, jitter=0.0)
    offsets = [0.0]
    while offsets[-1] < max_age:
        offsets.append(offsets[-1] + shortest.delay(len(offsets)))
    return offsets


def _check_policy(backoff: Backoff, max_age: float) -> None:
    if backoff.base <= 0 or backoff.factor < 1 or backoff.max_delay <= 0 or max_age < 0:
        raise ValueError(f"invalid webhook retry policy: {backoff}, max_age={max_age}")


def _iso(value: datetime | None) -> str | None:
    if value is None:
        return None
    return value.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _job_data(job: Row[Any]) -> dict[str, Any]:
    """The ``data.job`` object of an event: what a receiver needs to act, nothing internal
    (storage keys stay private; the receiver fetches results through the API)."""
    spec = job.spec if isinstance(job.spec, dict) else {}
    # A job that succeeded after a failed attempt still carries that attempt's error.
    has_error = job.status is not JobStatus.DONE and (job.error_code or job.error_message)
    return {
        "id": job.id,
        "status": job.status.value,
        "created_at": _iso(job.created_at),
        "finished_at": _iso(job.finished_at),
        "error": {"code": job.error_code, "message": job.error_message} if has_error else None,
        "outputs": _output_names(job.result),
        "metadata": spec.get("metadata") or {},
    }


def _describe(exc: BaseException) -> str:
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _output_names(result: object) -> list[str]:
    """The output names of a job's result: the worker stores ``{"outputs": {name: {key,
    …}}, "media": …}``; a plain ``{name: storage key}`` mapping is read as well."""
    if not isinstance(result, dict):
        return []
    outputs = result.get("outputs")
    return sorted(outputs if isinstance(outputs, dict) else result)


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


@dataclasses.dataclass(frozen=True, slots=True)
class _Leased:
    id: str
    event: str
    url: str
    payload: dict[str, Any]
    #: The delivery's attempt counter after this lease: the fence for writing back.
    attempt: int
    #: When the lease was taken (database clock): the attempt's time.
    at: datetime


@dataclasses.dataclass(frozen=True, slots=True)
class _Outcome:
    status_code: int | None
    error: str | None
    duration_ms: float
    #: Retrying cannot help (the SSRF guard refused the target).
    permanent: bool = False

    @property
    def ok(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


class Dispatcher:
    """Turns ended jobs into outbox rows and delivers them. Run one or more per
    deployment (e.g. inside each API process): leases keep them from sending the same
    delivery at once.

    ``allowed_networks``: holes in the SSRF guard (``Settings.allowed_networks``);
    ``timeout``: seconds per connect/read/write; ``clock``: the signature timestamp's
    clock (Unix seconds); ``backoff``/``max_age``: the retry schedule (see
    :func:`retry_offsets`); ``lease_seconds``: how long a delivery is reserved for the
    dispatcher sending it (default ``max(30, 3 × timeout)``, so it outlasts the request);
    ``sweep_window``/``full_sweep_interval``: see :meth:`sweep`.
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
        _check_policy(backoff, max_age)
        if not secret:
            raise ValueError("webhooks need a signing secret")
        self.engine = engine
        self.secret = secret
        self.clock = clock
        self.backoff = backoff
        self.max_age = max_age
        self.lease_seconds = lease_seconds if lease_seconds is not None else max(30.0, 3 * timeout)
        self.batch_size = batch_size
        self.sweep_window = sweep_window
        self.full_sweep_interval = full_sweep_interval
        self._reader = reader(engine)
        self._next_full_sweep = float("-inf")
        self._guard = URLGuard(Allowlist.parse(allowed_networks))
        # The guard's transport is synchronous (netguard checks every connect), so
        # requests run in worker threads. trust_env=False: an environment proxy would
        # make the guard judge the proxy instead of the receiver.
        self._client = httpx.Client(
            transport=guarded_transport(self._guard),
            timeout=timeout,
            follow_redirects=False,
            trust_env=False,
            headers={
                "User-Agent": f"reelscribe-webhooks/{__version__}",
                "Content-Type": "application/json",
            },
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
        await anyio.to_thread.run_sync(self._client.close)

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
        event = case(*((J.status == status, literal(name)) for status, name in EVENTS.items()))
        wanted = and_(
            J.status.in_(list(EVENTS)),
            J.spec["webhook_url"].as_string().is_not(None),
            ~exists().where(D.c.job_id == J.id, D.c.event == event, D.c.job_token == J.lease_token),
        )
        if not full:
            wanted = and_(
                wanted,
                or_(J.finished_at.is_(None), J.finished_at >= utc_after(-self.sweep_window)),
            )
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
            .limit(self.batch_size * 10)
        )
        insert_new = _insert_new(self.engine.dialect.name).returning(D.c.id)
        added = 0
        while True:
            async with self._reader.connect() as conn:
                jobs = (await conn.execute(stmt)).all()
            if not jobs:
                break
            rows = [self._outbox_row(job) for job in jobs]
            async with self.engine.begin() as conn:
                added += len((await conn.execute(insert_new, rows)).all())
            # Every selected job has its row now (ours or a concurrent sweep's), so the
            # next query moves on; a short page means there is nothing more.
            if len(jobs) < self.batch_size * 10:
                break
        if full:
            self._next_full_sweep = time.monotonic() + self.full_sweep_interval
        if added:
            log.debug("webhooks: %d new deliveries", added)
        return added

    @staticmethod
    def _outbox_row(job: Row[Any]) -> dict[str, Any]:
        delivery_id = new_job_id()
        event = EVENTS[job.status]
        return {
            "id": delivery_id,
            "job_id": job.id,
            "event": event,
            "job_token": job.lease_token,
            "url": str(job.spec["webhook_url"]),
            "payload": {
                "id": delivery_id,
                "type": event,
                "created_at": _iso(job.now),
                "data": {"job": _job_data(job)},
            },
            "state": DeliveryState.PENDING.value,
            "attempts": 0,
            "next_attempt_at": job.now,
            "created_at": job.now,
        }

    # --- delivering ---------------------------------------------------------------

    async def deliver_due(self, limit: int | None = None) -> int:
        """Leases up to ``limit`` (default ``batch_size``) due deliveries, sends them
        concurrently and records the outcomes; returns how many attempts were made."""
        leased = await self._lease(self.batch_size if limit is None else limit)
        if not leased:
            return 0
        try:
            async with anyio.create_task_group() as tg:
                for delivery in leased:
                    tg.start_soon(self._attempt, delivery)
        finally:
            # The guard keeps every refusal for callers that lose the exception; this
            # one catches it, and a long-lived guard must not grow without bound.
            self._guard.refusals.clear()
        return len(leased)

    async def _lease(self, limit: int) -> list[_Leased]:
        candidate = D.alias("candidate")
        picked = (
            select(candidate.c.id)
            .where(_due(candidate))
            .order_by(candidate.c.next_attempt_at, candidate.c.id)
            .limit(limit)
            # Two dispatchers on PostgreSQL pick disjoint rows instead of queueing on
            # each other's locks; SQLite serialises write transactions anyway.
            .with_for_update(skip_locked=True)
            # MATERIALIZED: run the pick once. As a plain ``IN (subquery)`` PostgreSQL
            # may plan a semi-join that rescans the LIMIT … SKIP LOCKED subquery per
            # row, and every rescan skips the rows just locked: all due rows leased.
            .cte("picked")
            .prefix_with("MATERIALIZED", dialect="postgresql")
        )
        stmt = (
            # ``_due`` again on the outer UPDATE: PostgreSQL re-checks it against the
            # row's latest version should a concurrent transaction have changed it.
            update(D)
            .where(D.c.id.in_(select(picked.c.id)), _due(D))
            .values(lease_expires_at=utc_after(self.lease_seconds), attempts=D.c.attempts + 1)
            .returning(D.c.id, D.c.event, D.c.url, D.c.payload, D.c.attempts, utcnow().label("at"))
        )
        async with self.engine.begin() as conn:
            rows = (await conn.execute(stmt)).all()
        return [_Leased(r.id, r.event, r.url, r.payload, r.attempts, r.at) for r in rows]

    async def _attempt(self, delivery: _Leased) -> None:
        body = json.dumps(delivery.payload, separators=(",", ":"), ensure_ascii=False).encode()
        timestamp = int(self.clock())
        headers = {
            HEADER_EVENT: delivery.event,
            HEADER_DELIVERY: delivery.id,
            HEADER_TIMESTAMP: str(timestamp),
            HEADER_SIGNATURE: signature_header(self.secret, timestamp, body),
        }
        outcome = await anyio.to_thread.run_sync(self._post, delivery.url, body, headers)
        try:
            await self._record(delivery, outcome)
        except Exception:
            # Not fatal to the other deliveries of the batch: this one stays leased
            # until its lease runs out and is then sent again (at least once).
            log.exception(
                "webhook %s %s: recording the attempt failed", delivery.event, delivery.id
            )

    def _post(self, url: str, body: bytes, headers: dict[str, str]) -> _Outcome:
        started = time.perf_counter()

        def done(code: int | None, error: str | None, permanent: bool = False) -> _Outcome:
            elapsed = (time.perf_counter() - started) * 1000.0
            return _Outcome(code, error and error[:_MAX_ERROR], round(elapsed, 3), permanent)

        try:
            # Streamed and closed unread: only the status matters, and a receiver
            # cannot keep us busy with a large or slow body.
            with self._client.stream("POST", url, content=body, headers=headers) as response:
                code = response.status_code
                reason = response.reason_phrase
        except BlockedURLError as exc:
            return done(None, str(exc), permanent=True)
        except ReelscribeError as exc:  # the guard's DNS errors: may heal
            return done(None, str(exc))
        except (httpx.HTTPError, httpx.InvalidURL) as exc:
            return done(None, _describe(exc))
        except Exception as exc:
            # Anything else (a TLS or socket oddity httpx does not wrap) is recorded and
            # retried like a network error rather than lost with the worker thread.
            log.exception("webhook POST to %s failed unexpectedly", url)
            return done(None, _describe(exc))
        if 200 <= code < 300:
            return done(code, None)
        return done(code, f"HTTP {code} {reason}".rstrip())

    async def _record(self, delivery: _Leased, outcome: _Outcome) -> None:
        pending = and_(D.c.id == delivery.id, D.c.state == DeliveryState.PENDING.value)
        # Still ours: no other dispatcher leased the row after our lease ran out.
        ours = and_(pending, D.c.attempts == delivery.attempt)
        async with self.engine.begin() as conn:
            # The attempt happened whoever holds the lease now: always keep it.
            await conn.execute(
                insert(A).values(
                    delivery_id=delivery.id,
                    at=delivery.at,
                    status_code=outcome.status_code,
                    error=outcome.error,
                    duration_ms=outcome.duration_ms,
                )
            )
            where = ours
            values: dict[str, Any] = {"lease_expires_at": None}
            if outcome.ok:
                # Delivered is final even if our lease ran out meanwhile.
                where = pending
                values |= {"state": DeliveryState.DELIVERED.value, "delivered_at": utcnow()}
            elif outcome.permanent or await self._too_old(conn, delivery):
                values |= {"state": DeliveryState.FAILED.value}
            else:
                delay = self.backoff.delay(delivery.attempt)
                values |= {"next_attempt_at": utc_after(delay)}
            changed = (await conn.execute(update(D).where(where).values(values))).rowcount
        if not changed:
            # Another dispatcher took the delivery over (our lease had run out) or
            # already delivered it; its write stands.
            log.info("webhook %s %s: outcome superseded", delivery.event, delivery.id)
        elif outcome.ok:
            log.info("webhook %s %s delivered", delivery.event, delivery.id)
        elif values.get("state") == DeliveryState.FAILED.value:
            log.warning(
                "webhook %s %s given up after %d attempts: %s",
                delivery.event,
                delivery.id,
                delivery.attempt,
                outcome.error,
            )

    async def _too_old(self, conn: AsyncConnection, delivery: _Leased) -> bool:
        """Whether this failed attempt came ``max_age`` or more after the first one
        (both on the database's clock), so retries have had their hour."""
        first = select(func.min(A.c.at)).where(A.c.delivery_id == delivery.id)
        started: datetime | None = (await conn.execute(first)).scalar_one_or_none()
        return started is not None and (delivery.at - started).total_seconds() >= self.max_age

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


async def list_deliveries(engine: AsyncEngine, job_id: str) -> list[dict[str, Any]]:
    """A job's webhook deliveries, oldest first, each with its attempts (oldest first),
    as JSON-ready dicts (times as ISO 8601 strings, UTC)::

        {"id", "event", "url", "state", "payload" (the body sent), "created_at", "delivered_at",
         "next_attempt_at" (None unless pending),
         "attempts": [{"at", "status_code", "error", "duration_ms"}, …]}
    """
    deliveries_stmt = select(D).where(D.c.job_id == job_id).order_by(D.c.created_at, D.c.id)
    attempts_stmt = (
        select(A).join(D, D.c.id == A.c.delivery_id).where(D.c.job_id == job_id).order_by(A.c.id)
    )
    async with reader(engine).connect() as conn:
        deliveries = (await conn.execute(deliveries_stmt)).all()
        attempts = (await conn.execute(attempts_stmt)).all()
    by_delivery: dict[str, list[dict[str, Any]]] = {d.id: [] for d in deliveries}
    for a in attempts:
        # A delivery added between the two reads has no entry; the next call shows it.
        if a.delivery_id not in by_delivery:
            continue
        by_delivery[a.delivery_id].append(
            {
                "at": _iso(a.at),
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
            "created_at": _iso(d.created_at),
            "delivered_at": _iso(d.delivered_at),
            "next_attempt_at": (
                _iso(d.next_attempt_at) if d.state == DeliveryState.PENDING.value else None
            ),
            "attempts": by_delivery[d.id],
        }
        for d in deliveries
    ]
