"""A small threaded HTTP server for tests: serves a directory with Range support
(206 / 416), records every request, and can be told to redirect, fail with a status
stream a file without Content-Length or serve it with another Content-Type.

    with RangeServer(root) as server:
        server.redirects["/go"] = "http://169.254.169.254/"
        server.statuses["/secret.mp4"] = 403
        fetch(server.url("/media.mp4"), ...)
        assert server.count("/media.mp4") == 1
"""

from __future__ import annotations

import mimetypes
import re
import shutil
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import unquote, urlsplit

_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")


@dataclass(frozen=True)
class RecordedRequest:
    method: str
    path: str
    headers: dict[str, str]


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    owner: RangeServer

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Clients that hang up mid-body (size limits, ffmpeg seeking) are expected."""


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_HEAD(self) -> None:
        self._serve(body=False)

    def do_GET(self) -> None:
        self._serve(body=True)

    def _serve(self, *, body: bool) -> None:
        owner = self.server.owner
        path = unquote(urlsplit(self.path).path)
        owner._record(RecordedRequest(self.command, path, dict(self.headers.items())))
        if path in owner.redirects:
            self._empty(302, {"Location": owner.redirects[path]})
            return
        if path in owner.statuses:
            self._empty(owner.statuses[path])
            return
        file = (owner.root / path.lstrip("/")).resolve()
        if not file.is_file() or owner.root.resolve() not in file.parents:
            self._empty(404)
            return
        ctype = owner.content_types.get(path) or (
            mimetypes.guess_type(file.name)[0] or "application/octet-stream"
        )
        if path in owner.unsized:
            self._stream_unsized(file, ctype, body)
            return
        size = file.stat().st_size
        start, end, status = 0, size - 1, 200
        match = _RANGE.match(self.headers.get("Range", ""))
        if match and (match.group(1) or match.group(2)):
            first, last = match.groups()
            if first:
                start, end = int(first), min(int(last), size - 1) if last else size - 1
            else:
                start = max(0, size - int(last))
            if start >= size or start > end:
                self._empty(416, {"Content-Range": f"bytes */{size}"})
                return
            status = 206
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Accept-Ranges", "bytes")
        self.send_header("Content-Length", str(end - start + 1))
        if status == 206:
            self.send_header("Content-Range", f"bytes {start}-{end}/{size}")
        self.end_headers()
        if body:
            with file.open("rb") as fh:
                fh.seek(start)
                remaining = end - start + 1
                while remaining > 0:
                    chunk = fh.read(min(65536, remaining))
                    if not chunk:
                        break
                    self.wfile.write(chunk)
                    owner._sent(path, len(chunk))
                    remaining -= len(chunk)

    def _stream_unsized(self, file: Path, ctype: str, body: bool) -> None:
        """No Content-Length: the body ends when the connection closes."""
        self.send_response(200)
        self.send_header("Content-Type", ctype)
        self.send_header("Connection", "close")
        self.end_headers()
        self.close_connection = True
        if body:
            with file.open("rb") as fh:
                shutil.copyfileobj(fh, self.wfile)

    def _empty(self, status: int, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Length", "0")
        self.end_headers()


class RangeServer:
    def __init__(self, root: Path, host: str = "127.0.0.1") -> None:
        self.root = Path(root)
        self.redirects: dict[str, str] = {}
        self.statuses: dict[str, int] = {}
        self.unsized: set[str] = set()
        self.content_types: dict[str, str] = {}
        self.requests: list[RecordedRequest] = []
        #: Body bytes served per path (ranged and whole answers).
        self.bytes_sent: dict[str, int] = {}
        self._lock = threading.Lock()
        self._server = _Server((host, 0), _Handler)
        self._server.owner = self
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    def __enter__(self) -> RangeServer:
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()

    @property
    def base_url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def url(self, path: str) -> str:
        return self.base_url + path

    def _record(self, request: RecordedRequest) -> None:
        with self._lock:
            self.requests.append(request)

    def _sent(self, path: str, count: int) -> None:
        with self._lock:
            self.bytes_sent[path] = self.bytes_sent.get(path, 0) + count

    def count(self, path: str | None = None) -> int:
        with self._lock:
            return sum(1 for r in self.requests if path is None or r.path == path)
