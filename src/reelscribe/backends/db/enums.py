"""The vocabularies of the jobs tables: status, priority, event kind."""

from __future__ import annotations

from enum import StrEnum


class JobStatus(StrEnum):
    """A job's life, every arrow a ``transition`` row in ``job_events``::

    queued     → processing   a worker claims it
    processing → done         the worker completes it
    processing → queued       retryable failure with attempts left (after a backoff),
                              or released by a worker shutting down
    processing → processing   another worker takes over an expired lease
    processing → failed       user fault, or attempts used up
    processing → cancelled    the worker honours a cancellation request
    processing → blocked      content moderation found unsafe frames (policy "block");
                              only the moderation report is published
    queued     → cancelled    cancelled before any worker took it
    failed     → queued       retried by hand
    done       → expired      retention over; the outputs may be deleted
    """

    QUEUED = "queued"
    PROCESSING = "processing"
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"
    EXPIRED = "expired"
    BLOCKED = "blocked"

    @property
    def is_terminal(self) -> bool:
        """No worker will touch the job again (``failed`` may still be retried by hand)."""
        return self not in (JobStatus.QUEUED, JobStatus.PROCESSING)


class Priority(StrEnum):
    """Claim order: every ``fast`` job before any ``normal`` one, then ``bulk``."""

    FAST = "fast"
    NORMAL = "normal"
    BULK = "bulk"

    @property
    def rank(self) -> int:
        return _RANKS[self]

    @classmethod
    def from_rank(cls, rank: int) -> Priority:
        return _BY_RANK[rank]


_RANKS = {Priority.FAST: 0, Priority.NORMAL: 1, Priority.BULK: 2}
_BY_RANK = {rank: priority for priority, rank in _RANKS.items()}


class EventKind(StrEnum):
    TRANSITION = "transition"
    STEP_START = "step_start"
    STEP_FINISH = "step_finish"
    PROGRESS = "progress"
