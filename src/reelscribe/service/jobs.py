"""The rules of jobs, for the HTTP API (and any other front end).

Backends only execute: the job store inserts rows, the queue moves states, storage
keeps blobs. What is allowed, and in which order it is checked, is decided here:

* **create**: a repeated ``Idempotency-Key`` returns the first job (before any limit,
  so a client retrying after a lost response never gets 429 for a job it has); then
  the time range, the source (URL through the SSRF guard, or an upload the caller
  owns and finished), the webhook URL, the caller's audio quota (a job without an end
  reserves what it may cost; see :mod:`reelscribe.service.auth`) and the queue depth.
* a caller sees its own jobs; an admin sees every job; anything else is "not found".
* results are shown as signed links; the JSON transcript is included inline.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import statistics
import time
import weakref
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import anyio

from reelscribe.asr.catalog import check_job_model
from reelscribe.asr.routing import check_job_engine
from reelscribe.backends.db import (
    AsyncEngine,
    EventKind,
    JobEventRow,
    JobRow,
    JobStatus,
    JobStore,
    Priority,
)
from reelscribe.errors import (
    GoneError,
    HostNotFoundError,
    IdempotencyConflictError,
    InvalidInputError,
    JobNotDoneError,
    JobNotFoundError,
    JobStateError,
    NetworkError,
    QueueFullError,
    UnsupportedSourceError,
)
from reelscribe.netguard import Allowlist, URLGuard
from reelscribe.service.auth import ApiKey, KeyService, job_audio_seconds
from reelscribe.service.runtime import Runtime
from reelscribe.service.spec import JobSpec
from reelscribe.service.uploads import COMPLETE, UploadService

if TYPE_CHECKING:  # the edit machinery loads the formats, which the API needs only to edit
    from reelscribe.models import Transcript
    from reelscribe.service.rerender import Edit

#: Largest JSON transcript shown inline in a result; bigger ones are only linked.
INLINE_TRANSCRIPT_BYTES = 32 * 1024 * 1024
#: Told to a caller refused for a full queue; workers drain it meanwhile.
QUEUE_FULL_RETRY_AFTER = 30.0
_HISTORY = 500  # step_finish events the estimates are drawn from
#: Longest a submission waits for DNS before leaving the URL to the worker's check.
RESOLVE_TIMEOUT = 5.0


@dataclass(frozen=True, slots=True)
class StepView:
    name: str
    #: "running", "done", or "interrupted" (the attempt ended inside the step).
    status: str
    attempt: int
    started_at: datetime
    finished_at: datetime | None = None
    duration_seconds: float | None = None
    #: The step's median duration over recent jobs, when there is history.
    estimate_seconds: float | None = None
    #: For a running step: the estimate less the time spent so far.
    remaining_seconds: float | None = None


@dataclass(frozen=True, slots=True)
class OutputLink:
    name: str
    url: str
    filename: str
    size: int | None = None
    sha256: str | None = None
    content_type: str | None = None


def blocked_outputs(result: dict[str, Any]) -> set[str]:
    """Storage keys a blocked job may still serve: its moderation report only."""
    report = (result.get("outputs") or {}).get("moderation")
    return {report["key"]} if isinstance(report, dict) and "key" in report else set()


async def blocked_key(engine: AsyncEngine, key: str) -> bool:
    """Whether ``key`` is an output of a blocked job other than its report: signed links
    to it are refused even while they are unexpired."""
    parts = key.split("/")
    if len(parts) < 3 or parts[0] != "results":
        return False
    found = await JobStore(engine).outcome(parts[1])
    if found is None or found[0] is not JobStatus.BLOCKED:
        return False
    return key not in blocked_outputs(found[1] or {})


@dataclass(frozen=True, slots=True)
class ResultView:
    job: JobRow
    outputs: list[OutputLink]
    links_expire_at: datetime
    transcript: dict[str, Any] | None = None
    summary: dict[str, Any] = field(default_factory=dict)


class QueueDepth:
    """The number of queued jobs for the queue-full check.

    A COUNT per submission would cost more than the insert, so far from the limit the
    count is reused for ``max_age`` seconds, moved on by this process's own
    submissions. Within ``margin`` of the limit every check counts afresh: a refusal
    always rests on an exact count, and room made by a worker is seen at once."""

    def __init__(
        self, count: Callable[[], Awaitable[int]], *, max_age: float = 1.0, margin: float = 0.1
    ) -> None:
        self._count = count
        self._max_age = max_age
        self._margin = margin
        self._value = 0
        self._counted_at = float("-inf")
        self._refresh: asyncio.Future[None] | None = None

    async def read(self, limit: int) -> int:
        stale = time.monotonic() - self._counted_at >= self._max_age
        if stale or self._value >= limit * (1.0 - self._margin):
            if self._refresh is None or self._refresh.done():  # one COUNT for everyone
                self._refresh = asyncio.ensure_future(self._recount())
            await asyncio.shield(self._refresh)
        return self._value

    async def _recount(self) -> None:
        self._value = await self._count()
        self._counted_at = time.monotonic()

    def added(self, count: int = 1) -> None:
        self._value += count


class JobService:
    def __init__(self, runtime: Runtime, keys: KeyService, uploads: UploadService) -> None:
        self.runtime = runtime
        self.settings = runtime.settings
        self.keys = keys
        self.uploads = uploads
        self.allowlist = Allowlist.parse(runtime.settings.allowed_networks)
        self._depth = QueueDepth(self.queued_count)
        self._quota_locks: weakref.WeakValueDictionary[str, asyncio.Lock] = (
            weakref.WeakValueDictionary()
        )

    # --- creating ---------------------------------------------------------------------

    async def create(
        self, spec: JobSpec, *, caller: ApiKey, idempotency_key: str | None = None
    ) -> tuple[JobRow, bool]:
        """Accepts a job (True) or returns the caller's earlier one for the same key."""
        document = spec.model_dump(mode="json")
        store = self.runtime.jobs
        existing = await store.find_by_idempotency_key(caller.id, idempotency_key)
        if existing is not None:
            return self._same_request(existing, document), False
        await self._check_limits(spec)
        if spec.options.model is not None:
            check_job_model(self.settings, spec.options.model)
        if spec.options.engine is not None:
            check_job_engine(self.settings, spec.options.engine)
        await self._check_source(spec, caller)
        # One quota check and insert at a time per key in this process: two requests
        # must not both spend the same remaining minutes.
        lock = self._quota_locks.setdefault(caller.id or "", asyncio.Lock())
        async with lock:
            requested = job_audio_seconds(document, None) if spec.end is not None else None
            reserved = await self.keys.check_quota(caller, requested)
            await self._check_queue_depth()
            row, created = await store.create(
                document,
                priority=Priority(spec.priority),
                owner_key_id=caller.id,
                idempotency_key=idempotency_key,
                audio_reserved_seconds=reserved,
            )
        if not created:  # a concurrent request with the same key won the insert
            return self._same_request(row, document), False
        self._depth.added()
        if spec.source.upload_id is not None:
            await self.uploads.touch(spec.source.upload_id)
        await self.runtime.queue.submitted(row.id, row.priority)
        return row, True

    @staticmethod
    def _same_request(row: JobRow, document: dict[str, Any]) -> JobRow:
        if row.spec != document:
            raise IdempotencyConflictError("this Idempotency-Key was used for a different request")
        return row

    async def _check_limits(self, spec: JobSpec) -> None:
        span = spec.time_range()
        limit = self.settings.max_clip_seconds
        if span is not None and span.duration is not None and span.duration > limit:
            raise InvalidInputError(
                f"time range of {span.duration:g} s is longer than the limit of {limit:g} s",
                code="range_too_long",
            )
        if span is not None and span.start >= self.settings.max_duration:
            raise InvalidInputError(
                f"start {span.start:g} s is past the longest source accepted",
                code="range_too_long",
            )

    async def _check_source(self, spec: JobSpec, caller: ApiKey) -> None:
        if spec.source.url is not None:
            await self._check_url(spec.source.url)
        if spec.source.upload_id is not None:
            upload = await self.uploads.get(spec.source.upload_id, caller)
            if upload.state != COMPLETE:
                raise InvalidInputError(
                    f"upload {upload.id} is not complete ({upload.received} of "
                    f"{upload.size} bytes)",
                    code="upload_incomplete",
                )
        if spec.webhook_url is not None:
            await self._check_url(str(spec.webhook_url))

    async def _check_url(self, url: str) -> None:
        """Early refusal of URLs the fetcher would refuse: bad schemes, blocked or
        scoped addresses, and host names that do not resolve (``host_not_found``),
        except names ``allowed_networks`` lists, which may resolve only where the
        workers run. Resolution runs in a thread, never on the event loop; a lookup
        that fails for a transient reason or takes over :data:`RESOLVE_TIMEOUT`
        passes, and the worker's connect-time guard, the real gate, decides."""
        guard = URLGuard(self.allowlist)
        try:
            with anyio.fail_after(RESOLVE_TIMEOUT):
                await anyio.to_thread.run_sync(guard.check_url, url, abandon_on_cancel=True)
        except (NetworkError, TimeoutError):
            return
        except HostNotFoundError:
            host = (urlsplit(url).hostname or "").rstrip(".").lower()
            if host in self.allowlist.hosts:
                return
            raise
        except (UnicodeError, ValueError) as exc:  # a host name IDNA cannot encode
            raise UnsupportedSourceError(f"invalid host in URL {url!r}") from exc

    async def _check_queue_depth(self) -> None:
        # A soft limit: two requests may both pass at the edge; it only has to stop
        # a flood, not count exactly.
        queued = await self._depth.read(self.settings.max_queued_jobs)
        if queued >= self.settings.max_queued_jobs:
            raise QueueFullError(
                f"the queue is full ({queued} jobs waiting)", retry_after=QUEUE_FULL_RETRY_AFTER
            )

    async def queued_count(self) -> int:
        return await self.runtime.jobs.count(JobStatus.QUEUED)

    # --- reading ------------------------------------------------------------------------

    async def get(self, job_id: str, caller: ApiKey) -> JobRow:
        row = await self.runtime.jobs.get(job_id)
        if row is None or not (caller.is_admin or row.owner_key_id == caller.id):
            raise JobNotFoundError(f"no job {job_id}")
        return row

    async def _row(self, job_id: str) -> JobRow:
        row = await self.runtime.jobs.get(job_id)
        if row is None:
            raise JobNotFoundError(f"no job {job_id}")
        return row

    async def list_jobs(
        self,
        caller: ApiKey,
        *,
        status: JobStatus | None = None,
        limit: int = 50,
        cursor: str | None = None,
    ) -> tuple[Sequence[JobRow], str | None]:
        """Newest first; returns a page and the cursor of the next one. Ids are UUIDv7,
        so ordering by id is creation order and the cursor is simply the last id seen
        (any string works: the page starts below it)."""
        rows = await self.runtime.jobs.page(
            owner_key_id=caller.id,
            any_owner=caller.is_admin,
            status=status,
            limit=limit + 1,
            below=cursor,
        )
        more = len(rows) > limit
        page = rows[:limit]
        return page, page[-1].id if more else None

    async def events_after(self, job_id: str, after_id: int = 0) -> Sequence[JobEventRow]:
        return await self.runtime.jobs.events_after(job_id, after_id)

    # --- changing ------------------------------------------------------------------------

    async def cancel(self, job_id: str, caller: ApiKey) -> JobRow:
        """Cancels a queued job at once, asks a processing one to stop; cancelling a
        cancelled job again is fine, a finished one is a conflict."""
        await self.get(job_id, caller)
        status = await self.runtime.queue.cancel(job_id)
        self.runtime.changes.notify(job_id)
        if status in (JobStatus.DONE, JobStatus.FAILED, JobStatus.EXPIRED, JobStatus.BLOCKED):
            raise JobStateError(f"job {job_id} has already ended ({status})")
        return await self._row(job_id)

    async def retry(self, job_id: str, caller: ApiKey) -> JobRow:
        row = await self.get(job_id, caller)
        if row.status is not JobStatus.FAILED:
            raise JobStateError(f"only failed jobs can be retried; job {job_id} is {row.status}")
        await self._check_queue_depth()
        await self.runtime.queue.enqueue(job_id)
        return await self._row(job_id)

    async def delete(self, job_id: str, caller: ApiKey) -> None:
        """Deletes the job, its history and its stored results. A processing job is
        asked to stop first and must have stopped before it can be deleted."""
        row = await self.get(job_id, caller)
        if row.status in (JobStatus.QUEUED, JobStatus.PROCESSING):
            status = await self.runtime.queue.cancel(job_id)
            if status is JobStatus.PROCESSING:
                raise JobStateError(
                    f"job {job_id} is running; cancellation was requested, delete it once "
                    "it has stopped"
                )
        # Workers store every output under results/<job id>/ (see reelscribe.worker).
        await self.runtime.storage.delete_prefix(f"results/{job_id}/")
        await self.runtime.jobs.delete(job_id)

    # --- edits ------------------------------------------------------------------------------

    async def rename_speakers(self, job_id: str, caller: ApiKey, names: dict[str, str]) -> JobRow:
        """Gives speakers new display names and re-renders every text output from the
        stored JSON transcript (no ASR, no diarization), then records an event."""
        from reelscribe.speakers.rename import with_names

        def remember(spec: JobSpec) -> None:
            spec.options.speaker_names = spec.options.speaker_names | names

        return await self._edit_transcript(
            job_id, caller, with_names(names), {"edit": "speakers", "speaker_names": names},
            remember, what="rename speakers in",
        )  # fmt: skip

    async def correct_text(
        self, job_id: str, caller: ApiKey, edits: Sequence[tuple[int, str]]
    ) -> JobRow:
        """Corrects the text of segments (by position) and re-renders every text output;
        unchanged words keep their timings, corrected ones are re-spread."""
        from reelscribe.formats.corrections import correct_transcript

        texts = dict(edits)

        def edit(transcript: Transcript) -> Transcript:
            # Checked here, once the job is known to exist and be done (404 and 409 first).
            seen: set[int] = set()
            for index, _ in edits:
                if index in seen:
                    raise InvalidInputError(
                        f"segment {index} is named twice; name each segment once"
                    )
                seen.add(index)
            return correct_transcript(transcript, texts)

        return await self._edit_transcript(
            job_id, caller, edit, {"edit": "text", "segments": sorted(texts)}, None,
            what="correct",
        )  # fmt: skip

    async def _edit_transcript(
        self,
        job_id: str,
        caller: ApiKey,
        edit: Edit,
        event: dict[str, Any],
        update_spec: Callable[[JobSpec], None] | None,
        *,
        what: str,
    ) -> JobRow:
        from reelscribe.service.rerender import rerender

        row = await self.get(job_id, caller)
        if row.status is not JobStatus.DONE:
            raise JobNotDoneError(f"job {job_id} is {row.status}, not done")
        result = dict(row.result or {})
        key = result.get("transcript_key")
        if not isinstance(key, str):
            raise JobStateError(f"job {job_id} has no stored transcript to {what}")
        spec = JobSpec.model_validate(row.spec)
        outputs, transcript_key = await rerender(
            self.runtime.storage, job_id, key, result, spec.options, edit,
            default_label=self.settings.speaker_label,
        )  # fmt: skip
        result["outputs"] = outputs
        result["transcript_key"] = transcript_key
        if update_spec is not None:
            update_spec(spec)
        await self.runtime.jobs.edit(
            job_id, result=result, spec=spec.model_dump(mode="json"), event=event
        )
        self.runtime.changes.notify(job_id)
        return await self._row(job_id)

    # --- views ------------------------------------------------------------------------------

    async def steps(self, job_id: str, caller: ApiKey) -> tuple[JobRow, list[StepView]]:
        """The steps of the job's latest attempt, from its step_start/step_finish events."""
        row = await self.get(job_id, caller)
        events = [
            e
            for e in await self.events_after(job_id)
            if e.kind in (EventKind.STEP_START, EventKind.STEP_FINISH)
        ]
        latest = max((int(e.data.get("attempt", 0)) for e in events), default=0)
        typical = await self._typical_durations()
        starts: dict[str, JobEventRow] = {}
        finishes: dict[str, JobEventRow] = {}
        for event in events:
            step = str(event.data.get("step", "?"))
            if int(event.data.get("attempt", 0)) != latest:
                continue
            if event.kind is EventKind.STEP_START:
                starts[step] = event
                finishes.pop(step, None)
            else:
                finishes[step] = event
        now = datetime.now(UTC)
        views = []
        for step, start in starts.items():
            end = finishes.get(step)
            estimate = typical.get(step)
            if end is not None:
                seconds = end.data.get("duration")
                if not isinstance(seconds, int | float):
                    seconds = (end.at - start.at).total_seconds()
                views.append(
                    StepView(step, "done", latest, start.at, end.at, float(seconds), estimate)
                )
                continue
            running = row.status is JobStatus.PROCESSING
            remaining = None
            if running and estimate is not None:
                remaining = max(0.0, estimate - (now - start.at).total_seconds())
            status = "running" if running else "interrupted"
            views.append(StepView(step, status, latest, start.at, None, None, estimate, remaining))
        return row, views

    async def _typical_durations(self) -> dict[str, float]:
        rows = await self.runtime.jobs.recent_steps(_HISTORY)
        seen: dict[str, list[float]] = {}
        for data in rows:
            seconds = data.get("duration")
            if isinstance(seconds, int | float):
                seen.setdefault(str(data.get("step")), []).append(float(seconds))
        return {step: round(statistics.median(values), 3) for step, values in seen.items()}

    async def result(self, job_id: str, caller: ApiKey) -> ResultView:
        row = await self.get(job_id, caller)
        if row.status is JobStatus.EXPIRED:
            raise GoneError(f"job {job_id} has expired; its results are gone")
        if row.status not in (JobStatus.DONE, JobStatus.BLOCKED):
            raise JobNotDoneError(f"job {job_id} is {row.status}, not done")
        result = row.result or {}
        # A blocked job publishes its moderation report and nothing else.
        published = blocked_outputs(result) if row.status is JobStatus.BLOCKED else None
        ttl = self.settings.link_ttl_seconds
        links_expire_at = datetime.fromtimestamp(int(datetime.now(UTC).timestamp()) + ttl, UTC)
        outputs: list[OutputLink] = []
        transcript = None
        for name, out in (result.get("outputs") or {}).items():
            if published is not None and out.get("key") not in published:
                continue
            key, filename = out["key"], out.get("filename") or out["key"].rsplit("/", 1)[-1]
            url = await self.runtime.storage.signed_url(key, ttl, filename=filename)
            outputs.append(
                OutputLink(
                    name,
                    url,
                    filename,
                    out.get("size"),
                    out.get("sha256"),
                    out.get("content_type"),
                )
            )
            if name == "json" and "json" in row.spec.get("outputs", []):
                transcript = await self._inline_json(key, out.get("size"))
        summary = {k: v for k, v in result.items() if k != "outputs"}
        return ResultView(row, outputs, links_expire_at, transcript, summary)

    async def _inline_json(self, key: str, size: object) -> dict[str, Any] | None:
        if isinstance(size, int) and size > INLINE_TRANSCRIPT_BYTES:
            return None
        data = bytearray()
        async with contextlib.aclosing(self.runtime.storage.get_stream(key)) as chunks:
            async for chunk in chunks:
                data += chunk
                if len(data) > INLINE_TRANSCRIPT_BYTES:
                    return None
        document = json.loads(bytes(data))
        return document if isinstance(document, dict) else None
