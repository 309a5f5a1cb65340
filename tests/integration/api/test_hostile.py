"""Hostile input: oversized bodies and metadata, slow and looping sources, quota
bypass, scoped IPv6 at submit, file permissions, upload deletion and pruning."""

from __future__ import annotations

import contextlib
import json
import select
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import httpx
import pytest
from sqlalchemy import update

from reelscribe.backends.db import JobRow
from reelscribe.errors import SourceError, SourceTooSlowError, TooManyRedirectsError
from reelscribe.media import ytdlp
from reelscribe.pipeline.fetch import FetchOptions, fetch
from tests.integration.api.conftest import ADMIN_SECRET, MEDIA_URL, Live, StartApi


def _raw_request(live: Live, head: str) -> socket.socket:
    host, port = live.base_url.removeprefix("http://").split(":")
    sock = socket.create_connection((host, int(port)), timeout=10)
    sock.sendall(head.encode())
    return sock


def _send_until_answered(sock: socket.socket, chunks: Iterator[bytes]) -> bytes:
    """Sends body bytes until the server answers (or stops reading); returns the answer."""
    for chunk in chunks:
        readable, _, _ = select.select([sock], [], [], 0)
        if readable:
            break
        try:
            sock.sendall(chunk)
        except (BrokenPipeError, ConnectionResetError):
            break
    answer = b""
    with_deadline = time.monotonic() + 10
    while time.monotonic() < with_deadline:
        try:
            data = sock.recv(65536)
        except ConnectionResetError:
            break
        if not data:
            break
        answer += data
        if b"\r\n\r\n" in answer:
            head, _, body = answer.partition(b"\r\n\r\n")
            length = next(
                (int(line.split(b":")[1]) for line in head.split(b"\r\n")
                 if line.lower().startswith(b"content-length:")),
                None,
            )  # fmt: skip
            if length is not None and len(body) >= length:
                break
    return answer


def _status_and_body(answer: bytes) -> tuple[int, dict[str, object]]:
    head, _, body = answer.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    return status, json.loads(body)


def _head(path: str, extra: str) -> str:
    return (
        f"POST {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {ADMIN_SECRET}\r\n"
        f"Content-Type: application/json\r\n{extra}\r\n"
    )


def test_declared_big_body_is_refused_before_it_is_read(live: Live) -> None:
    started = time.monotonic()
    sock = _raw_request(live, _head("/api/jobs", f"Content-Length: {16 * 1024 * 1024}\r\n"))
    with sock:
        answer = _send_until_answered(sock, iter([b"{" + b" " * 65535] * 256))
    elapsed = time.monotonic() - started
    status, body = _status_and_body(answer)
    assert status == 413
    assert body["error"]["code"] == "request_too_large"  # type: ignore[index]
    assert len(answer) < 2000
    assert elapsed < 2.0


def test_streamed_big_body_is_cut_off_and_health_stays_fast(live: Live) -> None:
    """A 40 MB chunked JSON body (no Content-Length), sent in 16 KiB pieces, is refused
    at the limit; /healthz, polled meanwhile, answers in under 100 ms throughout."""
    samples: list[tuple[float, float]] = []  # (when it started, how long it took)
    done = threading.Event()

    def poll() -> None:
        with httpx.Client(base_url=live.base_url, timeout=5) as client:
            client.get("/healthz")  # the connection is made before measuring
            while not done.is_set():
                t0 = time.perf_counter()
                assert client.get("/healthz").status_code == 200
                samples.append((t0, time.perf_counter() - t0))
                time.sleep(0.005)

    def chunks() -> Iterator[bytes]:
        yield b'10\r\n{"metadata":{"a"\r\n'
        piece = b"x" * 16 * 1024
        for _ in range(40 * 1024 * 1024 // len(piece)):
            time.sleep(0.01)
            yield b"%x\r\n%s\r\n" % (len(piece), piece)

    poller = threading.Thread(target=poll)
    poller.start()
    try:
        time.sleep(0.3)
        started = time.perf_counter()
        sock = _raw_request(live, _head("/api/jobs", "Transfer-Encoding: chunked\r\n"))
        with sock:
            answer = _send_until_answered(sock, chunks())
        ended = time.perf_counter()
        time.sleep(0.1)
    finally:
        done.set()
        poller.join()
    status, body = _status_and_body(answer)
    assert status == 413, answer[:300]
    assert body["error"]["code"] == "request_too_large"  # type: ignore[index]
    assert ended - started < 5.0
    during = [took for at, took in samples if started <= at <= ended]
    assert len(during) >= 3
    assert max(during) < 0.1, sorted(during)[-5:]


def test_body_limit_is_a_setting_and_uploads_are_exempt(start_api: StartApi) -> None:
    live = start_api(max_json_bytes=2048)
    with live.client() as admin:
        small = admin.post("/api/jobs", json={"source": {"url": MEDIA_URL}})
        assert small.status_code == 202, small.text
        big = admin.post(
            "/api/jobs", json={"source": {"url": MEDIA_URL}, "metadata": {"a": "x" * 3000}}
        )
        assert big.status_code == 413
        assert big.json()["error"]["code"] == "request_too_large"
        assert big.json()["error"]["details"] == {"limit": 2048}
        upload = admin.post("/api/uploads", content=b"\0" * 10_000)
        assert upload.status_code == 201, upload.text


def test_big_metadata_is_refused_without_echo(live: Live, admin: httpx.Client) -> None:
    huge = "y" * 200_000
    cases = [
        {"note": "x" * 1025},  # one value too long
        {"k" * 65: "v"},  # a key too long
        {f"k{i}": "v" * 1000 for i in range(9)},  # over 8 KiB in all
        {f"k{i}": "v" for i in range(51)},  # too many keys
    ]
    for metadata in cases:
        response = admin.post(
            "/api/jobs", json={"source": {"url": MEDIA_URL}, "metadata": metadata}
        )
        assert response.status_code == 422, response.text
        assert response.json()["error"]["code"] == "validation_error"
        assert len(response.content) < 4096
    response = admin.post(
        "/api/jobs", json={"source": {"url": MEDIA_URL}, "metadata": {"note": huge[:100_000]}}
    )
    assert response.status_code == 422
    assert "yyyyyyyy" not in response.text
    assert len(response.content) < 4096
    # Small inputs are still named in the error.
    response = admin.post("/api/jobs", json={"source": {"url": MEDIA_URL}, "priority": "soon"})
    assert response.status_code == 422
    assert "soon" in response.text
    ok = admin.post("/api/jobs", json={"source": {"url": MEDIA_URL}, "metadata": {"a": "b" * 1024}})
    assert ok.status_code == 202, ok.text


# --- sources: scoped and unresolvable hosts at submit, slow sources, redirect loops ------


def test_scoped_ipv6_and_unresolvable_hosts_are_refused_at_submit(
    live: Live, admin: httpx.Client
) -> None:
    for url in ("http://[fe80::1%25lo]/a.mp4", "http://[fe80::1%eth0]:8080/a.mp4"):
        refused = admin.post("/api/jobs", json={"source": {"url": url}})
        assert refused.status_code == 400, refused.text
        assert refused.json()["error"]["code"] == "blocked_url"
        assert "scoped" in refused.json()["error"]["message"]
    missing = admin.post("/api/jobs", json={"source": {"url": "https://nowhere.invalid/a.mp4"}})
    assert missing.status_code == 400
    assert missing.json()["error"]["code"] == "host_not_found"
    hook = admin.post(
        "/api/jobs",
        json={"source": {"url": MEDIA_URL}, "webhook_url": "https://nowhere.invalid/hook"},
    )
    assert hook.json()["error"]["code"] == "host_not_found"
    # A name REELSCRIBE_ALLOWED_NETWORKS lists is the workers' business (MEDIA_URL's host).
    assert admin.post("/api/jobs", json={"source": {"url": MEDIA_URL}}).status_code == 202
    assert admin.get("/api/jobs").json()["items"].__len__() == 1


class _Hostile(BaseHTTPRequestHandler):
    """/slow.mp4 trickles a byte every 0.2 s; /loop redirects to itself;
    /slow.html is a page whose video is /slow.mp4 (yt-dlp's generic extractor)."""

    protocol_version = "HTTP/1.1"
    hits: ClassVar[dict[str, int]] = {}

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        path = self.path.split("?")[0]
        _Hostile.hits[path] = _Hostile.hits.get(path, 0) + 1
        if path in ("/loop", "/nowhere"):
            self.send_response(302)
            self.send_header("Location", "/loop" if path == "/loop" else "http://[::1/x")
            self.send_header("Content-Length", "0")
            self.end_headers()
        elif path == "/slow.html":
            page = b'<html><head><title>t</title></head><body><video src="/slow.mp4"></video>'
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(page)))
            self.end_headers()
            self.wfile.write(page)
        elif path == "/slow.mp4":
            self.send_response(200)
            self.send_header("Content-Type", "video/mp4")
            self.send_header("Content-Length", "100000")
            self.end_headers()
            with contextlib.suppress(OSError):
                for _ in range(100000):
                    self.wfile.write(b"\0")
                    self.wfile.flush()
                    time.sleep(0.2)
        else:
            self.send_error(404)


@pytest.fixture
def hostile_server() -> Iterator[str]:
    _Hostile.hits = {}
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Hostile)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


SLOW = {"min_rate": 1000.0, "rate_window": 1.0, "allowed_networks": ("127.0.0.1/32",)}


@pytest.mark.parametrize("path", ["/slow.mp4", "/slow.html"])
def test_a_trickling_source_is_cut_off(hostile_server: str, tmp_path: Path, path: str) -> None:
    """Direct http (/slow.mp4) and yt-dlp (/slow.html) alike: the minimum rate rule
    stops the download after its window, with a user-fault code and no file left."""
    started = time.monotonic()
    with pytest.raises(SourceTooSlowError) as caught:
        fetch(hostile_server + path, tmp_path, FetchOptions(**SLOW))  # type: ignore[arg-type]
    assert time.monotonic() - started < 10
    assert caught.value.code == "source_too_slow"
    assert caught.value.user_fault
    assert not caught.value.retryable
    assert [p.name for p in tmp_path.rglob("*") if p.is_file()] == []


def test_the_overall_deadline_holds_without_a_rate_rule(
    hostile_server: str, tmp_path: Path
) -> None:
    options = FetchOptions(deadline=1.5, allowed_networks=("127.0.0.1/32",))
    started = time.monotonic()
    with pytest.raises(SourceTooSlowError, match="deadline"):
        fetch(hostile_server + "/slow.mp4", tmp_path, options)
    assert time.monotonic() - started < 5


def test_a_redirect_loop_is_the_sources_fault(hostile_server: str, tmp_path: Path) -> None:
    options = FetchOptions(allowed_networks=("127.0.0.1/32",))
    with pytest.raises(TooManyRedirectsError) as caught:
        fetch(hostile_server + "/loop", tmp_path, options)
    assert caught.value.user_fault
    assert not caught.value.retryable
    error = ytdlp.translate_error(
        Exception(
            "HTTP Error 302: The HTTP server returned a redirect error that would lead to an "
            "infinite loop."
        ),
        hostile_server + "/loop",
    )
    assert isinstance(error, TooManyRedirectsError)


def test_a_redirect_to_an_invalid_url_is_the_sources_fault(
    hostile_server: str, tmp_path: Path
) -> None:
    options = FetchOptions(allowed_networks=("127.0.0.1/32",))
    with pytest.raises(SourceError) as caught:
        fetch(hostile_server + "/nowhere", tmp_path, options)
    assert not caught.value.retryable
    assert caught.value.code in ("unsupported_source", "blocked_url")


@pytest.mark.parametrize(("path", "code"), [("/slow.mp4", "source_too_slow"),
                                            ("/loop", "too_many_redirects")])  # fmt: skip
def test_slow_and_looping_sources_fail_the_job_at_once(
    start_api: StartApi, hostile_server: str, path: str, code: str
) -> None:
    live = start_api(
        allowed_networks=["127.0.0.1/32"],
        min_download_bytes_per_second=1000.0,
        min_download_window_seconds=1.0,
    )
    with live.client() as admin:
        job = admin.post("/api/jobs", json={"source": {"url": hostile_server + path}}).json()
        from reelscribe.worker import Worker

        live.run(Worker(live.runtime).run(burst=True), timeout=60)
        ended = admin.get(f"/api/jobs/{job['id']}").json()
    assert ended["status"] == "failed", ended
    assert ended["error"]["code"] == code
    assert ended["attempts"] == 1
    # The worker's tries, plus as many by the estimate's probe at submission.
    assert _Hostile.hits[path] <= 2 * (1 if path != "/loop" else 11)


def test_jobs_stored_before_the_metadata_limits_are_listed_cut_down(
    live: Live, admin: httpx.Client
) -> None:
    job = admin.post("/api/jobs", json={"source": {"url": MEDIA_URL}}).json()
    legacy = {"note": "z" * 2_000_000, "ok": "yes", "k" * 100: "dropped"}

    async def store_legacy() -> None:
        async with live.runtime.engine.begin() as conn:
            spec = {**job["spec"], "metadata": legacy}
            await conn.execute(update(JobRow).where(JobRow.id == job["id"]).values(spec=spec))

    live.run(store_legacy())
    listed = admin.get("/api/jobs")
    assert listed.status_code == 200
    assert len(listed.content) < 10_000
    metadata = listed.json()["items"][0]["spec"]["metadata"]
    assert metadata == {"note": "z" * 1024, "ok": "yes"}
