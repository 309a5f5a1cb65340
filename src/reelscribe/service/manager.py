"""``JobManager``: the job rules, the one place that decides what happens to a job.

The queue backends hold a job's row (locked) and ask the manager; the manager answers
with an :class:`~reelscribe.backends.queue.base.Outcome` and the backend writes it
as it is. So every backend behaves the same, and the rules read in one page::

    failed      cancellation requested meanwhile    -> cancelled
                retryable and attempts left         -> queued, after the backoff
                otherwise                           -> failed
    released    cancellation requested              -> cancelled
                otherwise                           -> queued now; the attempt is not counted
    stopped     (the worker saw the cancellation)   -> cancelled
    enqueued    failed                              -> queued now, attempts afresh
                queued or failed, another priority  -> the new priority
    cancelled   queued                              -> cancelled at once
                processing                          -> cancellation requested
    expired     cancellation requested              -> cancelled
                attempts used up                    -> failed (lease_expired)
                otherwise                           -> left for the next claim
"""

from __future__ import annotations

from reelscribe.backends.db.enums import JobStatus, Priority
from reelscribe.backends.queue.base import Backoff, LeaseState, Outcome
from reelscribe.errors import ReelscribeError

CANCELLED_MESSAGE = "cancelled"


class JobManager:
    """The :class:`~reelscribe.backends.queue.base.JobRules` of reelscribe;
    ``backoff`` spaces the retries of a failed attempt."""

    def __init__(self, backoff: Backoff | None = None) -> None:
        self.backoff = backoff or Backoff()

    def failed(self, state: LeaseState, error: ReelscribeError, retryable: bool | None) -> Outcome:
        retry = error.retryable if retryable is None else retryable
        recorded = (error.code, error.message)
        event = {"attempt": state.attempts, "error": {"code": error.code, "message": error.message}}
        if state.cancel_requested:
            return Outcome(JobStatus.CANCELLED, error=recorded, event=event)
        if retry and state.attempts < state.max_attempts:
            delay = self.backoff.delay(state.attempts)
            return Outcome(
                JobStatus.QUEUED,
                retry_in=delay,
                message=f"attempt {state.attempts} failed; retrying in {delay:.1f} s",
                error=recorded,
                event=event | {"retry_in": round(delay, 3)},
            )
        return Outcome(JobStatus.FAILED, error=recorded, event=event | {"retryable": retry})

    def released(self, state: LeaseState) -> Outcome:
        if state.cancel_requested:
            return Outcome(JobStatus.CANCELLED, event={"released": True})
        # The attempt was cut short by shutdown, not by the job: do not count it.
        return Outcome(
            JobStatus.QUEUED,
            retry_in=0.0,
            message="released by a worker that shut down",
            attempts="uncount",
            event={"released": True},
        )

    def stopped(self) -> Outcome:
        return Outcome(JobStatus.CANCELLED, message=CANCELLED_MESSAGE)

    def enqueued(self, state: LeaseState, priority: Priority | None) -> Outcome | None:
        reprioritise = (
            state.status in (JobStatus.QUEUED, JobStatus.FAILED)
            and priority is not None
            and priority != state.priority
        )
        new_priority = priority if reprioritise else None
        if state.status is JobStatus.FAILED:  # a retry by hand starts afresh
            return Outcome(
                JobStatus.QUEUED,
                retry_in=0.0,
                message=None,
                attempts="restart",
                priority=new_priority,
                event={"retry": True},
            )
        if new_priority is not None:
            return Outcome(state.status, priority=new_priority)
        return None

    def cancelled(self, state: LeaseState) -> Outcome | None:
        if state.status is JobStatus.QUEUED:
            return Outcome(JobStatus.CANCELLED, message=CANCELLED_MESSAGE)
        if state.status is JobStatus.PROCESSING and not state.cancel_requested:
            # The worker's next heartbeat reads the request and stops.
            return Outcome(
                JobStatus.PROCESSING, message="cancellation requested", cancel_requested=True
            )
        return None

    def expired(self, state: LeaseState) -> Outcome | None:
        if state.cancel_requested:
            return Outcome(
                JobStatus.CANCELLED, message=CANCELLED_MESSAGE, event={"reason": "lease_expired"}
            )
        if state.attempts >= state.max_attempts:
            return Outcome(
                JobStatus.FAILED,
                error=("lease_expired", "the worker stopped responding and no attempts are left"),
                event={"reason": "lease_expired"},
            )
        return None
