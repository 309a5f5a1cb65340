"""OpenAI's error shape on ``/v1``: ``{"error": {"message", "type", "param", "code"}}``.

The status codes stay decided in one place (:mod:`reelscribe.api.errors`): every
exception handler the app has is wrapped, and for a path under ``/v1/`` its answer is
rewritten into OpenAI's shape, with OpenAI's ``type`` and, where they differ, OpenAI's
codes (``invalid_api_key``, ``rate_limit_exceeded``, ...), so OpenAI clients raise
their usual exceptions. Validation errors are 400 there (OpenAI has no 422). An error
after a job ran (it failed, or the wait timed out) says ``x-should-retry: false``, which
OpenAI's clients obey: they retry 5xx by themselves, and each retry would be a new job.
"""

from __future__ import annotations

import inspect
import json
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.responses import Response

PREFIX = "/v1/"

#: OpenAI's error codes where ours differ.
_CODES = {
    "unauthorized": "invalid_api_key",
    "rate_limited": "rate_limit_exceeded",
    "quota_exceeded": "insufficient_quota",
    "validation_error": "invalid_value",
}
_TYPES_BY_CODE = {
    "rate_limited": "requests",
    "queue_full": "requests",
    "quota_exceeded": "insufficient_quota",
    "transcription_timeout": "timeout",
}

Handler = Callable[[Request, Any], Response | Awaitable[Response]]


def error_type(status: int, code: str) -> str:
    if code in _TYPES_BY_CODE:
        return _TYPES_BY_CODE[code]
    if status >= 500:
        return "server_error"
    return "invalid_request_error"


def _param(exc: Exception) -> str | None:
    param = getattr(exc, "param", None)
    if isinstance(param, str):
        return param
    if isinstance(exc, RequestValidationError):
        for error in exc.errors():
            loc = [str(part) for part in error.get("loc", ()) if part != "body"]
            if loc:
                return loc[-1]
    return None


def openai_error(
    status: int,
    code: str,
    message: str,
    *,
    param: str | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    body = {
        "error": {
            "message": message,
            "type": error_type(status, code),
            "param": param,
            "code": _CODES.get(code, code),
        }
    }
    return JSONResponse(body, status_code=status, headers=headers)


def translate(response: Response, exc: Exception) -> Response:
    """Our error response, in OpenAI's shape."""
    try:
        error: dict[str, Any] = json.loads(bytes(response.body))["error"]
        code, message = str(error["code"]), str(error["message"])
    except (ValueError, KeyError, TypeError):
        return response
    status = 400 if response.status_code == 422 else response.status_code
    headers = {k: v for k, v in response.headers.items()
               if k.lower() not in ("content-length", "content-type")}  # fmt: skip
    if getattr(exc, "job_id", None) is not None:  # a job ran: a retry would run another
        headers["x-should-retry"] = "false"
    return openai_error(status, code, message, param=_param(exc), headers=headers)


def _wrapped(handler: Handler) -> Handler:
    async def handle(request: Request, exc: Any) -> Response:
        answer = handler(request, exc)
        response = await answer if inspect.isawaitable(answer) else answer
        if request.url.path.startswith(PREFIX):
            return translate(response, exc)
        return response

    return handle


def install(app: FastAPI) -> None:
    """Wraps the app's exception handlers; call after :func:`reelscribe.api.errors.install`."""
    for key, handler in list(app.exception_handlers.items()):
        app.exception_handlers[key] = _wrapped(handler)
