"""One JSON line per request, with secrets scrubbed.

Never logged: the ``Authorization`` and ``X-API-Key`` headers (no header is logged at
all) and credential-like query parameters (``sig`` of download links, tokens,
presigned-URL signatures), whose values become ``"REDACTED"``. The caller is logged
by key id. Uvicorn's own access log prints raw query strings: run uvicorn with
``access_log=False`` and rely on this one.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from reelscribe.redact import scrub_query

log = logging.getLogger("reelscribe.api.access")


class AccessLog:
    """Pure ASGI middleware (a BaseHTTPMiddleware would buffer streamed responses)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        request_id = uuid.uuid4().hex[:16]
        status = 500
        sent = 0

        async def tracked(message: Message) -> None:
            nonlocal status, sent
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = list(message.get("headers", []))
                headers.append((b"x-request-id", request_id.encode()))
                message = {**message, "headers": headers}
            elif message["type"] == "http.response.body":
                sent += len(message.get("body", b""))
            await send(message)

        try:
            await self.app(scope, receive, tracked)
        finally:
            entry: dict[str, Any] = {
                "event": "request",
                "request_id": request_id,
                "method": scope["method"],
                "path": scope["path"],
                "query": scrub_query(scope.get("query_string", b"").decode("latin-1")),
                "status": status,
                "bytes": sent,
                "ms": round((time.perf_counter() - started) * 1000, 1),
                "client": (scope.get("client") or ("", 0))[0],
                "key_id": scope.get("state", {}).get("key_id"),
            }
            log.info(json.dumps(entry))
