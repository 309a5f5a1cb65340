"""What the HTTP API reads and writes: pydantic models, so the OpenAPI document is
exactly what is served (``response_model`` validates every answer against them)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator

from reelscribe.api.estimate_schemas import ActualPublic, EstimatePublic
from reelscribe.backends.db import JobStatus
from reelscribe.options import SpeakerName
from reelscribe.service.auth import Scope
from reelscribe.service.spec import JobSpec, PriorityName

#: A media type with optional parameters, as storage accepts it.
CONTENT_TYPE_PATTERN = (
    r"^[A-Za-z0-9!#$&^_.+-]+/[A-Za-z0-9!#$&^_.+-]+"
    r"([ \t]*;[ \t]*[A-Za-z0-9!#$&^_.+-]+=(\"[^\"\x00-\x1f\x7f]*\"|[A-Za-z0-9!#$&^_.+-]+))*$"
)

#: The body of ``POST /api/jobs`` is the stored job spec itself.
JobCreate = JobSpec


class ErrorDetail(BaseModel):
    code: str = Field(examples=["invalid_input"], description="Stable, machine-readable.")
    message: str = Field(description="For people; may change.")
    details: Any = Field(None, description="Extra facts, e.g. validation errors or an offset.")


class ErrorBody(BaseModel):
    """Every error the API returns has this shape."""

    error: ErrorDetail


class JobLinks(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    self_: str = Field(alias="self")
    events: str
    steps: str
    result: str
    cancel: str


class JobErrorPublic(BaseModel):
    code: str
    message: str


class JobPublic(BaseModel):
    id: str
    status: JobStatus
    priority: PriorityName
    progress: float = Field(ge=0, le=100, description="Percent done (estimated).")
    stage: str | None = Field(description="The pipeline step running now, or the last one.")
    message: str | None
    attempts: int
    max_attempts: int
    cancel_requested: bool
    error: JobErrorPublic | None
    created_at: datetime
    updated_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    expires_at: datetime | None = Field(description="When a done job's results go.")
    spec: JobSpec
    links: JobLinks
    estimate: EstimatePublic | None = Field(
        None, description="The time and cost estimated at submission (POST /api/estimates)."
    )
    actual: ActualPublic | None = Field(
        None, description="What the finished job took and cost, beside the estimate."
    )


class JobList(BaseModel):
    items: list[JobPublic]
    next_cursor: str | None = Field(description="Pass as ?cursor= for the next page.")


class StepPublic(BaseModel):
    name: str
    status: Literal["running", "done", "interrupted"]
    attempt: int
    started_at: datetime
    finished_at: datetime | None
    duration_seconds: float | None
    estimate_seconds: float | None = Field(description="Median of this step in recent jobs.")
    remaining_seconds: float | None


class StepList(BaseModel):
    job_id: str
    status: JobStatus
    steps: list[StepPublic]


class OutputPublic(BaseModel):
    name: str
    url: str = Field(description="A signed download link; expires at links_expire_at.")
    filename: str
    size: int | None
    sha256: str | None
    content_type: str | None


class ResultPublic(BaseModel):
    job_id: str
    outputs: list[OutputPublic]
    links_expire_at: datetime
    expires_at: datetime | None
    transcript: dict[str, Any] | None = Field(
        description="The JSON transcript (reelscribe.transcript) when 'json' was asked for."
    )
    summary: dict[str, Any] = Field(description="Time range, media facts, timings.")
    estimate: EstimatePublic | None = Field(None, description="Estimated at submission.")
    actual: ActualPublic | None = Field(None, description="What the job took and cost.")


class UploadPublic(BaseModel):
    id: str
    filename: str
    content_type: str | None
    state: Literal["open", "presigned", "complete"] = Field(
        description="open: a resumable upload receiving chunks; presigned: a direct upload "
        "whose parts go straight to storage; complete: usable as a job's source."
    )
    size: int | None = Field(description="Total bytes (declared, for a resumable upload).")
    offset: int = Field(description="Bytes received so far.")
    sha256: str | None
    created_at: datetime
    updated_at: datetime


class ResumableCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    size: int = Field(ge=1, description="Total bytes that will be sent.")
    filename: str = Field("upload", min_length=1, max_length=255)
    content_type: str | None = Field(None, max_length=255, pattern=CONTENT_TYPE_PATTERN)


class PresignedCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    size: int = Field(ge=1, description="Total bytes of the file.")
    sha256: str = Field(
        pattern=r"^[0-9a-fA-F]{64}$", description="Hex SHA-256 of the file; checked at completion."
    )
    filename: str = Field("upload", min_length=1, max_length=255)
    content_type: str | None = Field(None, max_length=255, pattern=CONTENT_TYPE_PATTERN)


class PresignedPart(BaseModel):
    number: int = Field(ge=1, description="Part number, from 1.")
    start: int = Field(ge=0, description="Offset of the part's first byte in the file.")
    end: int = Field(ge=0, description="Offset of the part's last byte (inclusive).")
    size: int = Field(ge=1)
    received: bool = Field(description="The part is in storage, whole.")
    url: str | None = Field(
        description="Where to PUT the part's bytes (exactly size bytes, no credentials); "
        "null once it arrived."
    )


class PresignedUpload(BaseModel):
    upload: UploadPublic
    method: Literal["PUT"] = "PUT"
    part_size: int = Field(description="Bytes per part; the last part may be shorter.")
    parts: list[PresignedPart]
    expires_at: datetime = Field(description="When the part URLs stop working.")
    parts_url: str = Field(description="GET: what arrived, with fresh URLs for the rest.")
    complete_url: str = Field(description="POST once every part is sent.")


class SpeakerRename(BaseModel):
    """New display names by speaker id; speakers not named keep their names."""

    model_config = ConfigDict(extra="forbid")

    # Ids are only checked against the job's speakers (400 for one it does not have).
    names: dict[Annotated[str, StringConstraints(min_length=1, max_length=64)], SpeakerName] = (
        Field(min_length=1, max_length=64, examples=[{"SPEAKER_00": "Diane"}])
    )


class SegmentText(BaseModel):
    """The corrected text of one segment, by its position in the transcript."""

    model_config = ConfigDict(extra="forbid")

    index: int = Field(ge=0, le=1_000_000, description="The segment's position, from 0.")
    text: str = Field(max_length=4000, description="Its corrected text; empty clears it.")


class TranscriptEdit(BaseModel):
    """Segment corrections; segments not listed stay as they are."""

    model_config = ConfigDict(extra="forbid")

    # An index named twice is refused with 400 (checked against the job, like an index
    # the transcript does not have), not by the schema. The JSON body limit
    # (REELSCRIBE_MAX_JSON_BYTES) may answer 413 first for a body near these maxima.
    segments: list[SegmentText] = Field(
        min_length=1, max_length=1000, examples=[[{"index": 0, "text": "And so, my fellow"}]]
    )


class ApiKeyCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200)
    scopes: list[Scope] = Field(min_length=1)
    rate_limit_per_minute: int | None = Field(None, ge=1, le=1_000_000)
    quota_audio_minutes_per_day: float | None = Field(None, gt=0, le=1e9)

    @field_validator("rate_limit_per_minute", "quota_audio_minutes_per_day", mode="before")
    @classmethod
    def _not_a_boolean(cls, value: Any) -> Any:
        # Lax mode would take JSON true as 1; the schema says number.
        if isinstance(value, bool):
            raise ValueError("a number is required, not a boolean")
        return value


class ApiKeyPublic(BaseModel):
    id: str
    name: str
    scopes: list[Scope]
    rate_limit_per_minute: int | None
    quota_audio_minutes_per_day: float | None
    created_at: datetime | None
    revoked_at: datetime | None


class ApiKeyCreated(ApiKeyPublic):
    secret: str = Field(description="Shown once; only its SHA-256 is stored.")


class Health(BaseModel):
    status: Literal["ok"]


class Check(BaseModel):
    ok: bool
    seconds: float
    error: str | None = None
    #: What the check found (the workers check: live workers and their claim ages).
    details: dict[str, Any] | None = None


class Readiness(BaseModel):
    status: Literal["ready", "unready"]
    checks: dict[str, Check]


class WebhookAttemptPublic(BaseModel):
    at: datetime
    status_code: int | None
    error: str | None
    duration_ms: float


class WebhookDeliveryPublic(BaseModel):
    id: str
    event: str
    url: str
    state: str = Field(description="pending, delivered or failed (given up)")
    payload: dict[str, Any] = Field(description="The body sent")
    created_at: datetime
    delivered_at: datetime | None
    next_attempt_at: datetime | None
    attempts: list[WebhookAttemptPublic]
