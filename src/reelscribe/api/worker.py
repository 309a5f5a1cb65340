"""``/api/worker``: what a remote worker (``reelscribe worker --remote``) calls.

Every route needs a key with the ``worker`` scope (or admin). They do not count
against the key's request rate limit: a running job heartbeats and reports twice a
second, and a worker key can do nothing else. The rules live in
:class:`~reelscribe.service.gateway.WorkerGateway`; see it for leases and fencing.
"""

from __future__ import annotations

from typing import Annotated
from urllib.parse import unquote

from fastapi import APIRouter, Header, Path, Request, Response

from reelscribe.api.deps import GatewayDep, WorkerKey
from reelscribe.api.errors import error_responses
from reelscribe.backends.db.workers import WorkerBeat
from reelscribe.errors import RemoteFailure
from reelscribe.hub.wire import (
    LEASE_HEADER,
    LEASE_MAX_CHARS,
    WORKER_ID_MAX_CHARS,
    ClaimAnswer,
    ClaimedJob,
    ClaimRequest,
    CompleteRequest,
    FailRequest,
    HeartbeatAnswer,
    LeaseRef,
    OutputAnswer,
    OutputOffer,
    ProgressReport,
    SourceAnswer,
    WorkerBeatIn,
)
from reelscribe.service.gateway import step_events

router = APIRouter(
    prefix="/api/worker", tags=["worker"], responses=error_responses(400, 401, 403, 422)
)
JobId = Annotated[str, Path(min_length=1, max_length=64, description="The job id")]
WorkerId = Annotated[
    str, Path(min_length=1, max_length=WORKER_ID_MAX_CHARS, description="The worker id")
]
_FENCED = error_responses(409)  # 409 lease_lost: another worker holds the job now


@router.post("/claim", summary="Lease the next due job (waits up to `wait` seconds)")
async def claim(body: ClaimRequest, key: WorkerKey, gateway: GatewayDep) -> ClaimAnswer:
    found = await gateway.claim(body.worker_id, body.lease_seconds, body.wait, key)
    if found is None:
        return ClaimAnswer(job=None)
    c, lease = found
    return ClaimAnswer(job=ClaimedJob(
        id=c.job_id, token=c.token, attempt=c.attempt, max_attempts=c.max_attempts,
        priority=c.priority.value, lease_seconds=c.lease_seconds,
        lease_expires_at=c.lease_expires_at, reclaimed=c.reclaimed, spec=c.spec, lease=lease,
    ))  # fmt: skip


@router.post("/jobs/{job_id}/heartbeat", summary="Extend the lease", responses=_FENCED)
async def heartbeat(
    job_id: JobId, body: LeaseRef, key: WorkerKey, gateway: GatewayDep
) -> HeartbeatAnswer:
    cancel = await gateway.heartbeat(gateway.lease(body.lease, job_id, key))
    return HeartbeatAnswer(cancel_requested=cancel)


@router.post(
    "/jobs/{job_id}/progress", status_code=204, summary="Report progress and steps",
    responses=_FENCED,
)  # fmt: skip
async def progress(
    job_id: JobId, body: ProgressReport, key: WorkerKey, gateway: GatewayDep
) -> Response:
    claim = gateway.lease(body.lease, job_id, key)
    events = step_events([(e.kind, e.data) for e in body.events])
    await gateway.report(claim, progress=body.progress, stage=body.stage,
                         message=body.message, events=events)  # fmt: skip
    return Response(status_code=204)


@router.post(
    "/jobs/{job_id}/source", summary="A signed link to the job's uploaded source",
    responses=error_responses(409),
)  # fmt: skip
async def source(
    job_id: JobId, body: LeaseRef, key: WorkerKey, gateway: GatewayDep
) -> SourceAnswer:
    url, filename, size = await gateway.source(gateway.lease(body.lease, job_id, key))
    return SourceAnswer(url=url, filename=filename, size=size)


@router.post("/jobs/{job_id}/outputs", summary="Offer an output", responses=_FENCED)
async def offer_output(
    job_id: JobId, body: OutputOffer, key: WorkerKey, gateway: GatewayDep
) -> OutputAnswer:
    claim = gateway.lease(body.lease, job_id, key)
    stored_key, stored = await gateway.offer_output(claim, body.sha256, body.filename)
    url = None if stored else f"/api/worker/jobs/{job_id}/outputs/{body.sha256}"
    return OutputAnswer(key=stored_key, stored=stored, upload_url=url)


@router.put(
    "/jobs/{job_id}/outputs/{sha256}",
    summary="Stream an output's bytes (lease in X-Reelscribe-Lease)",
    openapi_extra={"requestBody": {"required": True, "content": {
        "application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}}},
    responses=_FENCED,
)  # fmt: skip
async def put_output(
    job_id: JobId,
    sha256: Annotated[str, Path(pattern=r"^[0-9a-f]{64}$")],
    request: Request,
    key: WorkerKey,
    gateway: GatewayDep,
    lease: Annotated[str, Header(alias=LEASE_HEADER, max_length=LEASE_MAX_CHARS)],
    filename: Annotated[str, Header(alias="X-Filename", max_length=1024)],
    content_type: Annotated[str, Header(alias="Content-Type", max_length=255)],
) -> dict[str, object]:
    claim = gateway.lease(lease, job_id, key)
    return await gateway.receive_output(
        claim, sha256, unquote(filename), content_type, request.stream()
    )


@router.post("/jobs/{job_id}/complete", status_code=204, summary="Done", responses=_FENCED)
async def complete(
    job_id: JobId, body: CompleteRequest, key: WorkerKey, gateway: GatewayDep
) -> Response:
    await gateway.complete(gateway.lease(body.lease, job_id, key), body.result)
    return Response(status_code=204)


@router.post("/jobs/{job_id}/fail", summary="The attempt failed", responses=_FENCED)
async def fail(
    job_id: JobId, body: FailRequest, key: WorkerKey, gateway: GatewayDep
) -> dict[str, str]:
    error = RemoteFailure(body.code, body.message, retryable=body.retryable,
                          user_fault=body.user_fault)  # fmt: skip
    status = await gateway.fail(gateway.lease(body.lease, job_id, key), error)
    return {"status": status.value}


@router.post(
    "/jobs/{job_id}/release", status_code=204, summary="Give the job back (shutdown)",
    responses=_FENCED,
)  # fmt: skip
async def release(job_id: JobId, body: LeaseRef, key: WorkerKey, gateway: GatewayDep) -> Response:
    await gateway.release(gateway.lease(body.lease, job_id, key))
    return Response(status_code=204)


@router.post(
    "/jobs/{job_id}/cancelled", status_code=204, summary="Stopped on a cancel request",
    responses=_FENCED,
)  # fmt: skip
async def cancelled(job_id: JobId, body: LeaseRef, key: WorkerKey, gateway: GatewayDep) -> Response:
    await gateway.cancelled(gateway.lease(body.lease, job_id, key))
    return Response(status_code=204)


@router.put("/workers/{worker_id}", status_code=204, summary="The worker's liveness beat")
async def beat(
    worker_id: WorkerId, body: WorkerBeatIn, key: WorkerKey, gateway: GatewayDep
) -> Response:
    await gateway.publish(WorkerBeat(
        id=worker_id, host=body.host, pid=body.pid, slots=body.slots, busy=body.busy,
        claim_age=body.claim_age, claim_failing=body.claim_failing,
    ))  # fmt: skip
    return Response(status_code=204)


@router.delete("/workers/{worker_id}", status_code=204, summary="The worker stopped")
async def forget(worker_id: WorkerId, key: WorkerKey, gateway: GatewayDep) -> Response:
    await gateway.forget(worker_id)
    return Response(status_code=204)
