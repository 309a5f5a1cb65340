"""A stand-in for an OpenAI-compatible speech-to-text server, on 127.0.0.1.

It serves ``POST /v1/audio/transcriptions`` and ``/v1/audio/translations`` with the
API's real request and response shapes: a multipart form (``file``, ``model``,
``language``, ``prompt``, ``temperature``, ``response_format``,
``timestamp_granularities[]``), Bearer auth, ``verbose_json`` (segments and words as
asked), ``json`` and ``text`` answers, and OpenAI's error JSON. It transcribes for real
with the packaged faster-whisper model, so words and timings are realistic.

Like OpenAI it refuses bodies over its limit (25 MB unless told less) with 413, and it
can be told to fail first: ``failures`` are served in order before any success (429
with ``Retry-After``, 500, ...). Every request is recorded with the time the server saw
it (``time.monotonic``), so a test can check the client waited as asked.

    with AsrServer(model, api_key="sk-test") as server:
        server.failures += [(429, {"Retry-After": "1"}), (500, {})]
        HostedOptions(base_url=server.base_url, api_key=SecretStr("sk-test"))
"""

from __future__ import annotations

import email.parser
import email.policy
import io
import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any

from faster_whisper import decode_audio

from reelscribe.asr.faster_whisper import LoadedModel
from reelscribe.service.openai_formats import LANGUAGES

OPENAI_LIMIT = 25 * 1024 * 1024


@dataclass
class Recorded:
    path: str
    fields: dict[str, list[str]]
    file_size: int
    headers: dict[str, str]
    status: int
    at: float = field(default_factory=time.monotonic)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    owner: AsrServer


def _error(message: str, kind: str, code: str | None = None) -> dict[str, Any]:
    return {"error": {"message": message, "type": kind, "param": None, "code": code}}


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_POST(self) -> None:
        owner = self.server.owner
        length = int(self.headers.get("Content-Length") or 0)
        if self.path not in ("/v1/audio/transcriptions", "/v1/audio/translations"):
            self._drain(length)
            return self._send(404, _error("Invalid URL", "invalid_request_error"))
        auth = self.headers.get("Authorization", "")
        if owner.api_key is not None and auth != f"Bearer {owner.api_key}":
            self._drain(length)
            owner.record(Recorded(self.path, {}, length, dict(self.headers), 401))
            given = auth.removeprefix("Bearer ")
            # OpenAI's own 401 echoes part of the key: the client must not log it.
            return self._send(401, _error(f"Incorrect API key provided: {given}.",
                                          "invalid_request_error", "invalid_api_key"))  # fmt: skip
        if length > owner.limit:
            self._drain(length)
            owner.record(Recorded(self.path, {}, length, dict(self.headers), 413))
            return self._send(413, _error(
                f"Maximum content size limit ({owner.limit}) exceeded ({length} bytes read)",
                "server_error",
            ))  # fmt: skip
        raw = self.rfile.read(length)
        try:
            fields, audio = _parse_form(self.headers.get("Content-Type", ""), raw)
            model = fields["model"][0]
        except (KeyError, ValueError, IndexError):
            return self._send(
                400, _error("Could not parse multipart form", "invalid_request_error")
            )
        with owner.lock:
            failure = owner.failures.pop(0) if owner.failures else None
        if failure is not None:
            status, headers = failure
            owner.record(Recorded(self.path, fields, len(audio), dict(self.headers), status))
            message = "Rate limit reached" if status == 429 else "The server had an error"
            kind = "requests" if status == 429 else "server_error"
            return self._send(status, _error(message, kind), headers)
        owner.record(Recorded(self.path, fields, len(audio), dict(self.headers), 200))
        translate = self.path.endswith("translations")
        body = owner.transcribe(audio, fields, translate=translate, model=model)
        response_format = (fields.get("response_format") or ["json"])[0]
        if response_format == "text":
            return self._send_text(body["text"] + "\n")
        if response_format == "json":
            return self._send(200, {"text": body["text"], "usage": body["usage"]})
        return self._send(200, body)

    def _drain(self, length: int) -> None:
        while length > 0:
            chunk = self.rfile.read(min(length, 1 << 16))
            if not chunk:
                break
            length -= len(chunk)

    def _send_text(self, text: str) -> None:
        data = text.encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

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


def _parse_form(content_type: str, raw: bytes) -> tuple[dict[str, list[str]], bytes]:
    """A multipart/form-data body: text fields (repeatable) and the ``file`` bytes."""
    if not content_type.startswith("multipart/form-data"):
        raise ValueError("not a multipart form")
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
        b"Content-Type: " + content_type.encode() + b"\r\n\r\n" + raw
    )
    fields: dict[str, list[str]] = {}
    audio: bytes | None = None
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        payload = part.get_payload(decode=True)
        if not isinstance(name, str) or not isinstance(payload, bytes):
            continue
        if name == "file":
            audio = payload
        else:
            fields.setdefault(name, []).append(payload.decode())
    if audio is None:
        raise ValueError("no file")
    return fields, audio


class AsrServer:
    def __init__(
        self, model: LoadedModel, *, api_key: str | None = None, limit: int = OPENAI_LIMIT
    ) -> None:
        self.model = model
        self.api_key = api_key
        self.limit = limit
        #: False: answer like a server without word timestamps (segments only).
        self.words = True
        self.requests: list[Recorded] = []
        #: Served before any success: (status, headers).
        self.failures: list[tuple[int, dict[str, str]]] = []
        self.lock = threading.Lock()
        self._decode = threading.Lock()  # one transcription at a time: the CPU is shared
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.owner = self
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}/v1"

    def record(self, request: Recorded) -> None:
        with self.lock:
            self.requests.append(request)

    def transcribe(
        self, audio: bytes, fields: dict[str, list[str]], *, translate: bool, model: str
    ) -> dict[str, Any]:
        """OpenAI's verbose_json for ``audio``, decoded by the real model."""
        del model  # any name is served by the one model, as many servers do
        samples = decode_audio(io.BytesIO(audio), sampling_rate=16_000)
        granularities = fields.get("timestamp_granularities[]") or ["segment"]
        words = "word" in granularities and self.words and not translate
        with self._decode:
            segments, info = self.model.whisper.transcribe(
                samples,
                language=(fields.get("language") or [None])[0],
                task="translate" if translate else "transcribe",
                initial_prompt=(fields.get("prompt") or [None])[0],
                temperature=float((fields.get("temperature") or ["0"])[0]),
                word_timestamps=words,
                beam_size=5,
            )
            segments = list(segments)
        duration = len(samples) / 16_000
        body: dict[str, Any] = {
            "task": "translate" if translate else "transcribe",
            "language": "english" if translate else LANGUAGES.get(info.language, info.language),
            "duration": round(duration, 2),
            "text": "".join(s.text for s in segments).strip(),
            "segments": [
                {
                    "id": i,
                    "seek": s.seek,
                    "start": round(s.start, 2),
                    "end": round(s.end, 2),
                    "text": s.text,
                    "tokens": list(s.tokens),
                    "temperature": s.temperature,
                    "avg_logprob": s.avg_logprob,
                    "compression_ratio": s.compression_ratio,
                    "no_speech_prob": s.no_speech_prob,
                }
                for i, s in enumerate(segments)
            ],
            "usage": {"type": "duration", "seconds": round(duration)},
        }
        if words:
            # OpenAI's words: no leading space, no punctuation, no probability.
            body["words"] = [
                {
                    "word": w.word.strip().strip(".,!?;:"),
                    "start": round(w.start, 2),
                    "end": round(w.end, 2),
                }
                for s in segments
                for w in s.words or []
                if w.word.strip().strip(".,!?;:")
            ]
        return body

    def __enter__(self) -> AsrServer:
        self._thread.start()
        return self

    def __exit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
