"""The bodies of ``/api/worker/…``: what a remote worker and the API send each other.

Shared by the server (:mod:`reelscribe.api.worker`) and the client
(:mod:`reelscribe.hub.remote`), so the two cannot drift apart. ``lease`` is the claim,
signed by the API (see :mod:`reelscribe.service.gateway`): the worker hands it back
with every call about the job and cannot alter it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

#: A signed lease is ~300 characters; the bound keeps forged ones cheap to refuse.
LEASE_MAX_CHARS = 2048
#: Header that carries the lease where the body is a file (``PUT …/outputs/{sha256}``).
LEASE_HEADER = "X-Reelscribe-Lease"
#: The workers table holds 128 characters of id, "remote:" and the worker's own.
WORKER_ID_MAX_CHARS = 120


class ClaimRequest(BaseModel):
    worker_id: str = Field(
        min_length=1, max_length=WORKER_ID_MAX_CHARS, description="The worker's own id."
    )
    lease_seconds: float = Field(10.0, ge=2, le=3600, description="Lease length asked for.")
    wait: float = Field(10.0, ge=0, le=30, description="Seconds to wait for a due job.")


class LeaseRef(BaseModel):
    lease: str = Field(min_length=1, max_length=LEASE_MAX_CHARS, description="The signed claim.")


class ClaimedJob(BaseModel):
    id: str
    token: int = Field(description="The fencing token of this lease.")
    attempt: int
    max_attempts: int
    priority: str
    lease_seconds: float
    lease_expires_at: datetime
    reclaimed: bool
    spec: dict[str, Any]
    lease: str = Field(description="Send back with every call about this job.")


class ClaimAnswer(BaseModel):
    job: ClaimedJob | None = Field(description="None when no job became due while waiting.")


class HeartbeatAnswer(BaseModel):
    cancel_requested: bool


class StepEventIn(BaseModel):
    # Only step events (and "progress", which carries a transcript's warnings, see
    # Worker's _Live.warnings): transitions are the queue's to write.
    kind: Literal["step_start", "step_finish", "progress"]
    data: dict[str, Any] = Field(default_factory=dict)


class ProgressReport(LeaseRef):
    progress: float = Field(ge=0, le=100)
    stage: str | None = Field(None, max_length=64)
    message: str = Field("", max_length=2000)
    events: list[StepEventIn] = Field(default_factory=list, max_length=200)


class SourceAnswer(BaseModel):
    url: str = Field(description="A signed link that downloads the upload, no key needed.")
    filename: str
    size: int | None


class OutputOffer(LeaseRef):
    name: str = Field(min_length=1, max_length=64, description="The output (srt, clip, …).")
    filename: str = Field(min_length=1, max_length=255)
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    size: int = Field(ge=0)
    content_type: str = Field(min_length=1, max_length=255)


class OutputAnswer(BaseModel):
    key: str
    stored: bool = Field(description="Already stored (an earlier attempt made the same file).")
    upload_url: str | None = Field(
        description="Where to PUT the file when it is not stored: the API's own endpoint "
        "(lease in the X-Reelscribe-Lease header)."
    )


class CompleteRequest(LeaseRef):
    result: dict[str, Any]


class FailRequest(LeaseRef):
    code: str = Field(min_length=1, max_length=64)
    message: str = Field(max_length=4000)
    retryable: bool
    user_fault: bool = False


class WorkerBeatIn(BaseModel):
    # Bounded to what the workers table's integer columns hold.
    host: str = Field(max_length=255)
    pid: int = Field(ge=0, le=2**31 - 1)
    slots: int = Field(ge=0, le=100_000)
    busy: int = Field(ge=0, le=100_000)
    claim_age: float | None = Field(None, ge=0, le=10**9)
    claim_failing: bool = False
