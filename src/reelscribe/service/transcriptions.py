"""Transcriptions on request: the rules behind the OpenAI-compatible ``/v1/audio`` API.

A request becomes an ordinary job: its file goes through the upload service, the job
through the job service (so the same checks, quota and queue apply, and the job shows
in the job list and the web UI), and a worker runs it. The caller then waits here, up
to ``Settings.openai_wait_seconds``, woken by the in-process change notifications
(``Runtime.changes``, when the worker shares the process) or else by a poll of the job
row, and gets the job's JSON transcript back as a :class:`~reelscribe.models.Transcript`.

Model names: ``whisper-1`` (what OpenAI clients send) means the server's default model;
other names must be models this server has (the default, installed packaged models and
hub models already downloaded), else :class:`ModelNotFoundError`.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterable
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import ValidationError

from reelscribe.asr.catalog import allowed_models
from reelscribe.backends.db import JobRow, JobStatus
from reelscribe.config import Settings
from reelscribe.errors import (
    InvalidParameterError,
    ModelNotFoundError,
    TranscriptionFailedError,
    TranscriptionTimeoutError,
    error_class,
)
from reelscribe.models import Transcript
from reelscribe.service.auth import ApiKey
from reelscribe.service.jobs import JobService
from reelscribe.service.spec import JobOptions, JobSpec, Source
from reelscribe.service.uploads import UploadService

#: The name OpenAI clients ask for; it stands for the server's default model.
OPENAI_MODEL = "whisper-1"
#: How often a waiting request reads the job row when no notification comes (a worker
#: in another process cannot notify this one).
POLL_SECONDS = 0.5

ResponseFormat = Literal["json", "text", "srt", "vtt", "verbose_json"]
RESPONSE_FORMATS: tuple[ResponseFormat, ...] = ("json", "text", "srt", "vtt", "verbose_json")
Granularity = Literal["word", "segment"]

#: OpenAI's names of the job options a request sets.
_PARAMS = {"initial_prompt": "prompt", "language": "language", "temperature": "temperature",
           "model": "model"}  # fmt: skip


@dataclass(frozen=True, slots=True)
class TranscriptionRequest:
    """One ``/v1/audio/transcriptions`` or ``/v1/audio/translations`` call, validated."""

    task: Literal["transcribe", "translate"]
    model: str
    language: str | None = None
    prompt: str | None = None
    response_format: ResponseFormat = "json"
    temperature: float | None = None
    granularities: frozenset[Granularity] = field(default_factory=frozenset)
    stream: bool = False


def _user_fault(code: str) -> bool:
    """Whether a job's error code names a user's fault: the error class that owns the
    code says so (unknown codes are the server's)."""
    owner = error_class(code)
    return owner is not None and owner.user_fault


def resolve_model(settings: Settings, name: str) -> str | None:
    """The model a request names: None (the default) for ``whisper-1`` or the default's
    own name, the name itself for another model the server has."""
    if name in (OPENAI_MODEL, settings.model):
        return None
    if name in allowed_models(settings):
        return name
    raise ModelNotFoundError(f"The model '{name}' does not exist or you do not have access to it.")


class TranscriptionService:
    def __init__(self, jobs: JobService, uploads: UploadService) -> None:
        self.jobs = jobs
        self.uploads = uploads
        self.runtime = jobs.runtime
        self.settings = jobs.settings

    def options(self, request: TranscriptionRequest) -> JobOptions:
        """The job options a request asks for, checked as the job API checks them."""
        values: dict[str, Any] = {
            "model": resolve_model(self.settings, request.model),
            "language": request.language,
            "task": request.task,
            "initial_prompt": request.prompt,
            "temperature": request.temperature,
        }
        try:
            return JobOptions.model_validate({k: v for k, v in values.items() if v is not None})
        except ValidationError as exc:
            first = exc.errors()[0]
            name = str(first["loc"][0]) if first["loc"] else ""
            param = _PARAMS.get(name, name)
            raise InvalidParameterError(f"invalid '{param}': {first['msg']}", param=param) from exc

    def spec(self, request: TranscriptionRequest, upload_id: str) -> JobSpec:
        """The job a request runs: the JSON transcript only (every response format is
        rendered from it), at ``fast`` priority since a caller is waiting."""
        metadata = {"api": "openai", "model": request.model,
                    "response_format": request.response_format}  # fmt: skip
        return JobSpec(
            source=Source(upload_id=upload_id),
            outputs=["json"],
            options=self.options(request),
            priority="fast",
            metadata=metadata,
        )

    async def submit(
        self,
        request: TranscriptionRequest,
        chunks: AsyncIterable[bytes],
        *,
        caller: ApiKey,
        filename: str | None,
        content_type: str | None,
        length: int | None = None,
    ) -> JobRow:
        """Stores the file and submits its job; the request is checked before the upload."""
        self.options(request)
        upload = await self.uploads.receive(
            chunks, caller=caller, filename=filename, content_type=content_type, length=length
        )
        row, _ = await self.jobs.create(self.spec(request, upload.id), caller=caller)
        return row

    async def wait(self, job_id: str, caller: ApiKey, timeout: float | None = None) -> JobRow:
        """Waits for the job to end, at most ``timeout`` (default: the setting) seconds."""
        limit = self.settings.openai_wait_seconds if timeout is None else timeout
        deadline = time.monotonic() + limit
        while True:
            row = await self.jobs.get(job_id, caller)
            if row.status.is_terminal:
                return row
            left = deadline - time.monotonic()
            if left <= 0:
                raise TranscriptionTimeoutError(
                    f"the transcription did not finish within {limit:g} s; it carries on as "
                    f"job {job_id} (GET /api/jobs/{job_id}/result)",
                    job_id=job_id,
                )
            await self.runtime.changes.wait(job_id, min(POLL_SECONDS, left))

    async def transcript(self, row: JobRow) -> Transcript:
        """The transcript of an ended job, or the job's error."""
        from reelscribe.formats.json_doc import parse

        if row.status is not JobStatus.DONE:
            code = row.error_code or row.status.value
            message = row.error_message or f"the job was {row.status.value}"
            raise TranscriptionFailedError(
                f"{message} (job {row.id})", code=code, user_fault=_user_fault(code), job_id=row.id
            )
        key = (row.result or {}).get("transcript_key")
        if not isinstance(key, str):
            raise TranscriptionFailedError(
                f"job {row.id} has no transcript", code="internal", user_fault=False, job_id=row.id
            )
        data = bytearray()
        async with contextlib.aclosing(self.runtime.storage.get_stream(key)) as chunks:
            async for chunk in chunks:
                data += chunk
        return parse(bytes(data))
