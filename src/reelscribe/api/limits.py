"""Bounds on what a request may make the API hold: the size of JSON bodies, and how
much of a caller's input an error body may repeat.

:class:`BodyLimit` is ASGI middleware. It refuses a body whose ``Content-Length`` is
over ``Settings.max_json_bytes`` before reading a byte of it, and counts the bytes of
any other body as they arrive, so a chunked body is cut off at the limit: it is never
read whole, parsed or validated, and the event loop is not held up by it. The answer is
``413`` with code ``request_too_large`` and ``Connection: close`` (the rest of the body
is never read). The streaming upload endpoints and direct-upload parts, which enforce
their own limits while writing to storage, are exempt.

Validation errors name the offending ``input``; :func:`install` wraps the app's 422
handler so that inputs larger than :data:`MAX_ECHO_BYTES` are left out of the answer
(a 16 MiB ``metadata`` value must not come back in the error).
"""

from __future__ import annotations

import contextlib
import inspect
import json
import re
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from reelscribe.api.errors import error_response

#: Largest ``input`` a validation error repeats back, as compact JSON.
MAX_ECHO_BYTES = 256
CODE = "request_too_large"

#: Bodies streamed to storage under their own limit (``max_upload_bytes``, or a direct
#: upload's signed part size).
_STREAMED = (
    ("POST", re.compile(r"^/api/uploads/?$")),
    ("PATCH", re.compile(r"^/api/uploads/[^/]+/?$")),
    # OpenAI-compatible audio: multipart media, bounded by max_upload_bytes.
    ("POST", re.compile(r"^/v1/audio/(transcriptions|translations)/?$")),
    # Parts of direct uploads, written to staging under their own signed size.
    ("PUT", re.compile(r"^/blobs/.")),
)


def is_streamed(method: str, path: str) -> bool:
    return any(method == m and pattern.match(path) for m, pattern in _STREAMED)


class _TooLarge(Exception):
    pass


class BodyLimit:
    """Refuses request bodies over ``max_bytes`` (413) while they arrive."""

    def __init__(self, app: ASGIApp, *, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or is_streamed(scope["method"], scope["path"]):
            await self.app(scope, receive, send)
            return
        declared = _content_length(scope)
        if declared is not None and declared > self.max_bytes:
            await self._refuse(send, declared)
            return
        received = 0
        over = False

        async def counted() -> Message:
            nonlocal received, over
            if over:  # asked again after the refusal: the client is gone as far as we care
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    over = True
                    raise _TooLarge
            return message

        started = False

        async def guarded_send(message: Message) -> None:
            # The app turns the aborted read into an error answer of its own (FastAPI
            # reports any body error as 400); ours replaces it.
            nonlocal started
            if over:
                if not started:
                    started = True
                    await self._refuse(send, None)
                return
            await send(message)

        with contextlib.suppress(_TooLarge):
            await self.app(scope, counted, guarded_send)
        if over and not started:
            await self._refuse(send, None)

    async def _refuse(self, send: Send, declared: int | None) -> None:
        size = f"{declared} bytes" if declared is not None else "the request body"
        response = error_response(
            413,
            CODE,
            f"{size} is over the limit of {self.max_bytes} bytes for JSON requests",
            {"limit": self.max_bytes},
            {"Connection": "close"},
        )
        await response({"type": "http"}, _no_receive, send)


async def _no_receive() -> Message:
    return {"type": "http.disconnect"}


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers") or ():
        if name == b"content-length":
            text = value.decode("latin-1").strip()
            return int(text) if text.isascii() and text.isdigit() else None
    return None


def _small(value: Any) -> bool:
    try:
        text = json.dumps(value, default=str, separators=(",", ":"))
    except (TypeError, ValueError):
        return False
    return len(text.encode()) <= MAX_ECHO_BYTES


def trim_inputs(errors: Any) -> list[dict[str, Any]]:
    """Validation errors with large ``input`` values left out."""
    trimmed = []
    for error in errors:
        item = dict(error)
        if "input" in item and not _small(item["input"]):
            del item["input"]
        trimmed.append(item)
    return trimmed


def install(app: FastAPI, *, max_json_bytes: int) -> None:
    """Adds :class:`BodyLimit` and wraps the installed 422 handler (call after
    :func:`reelscribe.api.errors.install`)."""
    inner = app.exception_handlers[RequestValidationError]

    async def validation_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        answer = inner(request, RequestValidationError(trim_inputs(exc.errors())))
        return await answer if inspect.isawaitable(answer) else answer

    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_middleware(BodyLimit, max_bytes=max_json_bytes)
