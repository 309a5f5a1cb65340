"""The job rules, decided without a database: what each request does to a job in each
state (the queue contract suite checks that the backends write them)."""

from __future__ import annotations

import pytest

from reelscribe.backends.db.enums import JobStatus, Priority
from reelscribe.backends.queue.base import KEEP, Backoff, LeaseState
from reelscribe.errors import InvalidInputError, NetworkError
from reelscribe.service.manager import JobManager

RULES = JobManager(Backoff(base=1.0, factor=2.0, jitter=0.0))


def state(
    status: JobStatus = JobStatus.PROCESSING,
    attempts: int = 1,
    max_attempts: int = 3,
    cancel_requested: bool = False,
) -> LeaseState:
    return LeaseState(status, Priority.NORMAL, attempts, max_attempts, cancel_requested)


def test_a_transient_failure_is_retried_after_the_backoff() -> None:
    outcome = RULES.failed(state(attempts=2), NetworkError("reset"), None)
    assert outcome.status is JobStatus.QUEUED
    assert outcome.retry_in == pytest.approx(2.0)
    assert outcome.error == ("network_error", "reset")
    assert outcome.event["retry_in"] == pytest.approx(2.0)


def test_a_user_fault_or_the_last_attempt_fails_the_job() -> None:
    user = RULES.failed(state(), InvalidInputError("bad"), None)
    last = RULES.failed(state(attempts=3), NetworkError("reset"), None)
    forced = RULES.failed(state(), NetworkError("reset"), False)
    for outcome in (user, last, forced):
        assert outcome.status is JobStatus.FAILED
        assert outcome.retry_in is None
        assert outcome.event["retryable"] is (outcome is last)


def test_a_cancellation_wins_over_a_retry_and_a_release() -> None:
    cancelling = state(cancel_requested=True)
    assert RULES.failed(cancelling, NetworkError("reset"), None).status is JobStatus.CANCELLED
    assert RULES.released(cancelling).status is JobStatus.CANCELLED
    expired = RULES.expired(cancelling)
    assert expired is not None
    assert expired.status is JobStatus.CANCELLED


def test_a_release_requeues_now_without_counting_the_attempt() -> None:
    outcome = RULES.released(state())
    assert (outcome.status, outcome.retry_in, outcome.attempts) == (
        JobStatus.QUEUED,
        0.0,
        "uncount",
    )


def test_an_expired_lease_fails_only_when_no_attempt_is_left() -> None:
    assert RULES.expired(state(attempts=2)) is None
    outcome = RULES.expired(state(attempts=3))
    assert outcome is not None
    assert outcome.status is JobStatus.FAILED
    assert outcome.error is not None
    assert outcome.error[0] == "lease_expired"


def test_enqueue_retries_a_failed_job_afresh_and_reprioritises_a_waiting_one() -> None:
    retried = RULES.enqueued(state(JobStatus.FAILED, attempts=3), None)
    assert retried is not None
    assert (retried.status, retried.attempts, retried.message) == (
        JobStatus.QUEUED, "restart", None
    )  # fmt: skip
    moved = RULES.enqueued(state(JobStatus.QUEUED), Priority.FAST)
    assert moved is not None
    assert (moved.status, moved.priority) == (JobStatus.QUEUED, Priority.FAST)
    assert RULES.enqueued(state(JobStatus.QUEUED), Priority.NORMAL) is None
    assert RULES.enqueued(state(JobStatus.DONE), Priority.FAST) is None


def test_cancel_ends_a_queued_job_and_asks_a_running_one() -> None:
    queued = RULES.cancelled(state(JobStatus.QUEUED))
    assert queued is not None
    assert queued.status is JobStatus.CANCELLED
    running = RULES.cancelled(state())
    assert running is not None
    assert (running.status, running.cancel_requested) == (JobStatus.PROCESSING, True)
    assert running.message is not KEEP
    assert RULES.cancelled(state(cancel_requested=True)) is None
    assert RULES.cancelled(state(JobStatus.DONE)) is None
