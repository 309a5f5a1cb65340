"""A minimal HTTP/1.1 load generator: keep-alive connections, one request in flight
on each, the request bytes built once.

The service benchmark shares 2 cores with its load generator. httpx spends about as
much CPU per request as the API itself, so a benchmark driven by it measures the
client as much as the server; this one costs a few percent of a core. It reads
responses with ``Content-Length`` only (what the API sends for JSON), and checks the
status of every response.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any
from urllib.parse import urlsplit


def build_request(url: str, method: str, path: str, body: Any = None) -> bytes:
    payload = b"" if body is None else json.dumps(body).encode()
    head = (
        f"{method} {path} HTTP/1.1\r\nHost: {urlsplit(url).netloc}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(payload)}\r\n\r\n"
    )
    return head.encode() + payload


async def _connection(host: str, port: int, request: bytes, count: int, expect: int) -> None:
    reader, writer = await asyncio.open_connection(host, port)
    try:
        for _ in range(count):
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            status = int(head[9:12])
            length = 0
            for line in head.split(b"\r\n"):
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value)
            body = await reader.readexactly(length)
            if status != expect:
                raise RuntimeError(f"HTTP {status} (expected {expect}): {body[:300]!r}")
    finally:
        writer.close()


async def rate(
    url: str,
    method: str,
    path: str,
    body: Any = None,
    *,
    count: int,
    concurrency: int = 16,
    expect: int = 200,
) -> float:
    """Sends ``count`` requests over ``concurrency`` connections; returns requests/s."""
    parts = urlsplit(url)
    assert parts.hostname is not None
    assert parts.port is not None
    request = build_request(url, method, path, body)
    per_connection = max(1, count // concurrency)
    started = time.perf_counter()
    await asyncio.gather(*[
        _connection(parts.hostname, parts.port, request, per_connection, expect)
        for _ in range(concurrency)
    ])  # fmt: skip
    return per_connection * concurrency / (time.perf_counter() - started)
