"""The events a job's end sends, and their bodies::

{"id": "<delivery id>", "type": "job.completed", "created_at": "2026-…Z",
 "data": {"job": {"id", "status", "created_at", "finished_at",
                  "error": {"code", "message"} | null,
                  "outputs": ["json", "srt"],        (names of the result's outputs)
                  "metadata": {…}}}}                 (the spec's metadata)
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from reelscribe.backends.db.enums import JobStatus
from reelscribe.backends.db.outbox import DeliveryState
from reelscribe.backends.db.store import new_job_id

#: The event each terminal status sends.
EVENTS: Mapping[JobStatus, str] = {
    JobStatus.DONE: "job.completed",
    JobStatus.FAILED: "job.failed",
    JobStatus.CANCELLED: "job.cancelled",
    JobStatus.BLOCKED: "job.blocked",
}


def iso(value: datetime | None) -> str | None:
    if value is None:
        return None
    return value.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def job_data(job: Any) -> dict[str, Any]:
    """The ``data.job`` object of an event: what a receiver needs to act, nothing internal
    (storage keys stay private; the receiver fetches results through the API)."""
    spec = job.spec if isinstance(job.spec, dict) else {}
    # A job that succeeded after a failed attempt still carries that attempt's error.
    has_error = job.status is not JobStatus.DONE and (job.error_code or job.error_message)
    return {
        "id": job.id,
        "status": job.status.value,
        "created_at": iso(job.created_at),
        "finished_at": iso(job.finished_at),
        "error": {"code": job.error_code, "message": job.error_message} if has_error else None,
        "outputs": output_names(job.result),
        "metadata": spec.get("metadata") or {},
    }


def output_names(result: object) -> list[str]:
    """The output names of a job's result: the worker stores ``{"outputs": {name: {key,
    …}}, "media": …}``; a plain ``{name: storage key}`` mapping is read as well."""
    if not isinstance(result, dict):
        return []
    outputs = result.get("outputs")
    return sorted(outputs if isinstance(outputs, dict) else result)


def outbox_row(job: Any) -> dict[str, Any]:
    """The outbox row (a pending delivery, body included) for an ended job read by
    :meth:`~reelscribe.backends.db.outbox.OutboxStore.ended_jobs`."""
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
            "created_at": iso(job.now),
            "data": {"job": job_data(job)},
        },
        "state": DeliveryState.PENDING.value,
        "attempts": 0,
        "next_attempt_at": job.now,
        "created_at": job.now,
    }
