"""One error shape for every failure, and the only place errors become status codes.

``{"error": {"code": "...", "message": "...", "details": ...}}``. A
:class:`~reelscribe.errors.ReelscribeError` answers with the ``status`` its class in
the tree carries (a 4xx when the caller caused it, never a 500); a transient fault is a 503 with
``Retry-After``: a retryable ReelscribeError, and any exception that says the database,
queue or storage could not be reached (connection refused or reset, timeout, server
restarting: :func:`~reelscribe.backends.faults.is_transient`), code ``unavailable``.
Anything else unexpected is a 500 with code ``internal`` and no internals in the message.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect

from reelscribe.api.schemas import ErrorBody
from reelscribe.backends.faults import describe, is_transient
from reelscribe.errors import (
    RangeNotSatisfiableError,
    RateLimitedError,
    ReelscribeError,
    UploadOffsetError,
    UploadPartsMissingError,
)

log = logging.getLogger("reelscribe.api")

_DESCRIPTIONS = {
    400: "Bad input (code says what)",
    401: "No API key, or an unknown or revoked one",
    403: "The key lacks the scope, or a download link is expired or forged",
    404: "Not found (or not yours)",
    409: "Conflict with the resource's state",
    410: "Gone",
    413: "Too large",
    416: "Range not satisfiable",
    422: "Request validation failed (code validation_error)",
    429: "Rate limit, quota or queue depth reached; see Retry-After",
    503: "A dependency is unavailable; try again later",
}


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` entries for these statuses, all with :class:`ErrorBody`."""
    entries: dict[int | str, dict[str, Any]] = {}
    for status in statuses:
        entry: dict[str, Any] = {"model": ErrorBody, "description": _DESCRIPTIONS[status]}
        if status in (429, 503):
            entry["headers"] = {
                "Retry-After": {"description": "Seconds to wait", "schema": {"type": "integer"}}
            }
        entries[status] = entry
    return entries


def status_for(exc: ReelscribeError) -> int:
    """The status the error's class (or, for a foreign code, the instance) carries."""
    return exc.status


def error_response(
    status: int,
    code: str,
    message: str,
    details: Any = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    body = ErrorBody.model_validate(
        {"error": {"code": code, "message": message, "details": details}}
    )
    return JSONResponse(body.model_dump(mode="json"), status_code=status, headers=headers)


async def _reelscribe_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ReelscribeError)
    status = status_for(exc)
    headers: dict[str, str] = {}
    details: Any = None
    if isinstance(exc, RateLimitedError):
        headers["Retry-After"] = str(exc.retry_after)
        details = {"retry_after": exc.retry_after}
    elif isinstance(exc, UploadOffsetError):
        headers["Upload-Offset"] = str(exc.offset)
        details = {"offset": exc.offset}
    elif isinstance(exc, UploadPartsMissingError) and exc.missing is not None:
        details = {"missing": exc.missing}
    elif isinstance(exc, RangeNotSatisfiableError) and exc.size is not None:
        headers["Content-Range"] = f"bytes */{exc.size}"
    if status == 401:
        headers["WWW-Authenticate"] = "Bearer"
    if status >= 500:
        log.error("%s: %s", exc.code, exc.message, exc_info=exc)
    if exc.retryable:
        headers.setdefault("Retry-After", str(RETRY_AFTER))
    return error_response(status, exc.code, exc.message, details, headers)


def _clean(errors: Any) -> Any:
    # ``ctx`` may hold the exception a validator raised: keep its text only.
    cleaned = []
    for error in errors:
        item = {k: v for k, v in error.items() if k not in ("ctx", "url")}
        if "ctx" in error:
            item["ctx"] = {k: str(v) for k, v in error["ctx"].items()}
        cleaned.append(item)
    return jsonable_encoder(cleaned)


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = list(exc.errors())
    if any(error.get("type") == "json_invalid" for error in errors):
        return error_response(400, "invalid_json", "the request body is not valid JSON")
    return error_response(
        422, "validation_error", "the request does not match the schema", _clean(errors)
    )


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, HTTPException)
    codes = {404: "not_found", 405: "method_not_allowed", 413: "too_large"}
    code = codes.get(exc.status_code, f"http_{exc.status_code}")
    headers = dict(exc.headers or {})
    return error_response(exc.status_code, code, str(exc.detail), None, headers)


async def _disconnected(request: Request, exc: Exception) -> JSONResponse:
    # The client went away mid-body (a broken upload): nobody reads this answer, and
    # it is not a server fault worth a traceback.
    log.info("client disconnected during %s %s", request.method, request.url.path)
    return error_response(400, "client_disconnected", "the client disconnected")


#: Seconds a client is told to wait after a transient fault.
RETRY_AFTER = 5


class _OutageLog:
    """One warning per ``every`` seconds during an outage (with how many requests got
    a 503 meanwhile), not one per request; the rest at debug level."""

    def __init__(self, every: float = 10.0) -> None:
        self.every = every
        self.last = float("-inf")
        self.suppressed = 0

    def log(self, message: str) -> None:
        now = time.monotonic()
        if now - self.last < self.every:
            self.suppressed += 1
            log.debug("%s", message)
            return
        more = f" (and {self.suppressed} more 503s)" if self.suppressed else ""
        log.warning("%s%s", message, more)
        self.last, self.suppressed = now, 0


_outage_log = _OutageLog()


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    if is_transient(exc):
        _outage_log.log(f"{request.method} {request.url.path}: a dependency is unavailable: "
                        f"{describe(exc)}")  # fmt: skip
        return error_response(
            503, "unavailable", "a dependency is unavailable; try again later",
            {"retry_after": RETRY_AFTER}, {"Retry-After": str(RETRY_AFTER)},
        )  # fmt: skip
    log.exception("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return error_response(500, "internal", "internal server error")


def _transient_classes() -> list[type[Exception]]:
    """The exception types a down database, Redis or S3 raises. Handled inside the
    app (not by the outermost Exception handler, which re-raises to the server after
    answering): the 503 is the whole story, no traceback per request."""
    classes: list[type[Exception]] = [OSError, TimeoutError, EOFError]
    from reelscribe.backends.db.engine import DATABASE_ERRORS

    classes += DATABASE_ERRORS
    try:
        from redis.exceptions import RedisError
    except ImportError:  # the redis extra is not installed
        pass
    else:
        classes.append(RedisError)
    try:
        from botocore.exceptions import BotoCoreError
    except ImportError:  # the s3 extra is not installed
        pass
    else:
        classes.append(BotoCoreError)
    return classes


def install(app: FastAPI) -> None:
    for cls in _transient_classes():
        app.add_exception_handler(cls, _unexpected)
    app.add_exception_handler(ReelscribeError, _reelscribe_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(HTTPException, _http_error)
    app.add_exception_handler(ClientDisconnect, _disconnected)
    app.add_exception_handler(Exception, _unexpected)
