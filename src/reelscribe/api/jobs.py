"""``/api/jobs``: submit, list, read, cancel, retry and delete jobs; steps, results and
webhook deliveries. Server-Sent Events live in :mod:`reelscribe.api.events`."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Header, Path, Query, Request, Response

from reelscribe.api.deps import JobsDep, ReadKey, RuntimeDep, SubmitKey
from reelscribe.api.errors import error_responses
from reelscribe.api.estimate_schemas import ActualPublic, estimate_public
from reelscribe.api.estimates import estimates_of
from reelscribe.api.schemas import (
    JobCreate,
    JobErrorPublic,
    JobLinks,
    JobList,
    JobPublic,
    OutputPublic,
    ResultPublic,
    SpeakerRename,
    StepList,
    StepPublic,
    TranscriptEdit,
    WebhookDeliveryPublic,
)
from reelscribe.backends.db import JobRow, JobStatus
from reelscribe.config import Settings
from reelscribe.pipeline.estimate import Prices, actual_of
from reelscribe.service.runtime import Runtime
from reelscribe.service.spec import (
    METADATA_MAX_BYTES,
    METADATA_MAX_KEY_CHARS,
    METADATA_MAX_KEYS,
    METADATA_MAX_VALUE_CHARS,
    JobSpec,
)
from reelscribe.webhooks import list_deliveries

router = APIRouter(
    prefix="/api/jobs", tags=["jobs"], responses=error_responses(400, 401, 403, 422, 429)
)
JobId = Annotated[str, Path(min_length=1, max_length=64, description="The job id")]


def base_url(runtime: Runtime, request: Request) -> str:
    """Where clients reach us: the configured public URL, else the request's own."""
    return (runtime.settings.public_base_url or str(request.base_url)).rstrip("/")


def _within_limits(spec: dict[str, Any]) -> dict[str, Any]:
    """The stored spec with its metadata cut to today's limits: jobs stored before
    there were limits may hold megabytes of it, which must neither fail validation
    (a 500 on every listing) nor be sent back whole."""
    metadata = spec.get("metadata")
    if not isinstance(metadata, dict):
        return spec
    kept: dict[str, str] = {}
    total = 0
    for key, value in metadata.items():
        if len(kept) == METADATA_MAX_KEYS:
            break
        if not isinstance(key, str) or not 1 <= len(key) <= METADATA_MAX_KEY_CHARS:
            continue
        value = str(value)[:METADATA_MAX_VALUE_CHARS]
        size = len(key.encode("utf-8", "surrogatepass")) + len(
            value.encode("utf-8", "surrogatepass")
        )
        if total + size > METADATA_MAX_BYTES:
            break
        kept[key] = value
        total += size
    return spec if kept == metadata else {**spec, "metadata": kept}


def job_public(row: JobRow, base: str, settings: Settings | None = None) -> JobPublic:
    """``settings`` price the actual cost of a finished job (no ``actual`` without)."""
    url = f"{base}/api/jobs/{row.id}"
    error = None
    if row.error_code is not None:
        error = JobErrorPublic(code=row.error_code, message=row.error_message or "")
    return JobPublic(
        id=row.id,
        status=row.status,
        priority=row.priority.value,
        progress=row.progress,
        stage=row.stage,
        message=row.status_message,
        attempts=row.attempts,
        max_attempts=row.max_attempts,
        cancel_requested=row.cancel_requested,
        error=error,
        created_at=row.created_at,
        updated_at=row.updated_at,
        started_at=row.started_at,
        finished_at=row.finished_at,
        expires_at=row.expires_at,
        spec=JobSpec.model_validate(_within_limits(row.spec)),
        links=JobLinks(
            self_=url,
            events=f"{url}/events",
            steps=f"{url}/steps",
            result=f"{url}/result",
            cancel=f"{url}/cancel",
        ),
        estimate=estimate_public(row.estimate),
        actual=actual_public(row, settings),
    )


def actual_public(row: JobRow, settings: Settings | None) -> ActualPublic | None:
    """What a done job took and cost, at the deployment's prices."""
    if settings is None or row.status is not JobStatus.DONE:
        return None
    actual = actual_of(row.result, Prices.from_settings(settings))
    return None if actual is None else ActualPublic.model_validate(actual.to_dict())


@router.post(
    "",
    status_code=202,
    summary="Submit a job",
    responses={
        200: {"model": JobPublic, "description": "An earlier job with this Idempotency-Key"},
        **error_responses(404, 409),
    },
)
async def create_job(
    spec: JobCreate,
    request: Request,
    response: Response,
    key: SubmitKey,
    jobs: JobsDep,
    runtime: RuntimeDep,
    idempotency_key: Annotated[
        str | None,
        Header(
            alias="Idempotency-Key",
            min_length=1,
            max_length=255,
            description="Repeat a submission safely: the same key returns the same job.",
        ),
    ] = None,
) -> JobPublic:
    row, created = await jobs.create(spec, caller=key, idempotency_key=idempotency_key)
    if created:
        row.estimate = await estimates_of(request).record(row.id, spec, key)
    public = job_public(row, base_url(runtime, request), runtime.settings)
    response.headers["Location"] = public.links.self_
    if not created:
        response.status_code = 200
        response.headers["Idempotent-Replayed"] = "true"
    return public


@router.get("", summary="List jobs, newest first")
async def list_jobs(
    request: Request,
    key: ReadKey,
    jobs: JobsDep,
    runtime: RuntimeDep,
    status: JobStatus | None = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: Annotated[
        str | None,
        Query(max_length=64, pattern=r"^[0-9A-Za-z-]+$", description="next_cursor of a page"),
    ] = None,
) -> JobList:
    rows, next_cursor = await jobs.list_jobs(key, status=status, limit=limit, cursor=cursor)
    base = base_url(runtime, request)
    items = [job_public(row, base, runtime.settings) for row in rows]
    return JobList(items=items, next_cursor=next_cursor)


@router.get("/{job_id}", summary="Read a job", responses=error_responses(404))
async def get_job(
    job_id: JobId, request: Request, key: ReadKey, jobs: JobsDep, runtime: RuntimeDep
) -> JobPublic:
    return job_public(await jobs.get(job_id, key), base_url(runtime, request), runtime.settings)


@router.post(
    "/{job_id}/cancel",
    status_code=202,
    summary="Cancel a job (a running one stops at its next heartbeat)",
    responses=error_responses(404, 409),
)
async def cancel_job(
    job_id: JobId, request: Request, key: SubmitKey, jobs: JobsDep, runtime: RuntimeDep
) -> JobPublic:
    return job_public(await jobs.cancel(job_id, key), base_url(runtime, request), runtime.settings)


@router.post(
    "/{job_id}/retry",
    status_code=202,
    summary="Queue a failed job again",
    responses=error_responses(404, 409),
)
async def retry_job(
    job_id: JobId, request: Request, key: SubmitKey, jobs: JobsDep, runtime: RuntimeDep
) -> JobPublic:
    return job_public(await jobs.retry(job_id, key), base_url(runtime, request), runtime.settings)


@router.delete(
    "/{job_id}",
    status_code=204,
    summary="Delete a job and its results",
    responses=error_responses(404, 409),
)
async def delete_job(job_id: JobId, key: SubmitKey, jobs: JobsDep) -> Response:
    await jobs.delete(job_id, key)
    return Response(status_code=204)


@router.get(
    "/{job_id}/steps",
    summary="The pipeline steps of the latest attempt",
    responses=error_responses(404),
)
async def job_steps(job_id: JobId, key: ReadKey, jobs: JobsDep) -> StepList:
    row, steps = await jobs.steps(job_id, key)
    return StepList(
        job_id=row.id,
        status=row.status,
        steps=[
            StepPublic(
                name=s.name,
                status=s.status,
                attempt=s.attempt,
                started_at=s.started_at,
                finished_at=s.finished_at,
                duration_seconds=s.duration_seconds,
                estimate_seconds=s.estimate_seconds,
                remaining_seconds=s.remaining_seconds,
            )
            for s in steps
        ],
    )


@router.get(
    "/{job_id}/result",
    summary="Download links of a done job's outputs",
    responses=error_responses(404, 409, 410),
)
async def job_result(
    job_id: JobId, key: ReadKey, jobs: JobsDep, runtime: RuntimeDep
) -> ResultPublic:
    view = await jobs.result(job_id, key)
    return ResultPublic(
        job_id=view.job.id,
        outputs=[
            OutputPublic(
                name=o.name,
                url=o.url,
                filename=o.filename,
                size=o.size,
                sha256=o.sha256,
                content_type=o.content_type,
            )
            for o in view.outputs
        ],
        links_expire_at=view.links_expire_at,
        expires_at=view.job.expires_at,
        transcript=view.transcript,
        summary=view.summary,
        estimate=estimate_public(view.job.estimate),
        actual=actual_public(view.job, runtime.settings),
    )


@router.patch(
    "/{job_id}/speakers",
    summary="Rename speakers: every text output is re-rendered from the stored transcript",
    responses=error_responses(404, 409, 422),
)
async def rename_speakers(
    job_id: JobId, body: SpeakerRename, key: SubmitKey, jobs: JobsDep, runtime: RuntimeDep
) -> ResultPublic:
    await jobs.rename_speakers(job_id, key, body.names)
    return await job_result(job_id, key, jobs, runtime)


@router.patch(
    "/{job_id}/transcript",
    summary="Correct segment text: every text output is re-rendered from the stored transcript",
    description=(
        "Unchanged words keep their timings; corrected words are spread over the time of "
        "the words they replace and marked `interpolated`. 400 `invalid_input` for a "
        "segment index the transcript does not have or one named twice; 409 `job_not_done` "
        "before the job is done; 413 for a body over the JSON request limit."
    ),
    responses=error_responses(404, 409, 413, 422),
)
async def correct_transcript(
    job_id: JobId, body: TranscriptEdit, key: SubmitKey, jobs: JobsDep, runtime: RuntimeDep
) -> ResultPublic:
    await jobs.correct_text(job_id, key, [(s.index, s.text) for s in body.segments])
    return await job_result(job_id, key, jobs, runtime)


@router.get(
    "/{job_id}/webhooks",
    summary="Webhook deliveries of a job and their attempts",
    responses=error_responses(404),
)
async def job_webhooks(
    job_id: JobId, key: ReadKey, jobs: JobsDep, runtime: RuntimeDep
) -> list[WebhookDeliveryPublic]:
    await jobs.get(job_id, key)
    deliveries = await list_deliveries(runtime.engine, job_id)
    return [WebhookDeliveryPublic.model_validate(d) for d in deliveries]
