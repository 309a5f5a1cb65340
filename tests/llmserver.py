"""A stand-in for an OpenAI-compatible chat endpoint, on 127.0.0.1: it serves
``POST /v1/chat/completions`` with the API's real request and response shapes, records
every request, and can be told to fail first (429 with Retry-After, 5xx, a stall past
the client's timeout). What the "model" answers is a function of the request.

    with ChatServer(lambda request: '{"summary": "..."}') as server:
        server.failures += [(429, {"Retry-After": "1"}), (503, {})]
        LlmOptions(base_url=server.base_url, model="stand-in", ...)
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any

Reply = Callable[[dict[str, Any]], str]


@dataclass
class Recorded:
    body: dict[str, Any]
    headers: dict[str, str]
    status: int
    at: float = field(default_factory=time.monotonic)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    owner: ChatServer


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_POST(self) -> None:
        owner = self.server.owner
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length)
        if self.path != "/v1/chat/completions":
            return self._send(
                404, {"error": {"message": "not found", "type": "invalid_request_error"}}
            )
        try:
            body = json.loads(raw)
            assert isinstance(body["model"], str)
            roles = ("system", "user", "assistant")
            assert all(m["role"] in roles and isinstance(m["content"], str)
                       for m in body["messages"])  # fmt: skip
        except (ValueError, KeyError, TypeError, AssertionError):
            return self._send(
                400, {"error": {"message": "bad request", "type": "invalid_request_error"}}
            )
        with owner.lock:
            failure = owner.failures.pop(0) if owner.failures else None
        if failure is not None:
            status, headers = failure
            owner.requests.append(Recorded(body, dict(self.headers), status))
            if status == 0:  # a stall: answer nothing until the client has given up
                time.sleep(owner.stall)
                return None
            return self._send(status, {"error": {"message": "try later", "type": "server_error"}},
                              headers)  # fmt: skip
        owner.requests.append(Recorded(body, dict(self.headers), 200))
        content = owner.reply(body)
        return self._send(200, {
            "id": f"chatcmpl-{len(owner.requests)}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": body["model"],
            "choices": [{"index": 0, "message": {"role": "assistant", "content": content},
                         "finish_reason": "stop", "logprobs": None}],
            "usage": {"prompt_tokens": len(raw) // 4, "completion_tokens": len(content) // 4,
                      "total_tokens": (len(raw) + len(content)) // 4},
        })  # fmt: skip

    def _send(
        self, status: int, payload: dict[str, Any], headers: dict[str, str] | None = None
    ) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(data)


class ChatServer:
    def __init__(self, reply: Reply) -> None:
        self.reply = reply
        self.requests: list[Recorded] = []
        #: Served before any success: (status, headers); status 0 stalls.
        self.failures: list[tuple[int, dict[str, str]]] = []
        self.stall = 2.0
        self.lock = threading.Lock()
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.owner = self
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}/v1"

    def __enter__(self) -> ChatServer:
        self._thread.start()
        return self

    def __exit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
