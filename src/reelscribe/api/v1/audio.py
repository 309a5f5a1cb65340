"""``POST /v1/audio/transcriptions`` and ``/v1/audio/translations``: OpenAI's audio API.

The multipart form is read after the key is checked (FastAPI would read a declared
form before any dependency, so an unauthenticated caller could make the server spool
a whole file first). Each request is a job (see
:mod:`reelscribe.service.transcriptions`); the answer waits for it, or streams it as
server-sent events with ``stream=true``.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Annotated, Any, Literal, get_args

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, PlainTextResponse
from sse_starlette import EventSourceResponse, ServerSentEvent
from starlette.datastructures import FormData, UploadFile
from starlette.responses import Response

from reelscribe.api.deps import KeysDep, get_services
from reelscribe.api.errors import status_for
from reelscribe.api.v1.errors import error_type
from reelscribe.errors import (
    ForbiddenError,
    InvalidParameterError,
    ReelscribeError,
    UnauthorizedError,
    UploadTooLargeError,
)
from reelscribe.service import openai_formats
from reelscribe.service.auth import ANONYMOUS, ApiKey
from reelscribe.service.transcriptions import (
    RESPONSE_FORMATS,
    Granularity,
    ResponseFormat,
    TranscriptionRequest,
    TranscriptionService,
)

router = APIRouter(prefix="/v1", tags=["openai"], include_in_schema=False)

_CHUNK = 1 << 20
_GRANULARITIES: tuple[Granularity, ...] = get_args(Granularity)


async def openai_key(request: Request, keys: KeysDep) -> ApiKey:
    """The caller, with the rate limit of ``/api``. OpenAI clients always send a key
    (they refuse to start without one), so on a keyless server any key is accepted
    as the anonymous caller: keyless access already allows everything, on loopback."""
    scheme, _, secret = request.headers.get("authorization", "").partition(" ")
    token = secret.strip() if scheme.lower() == "bearer" else None
    token = token or request.headers.get("x-api-key")
    try:
        key = await keys.authenticate(token)
    except UnauthorizedError:
        if not keys.settings.allow_anonymous:
            raise
        key = ANONYMOUS
    request.state.key_id = key.id  # for the access log: the key's id, never its secret
    keys.check_rate(key)
    return key


async def transcriber(key: Annotated[ApiKey, Depends(openai_key)]) -> ApiKey:
    # A request submits a job and reads its result: both scopes of /api/jobs.
    for scope in ("submit", "read"):
        if not key.allows(scope):
            raise ForbiddenError(f"this API key lacks the {scope!r} scope")
    return key


async def reader(key: Annotated[ApiKey, Depends(openai_key)]) -> ApiKey:
    if not key.allows("read"):
        raise ForbiddenError("this API key lacks the 'read' scope")
    return key


TranscribeKey = Annotated[ApiKey, Depends(transcriber)]
ReaderKey = Annotated[ApiKey, Depends(reader)]


def transcriptions(request: Request) -> TranscriptionService:
    services = get_services(request)
    return TranscriptionService(services.jobs, services.uploads)


def _text(form: FormData, name: str) -> str | None:
    value = form.get(name)
    if value is None:
        return None
    if not isinstance(value, str):
        raise InvalidParameterError(f"'{name}' must be a text field, not a file", param=name)
    return value.strip() or None


def parse_form(
    form: FormData, task: Literal["transcribe", "translate"]
) -> tuple[TranscriptionRequest, UploadFile]:
    """The request a form asks for; OpenAI's rules, OpenAI's messages."""
    file = form.get("file")
    if not isinstance(file, UploadFile):
        raise InvalidParameterError("a 'file' (the audio, as a multipart file) is required",
                                    param="file")  # fmt: skip
    model = _text(form, "model")
    if model is None:
        raise InvalidParameterError("'model' is required (e.g. whisper-1)", param="model")
    response_format = _text(form, "response_format") or "json"
    if response_format not in RESPONSE_FORMATS:
        raise InvalidParameterError(
            f"'{response_format}' is not one of {', '.join(RESPONSE_FORMATS)} - 'response_format'",
            param="response_format",
        )
    temperature = None
    if (raw := _text(form, "temperature")) is not None:
        try:
            temperature = float(raw)
        except ValueError:
            temperature = -1.0
        if not 0.0 <= temperature <= 1.0:
            raise InvalidParameterError("'temperature' must be a number from 0 to 1",
                                        param="temperature")  # fmt: skip
    granularities: set[Granularity] = set()
    for name in ("timestamp_granularities[]", "timestamp_granularities"):
        for value in form.getlist(name):
            if value not in _GRANULARITIES:
                raise InvalidParameterError(
                    f"'{value}' is not one of word, segment - 'timestamp_granularities'",
                    param="timestamp_granularities",
                )
            granularities.add(value)
    if granularities and response_format != "verbose_json":
        raise InvalidParameterError(
            "timestamp_granularities needs response_format 'verbose_json'",
            param="timestamp_granularities",
        )
    stream = (_text(form, "stream") or "false").lower()
    if stream not in ("true", "false"):
        raise InvalidParameterError("'stream' must be true or false", param="stream")
    language = _text(form, "language")
    if task == "translate":
        language = None  # the spoken language is detected; the text is English
    elif language is not None and not (language.isascii() and language.isalpha()):
        raise InvalidParameterError(f"'{language}' is not an ISO-639-1 language code",
                                    param="language")  # fmt: skip
    request = TranscriptionRequest(
        task=task,
        model=model,
        language=language.lower() if language else None,
        prompt=_text(form, "prompt"),
        response_format=response_format,
        temperature=temperature,
        granularities=frozenset(granularities),
        stream=stream == "true",
    )
    return request, file


async def _chunks(file: UploadFile) -> AsyncIterator[bytes]:
    while block := await file.read(_CHUNK):
        yield block


def render(request: TranscriptionRequest, transcript: Any, job_id: str) -> Response:
    headers = {"X-Reelscribe-Job": job_id}
    fmt: ResponseFormat = request.response_format
    if fmt == "json":
        return JSONResponse(openai_formats.as_json(transcript), headers=headers)
    if fmt == "verbose_json":
        body = openai_formats.as_verbose_json(transcript, request.granularities)
        return JSONResponse(body, headers=headers)
    text = openai_formats.as_text(transcript, fmt)
    return PlainTextResponse(text, media_type=openai_formats.MEDIA_TYPES[fmt], headers=headers)


def _error_event(exc: ReelscribeError) -> ServerSentEvent:
    # OpenAI's clients raise an APIError for an event whose data has an "error".
    status = status_for(exc)
    error = {"message": exc.message, "type": error_type(status, exc.code),
             "param": None, "code": exc.code}  # fmt: skip
    return ServerSentEvent(json.dumps({"type": "error", "error": error}), event="error")


async def _stream(
    service: TranscriptionService, job_id: str, key: ApiKey
) -> AsyncIterator[ServerSentEvent]:
    try:
        row = await service.wait(job_id, key)
        transcript = await service.transcript(row)
    except ReelscribeError as exc:
        yield _error_event(exc)
        return
    for event in openai_formats.stream_events(transcript):
        yield ServerSentEvent(json.dumps(event), event=event["type"])


async def _transcribe(
    request: Request, key: ApiKey, task: Literal["transcribe", "translate"]
) -> Response:
    service = transcriptions(request)
    length = request.headers.get("content-length", "")
    limit = service.settings.max_upload_bytes
    if length.isascii() and length.isdigit() and int(length) > limit:
        raise UploadTooLargeError(f"request of {length} bytes over the upload limit of {limit}")
    async with request.form(max_files=1, max_fields=50) as form:
        wanted, file = parse_form(form, task)
        row = await service.submit(
            wanted, _chunks(file), caller=key, filename=file.filename,
            content_type=file.content_type,
        )  # fmt: skip
    if wanted.stream:
        # Pings keep proxies from closing the stream while the job runs.
        return EventSourceResponse(_stream(service, row.id, key), ping=15,
                                   headers={"X-Reelscribe-Job": row.id})  # fmt: skip
    ended = await service.wait(row.id, key)
    transcript = await service.transcript(ended)
    return render(wanted, transcript, row.id)


@router.post("/audio/transcriptions", summary="Transcribe audio (OpenAI-compatible)")
async def create_transcription(request: Request, key: TranscribeKey) -> Response:
    return await _transcribe(request, key, "transcribe")


@router.post("/audio/translations", summary="Translate audio into English (OpenAI-compatible)")
async def create_translation(request: Request, key: TranscribeKey) -> Response:
    return await _transcribe(request, key, "translate")
