"""``GET /api/jobs/{id}/events``: a job's life as Server-Sent Events.

First the job's history (``job_events``, each with its id, so a reconnecting client's
``Last-Event-ID`` resumes after it), then new events as they are written, found by
polling the table every :data:`POLL_SECONDS` (every worker writes to the table, whatever
the queue backend, so no second channel is needed). Between them a ``progress`` event
(no id) whenever the job's status, percentage, stage or message changes, with an ETA
extrapolated from the time spent so far. Stored notes (which engine made the
transcript, lost speech, an edit of a finished job) come as ``note`` events. The stream
ends, with an ``end`` event, once the job is in a terminal state and every event before
that has been sent.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Header
from sse_starlette import EventSourceResponse, ServerSentEvent

from reelscribe.api.deps import JobsDep, ReadKey
from reelscribe.api.errors import error_responses
from reelscribe.api.jobs import JobId
from reelscribe.backends.db import EventKind, JobEventRow, JobRow, JobStatus
from reelscribe.service.jobs import JobService

POLL_SECONDS = 0.3

router = APIRouter(
    prefix="/api/jobs", tags=["jobs"], responses=error_responses(400, 401, 403, 404, 422, 429)
)


def progress_data(row: JobRow, now: datetime | None = None) -> dict[str, Any]:
    eta = None
    if row.status is JobStatus.PROCESSING and row.started_at is not None and row.progress > 0:
        elapsed = ((now or datetime.now(UTC)) - row.started_at).total_seconds()
        eta = round(max(0.0, elapsed * (100.0 - row.progress) / row.progress), 1)
    return {
        "status": row.status.value,
        "progress": row.progress,
        "stage": row.stage,
        "message": row.status_message,
        "eta_seconds": eta,
    }


def _sse(event: JobEventRow) -> ServerSentEvent:
    payload = {"kind": event.kind.value, "at": event.at.isoformat(), "data": event.data}
    # A stored progress-kind event is a note (which engine ran, lost speech, an edit), not
    # a percentage: the SSE name ``progress`` stays the live state's alone, so a client
    # can read ``progress`` from every event of that name.
    name = "note" if event.kind is EventKind.PROGRESS else event.kind.value
    return ServerSentEvent(json.dumps(payload), event=name, id=str(event.id))


async def stream(jobs: JobService, job_id: str, after: int) -> AsyncIterator[ServerSentEvent]:
    last: dict[str, Any] | None = None
    while True:
        for event in await jobs.events_after(job_id, after):
            after = event.id
            yield _sse(event)
        row = await jobs.runtime.jobs.get(job_id)
        if row is None:
            yield ServerSentEvent(json.dumps({"job_id": job_id}), event="deleted")
            return
        state = progress_data(row)
        comparable = {k: v for k, v in state.items() if k != "eta_seconds"}
        if last is None or comparable != last:
            last = comparable
            yield ServerSentEvent(json.dumps(state), event="progress")
        if row.status.is_terminal:
            # Events written between the read above and the row read are sent too.
            for event in await jobs.events_after(job_id, after):
                yield _sse(event)
            yield ServerSentEvent(json.dumps({"status": row.status.value}), event="end")
            return
        # Woken at once by a worker in this process; else the next read finds it.
        await jobs.runtime.changes.wait(job_id, POLL_SECONDS)


@router.get(
    "/{job_id}/events",
    summary="Follow a job (Server-Sent Events)",
    response_class=EventSourceResponse,
    responses={
        200: {
            "description": "event: transition | step_start | step_finish | note | progress | end",
            "content": {"text/event-stream": {"schema": {"type": "string"}}},
        }
    },
)
async def job_events(
    job_id: JobId,
    key: ReadKey,
    jobs: JobsDep,
    last_event_id: Annotated[
        str | None,
        Header(alias="Last-Event-ID", max_length=20, description="Resume after this event"),
    ] = None,
) -> EventSourceResponse:
    await jobs.get(job_id, key)  # 404 before the stream starts
    # Ids we send are digits; anything else is not ours and replays from the start.
    after = (
        int(last_event_id)
        if last_event_id and last_event_id.isascii() and last_event_id.isdigit()
        else 0
    )
    return EventSourceResponse(stream(jobs, job_id, after), ping=15)
