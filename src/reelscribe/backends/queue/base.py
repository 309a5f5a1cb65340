"""The queue contract every backend keeps, and the values that cross it.

A worker's loop, in the terms of this module::

    async with queue:
        while running:
            claim = await queue.claim(worker_id, lease_seconds=30)
            if claim is None:
                await queue.wait(timeout=5)          # woken early by new work where possible
                continue
            ...                                      # every lease_seconds / 3:
            if await queue.heartbeat(claim):         #   extends the lease; raises LeaseLost
                await queue.cancelled(claim)         #   True: the user cancelled the job
            await queue.complete(claim, {"srt": key})  # or fail(claim, error) / release(claim)

Guarantees (the contract suite in ``tests/integration/queue`` checks each of them):

* **At least once.** A job whose worker stops heartbeating is claimed again by the
  next worker once its lease has expired (the lost attempt counts).
* **Fencing.** Every claim gets a new ``token``; a write that carries a token other
  than the job's current one raises :class:`LeaseLost` and changes nothing.
* **Order.** ``fast`` before ``normal`` before ``bulk``; oldest first within one
  priority; never before the job's ``run_after``.
* **Retries.** ``fail(..., retryable=True)`` re-queues with exponential backoff and
  jitter until ``max_attempts``; a user fault fails at once.
* **Every transition appends a ``job_events`` row**, in the same transaction.
* Times (leases, backoff) are the database's clock, never the worker's.
"""

from __future__ import annotations

import enum
import random
from dataclasses import dataclass, field
from datetime import datetime
from types import TracebackType
from typing import Any, Final, Literal, Protocol, Self, runtime_checkable

from reelscribe.backends.db.enums import JobStatus, Priority

# The queue's errors live in the one tree; named here too for the queue's own modules.
from reelscribe.errors import JobNotFoundError as JobNotFoundError
from reelscribe.errors import LeaseLost as LeaseLost
from reelscribe.errors import ReelscribeError


@dataclass(frozen=True, slots=True)
class Claim:
    """One worker's lease on one job. Pass it back to every call about the job."""

    job_id: str
    worker_id: str
    #: The fencing token: the job's claim counter when this lease was granted.
    token: int
    #: Which attempt this is, from 1 (released claims do not count).
    attempt: int
    max_attempts: int
    priority: Priority
    lease_seconds: float
    #: Lease end on the database's clock (heartbeats move it on).
    lease_expires_at: datetime
    spec: dict[str, Any] = field(hash=False, compare=False)
    #: The lease took over a job whose previous worker stopped heartbeating.
    reclaimed: bool = False
    #: Backend delivery handle (a Redis stream entry); opaque to callers.
    receipt: str | None = None


@dataclass(frozen=True, slots=True)
class Backoff:
    """Delay before attempt ``n + 1`` after attempt ``n`` failed:
    ``min(max_delay, base * factor ** (n - 1))`` stretched by up to ``jitter`` (a
    fraction), so that jobs failing together do not come back together. With
    ``jitter < factor - 1`` every delay is longer than the one before."""

    base: float = 10.0
    factor: float = 2.0
    max_delay: float = 600.0
    jitter: float = 0.25

    def delay(self, attempt: int) -> float:
        raw = min(self.max_delay, self.base * self.factor ** max(0, attempt - 1))
        return raw * (1.0 + self.jitter * random.random())  # noqa: S311 (not for security)


@dataclass(frozen=True, slots=True)
class LeaseState:
    """A job's row as a backend read it (locked) before a transition: what the
    :class:`JobRules` decide from."""

    status: JobStatus
    priority: Priority
    attempts: int
    max_attempts: int
    cancel_requested: bool


class _Keep(enum.Enum):
    KEEP = "keep"


#: An :class:`Outcome` field left as the row has it.
KEEP: Final = _Keep.KEEP


@dataclass(frozen=True, slots=True)
class Outcome:
    """A transition the :class:`JobRules` decided and a backend writes as it is.

    Leaving ``processing`` always drops the lease and adds the attempt's time; a
    final status stamps ``finished_at``; a change of status appends a ``job_events``
    row with ``event`` as its data (beside ``from`` and ``to``)."""

    status: JobStatus
    #: ``queued``: due after this many seconds.
    retry_in: float | None = None
    message: str | _Keep | None = KEEP
    #: ``(code, message)`` recorded on the job.
    error: tuple[str, str] | None = None
    #: ``uncount``: the attempt does not count; ``restart``: a retry by hand (attempts,
    #: cancellation and the end time start afresh).
    attempts: Literal["keep", "uncount", "restart"] = "keep"
    cancel_requested: bool | None = None
    priority: Priority | None = None
    event: dict[str, Any] = field(default_factory=dict)


class JobRules(Protocol):
    """The job rules a backend asks while it holds a job's row: what each request
    does to a job in a given state. :class:`~reelscribe.service.manager.JobManager`
    is the one implementation; backends only read, lock and write."""

    def failed(self, state: LeaseState, error: ReelscribeError, retryable: bool | None) -> Outcome:
        """The lease holder reports ``error``: retry, fail or (cancelled meanwhile) cancel."""
        ...

    def released(self, state: LeaseState) -> Outcome:
        """The lease holder gives the job back (graceful shutdown)."""
        ...

    def stopped(self) -> Outcome:
        """The lease holder stopped because cancellation was requested."""
        ...

    def enqueued(self, state: LeaseState, priority: Priority | None) -> Outcome | None:
        """Someone asks for the job to run (None: nothing to change)."""
        ...

    def cancelled(self, state: LeaseState) -> Outcome | None:
        """Someone asks for the job to stop (None: nothing to change)."""
        ...

    def expired(self, state: LeaseState) -> Outcome | None:
        """The job's lease expired (None: it may run again; the next claim takes it)."""
        ...


@runtime_checkable
class Queue(Protocol):
    """What the service layer and the workers need from a queue backend.

    Jobs are created in the jobs table first (:class:`~reelscribe.backends.db.store.JobStore`);
    the queue then delivers their ids. Use as ``async with queue: ...``.
    """

    async def __aenter__(self) -> Self: ...

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...

    async def enqueue(self, job_id: str, priority: Priority | None = None) -> JobStatus:
        """Makes an existing job claimable and wakes a worker; ``priority`` (default: the
        job's own) replaces the job's priority while it waits.

        ``queued`` stays queued, ``failed`` is retried by hand (``failed → queued``,
        attempts reset); other states are left alone. Returns the job's status. Raises
        :class:`JobNotFoundError`."""
        ...

    async def submitted(self, job_id: str, priority: Priority) -> None:
        """Delivers a job that :meth:`JobStore.create` has just inserted as ``queued``:
        the cheap path of :meth:`enqueue` for new jobs (no row lock, no re-read)."""
        ...

    async def claim(self, worker_id: str, lease_seconds: float) -> Claim | None:
        """Leases the next job for ``lease_seconds``, or returns None when none is due."""
        ...

    async def heartbeat(self, claim: Claim) -> bool:
        """Extends the lease by ``claim.lease_seconds``; True if cancellation was requested.
        Raises :class:`LeaseLost`."""
        ...

    async def complete(
        self,
        claim: Claim,
        result: dict[str, Any],
        *,
        retain_seconds: float | None = None,
        status: JobStatus = JobStatus.DONE,
    ) -> None:
        """``processing → done`` with the result's storage keys; ``retain_seconds`` sets
        ``expires_at``. ``status=BLOCKED`` ends it ``blocked`` instead (content moderation
        refused it; the result holds only the report). Raises :class:`LeaseLost`."""
        ...

    async def fail(
        self, claim: Claim, error: ReelscribeError, *, retryable: bool | None = None
    ) -> JobStatus:
        """Records ``error``; re-queues after a backoff when ``retryable`` (default:
        ``error.retryable``) and attempts are left, else ``failed`` (``cancelled`` if the
        user cancelled meanwhile). Returns the new status. Raises :class:`LeaseLost`."""
        ...

    async def release(self, claim: Claim) -> None:
        """Gives the job back untouched (graceful shutdown): ``queued`` again, due now,
        and the attempt is not counted. Raises :class:`LeaseLost`."""
        ...

    async def cancelled(self, claim: Claim) -> None:
        """The worker stopped because cancellation was requested: ``→ cancelled``.
        Raises :class:`LeaseLost`."""
        ...

    async def cancel(self, job_id: str) -> JobStatus:
        """Cancels a queued job at once; asks the worker of a processing one (its next
        heartbeat returns True). Returns the status after the call."""
        ...

    async def reap(self) -> int:
        """Ends jobs whose lease expired and which must not run again (attempts used
        up: ``failed``; cancellation requested: ``cancelled``). Returns how many.
        ``claim`` calls it now and then; a scheduler may call it too."""
        ...

    async def wait(self, timeout: float) -> None:
        """Sleeps up to ``timeout`` seconds, returning early when work may be ready."""
        ...
