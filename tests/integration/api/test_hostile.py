"""Hostile input: oversized bodies and metadata, slow and looping sources, quota
bypass, scoped IPv6 at submit, file permissions, upload deletion and pruning."""

from __future__ import annotations

import json
import select
import socket
import threading
import time
from collections.abc import Iterator

import httpx

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
    """A 40 MB chunked JSON body (no Content-Length) is refused at the limit, and
    /healthz answers in under 100 ms throughout."""
    latencies: list[float] = []
    done = threading.Event()

    def poll() -> None:
        with httpx.Client(base_url=live.base_url, timeout=5) as client:
            while not done.is_set():
                t0 = time.perf_counter()
                assert client.get("/healthz").status_code == 200
                latencies.append(time.perf_counter() - t0)
                time.sleep(0.01)

    def chunks() -> Iterator[bytes]:
        piece = b'{"metadata": {"a": "' + b"x" * (64 * 1024)
        for _ in range(40 * 1024 * 1024 // len(piece)):
            yield b"%x\r\n%s\r\n" % (len(piece), piece)

    poller = threading.Thread(target=poll)
    poller.start()
    try:
        time.sleep(0.2)
        started = time.monotonic()
        sock = _raw_request(live, _head("/api/jobs", "Transfer-Encoding: chunked\r\n"))
        with sock:
            answer = _send_until_answered(sock, chunks())
        elapsed = time.monotonic() - started
        time.sleep(0.2)
    finally:
        done.set()
        poller.join()
    status, body = _status_and_body(answer)
    assert status == 413, answer[:300]
    assert body["error"]["code"] == "request_too_large"  # type: ignore[index]
    assert elapsed < 5.0
    assert len(latencies) >= 3
    assert max(latencies) < 0.1, sorted(latencies)[-5:]


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
