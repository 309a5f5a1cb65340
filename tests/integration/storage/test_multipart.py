"""Direct (multipart) uploads through part URLs, against every backend: LocalStorage
(its part URLs answered by a bare ASGI app around ``put_signed_part``, the shape of the
API's ``PUT /blobs/{key}``) and S3Storage on a real SeaweedFS, which checks the
presigned signatures itself."""

from __future__ import annotations

import asyncio
import hashlib
import os
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import httpx
import pytest

from reelscribe.backends.storage import BlobStore, LocalStorage, PartInfo
from reelscribe.errors import BlobNotFoundError, ReelscribeError
from tests.integration.storage.conftest import LOCAL_BASE_URL

pytestmark = pytest.mark.anyio

MiB = 1024 * 1024
PART = 5 * MiB


def part_app(store: LocalStorage) -> Any:
    """``PUT /blobs/{key}?upload_id&part&size&expires&sig`` → ``put_signed_part``."""

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        assert scope["type"] == "http"
        assert scope["method"] == "PUT"
        query = dict(parse_qsl(scope["query_string"].decode()))

        async def body() -> AsyncIterator[bytes]:
            while True:
                message = await receive()
                yield message.get("body", b"")
                if not message.get("more_body"):
                    return

        try:
            await store.put_signed_part(
                scope["path"].removeprefix("/blobs/"),
                query["upload_id"],
                int(query["part"]),
                int(query["size"]),
                body(),
                expires=int(query["expires"]),
                signature=query["sig"],
            )
            status = 200
        except ReelscribeError as exc:
            status = {"link_invalid": 403, "link_expired": 403, "upload_too_large": 413}.get(
                exc.code, 400
            )
        await send({"type": "http.response.start", "status": status, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    return app


@pytest.fixture
async def put(store: BlobStore) -> AsyncIterator[httpx.AsyncClient]:
    mounts = {}
    if isinstance(store, LocalStorage):
        host = urlsplit(LOCAL_BASE_URL)
        mounts[f"{host.scheme}://{host.netloc}"] = httpx.ASGITransport(app=part_app(store))
    async with httpx.AsyncClient(mounts=mounts, timeout=30) as client:
        yield client


def parts_of(data: bytes) -> list[bytes]:
    return [data[start : start + PART] for start in range(0, len(data), PART)]


async def test_parts_resume_and_complete(store: BlobStore, put: httpx.AsyncClient) -> None:
    data = os.urandom(11 * MiB + 4321)  # three parts: 5 MiB, 5 MiB, the rest
    chunks = parts_of(data)
    key = "uploads/u1/source.mp4"
    upload = await store.start_multipart(key, "video/mp4")
    urls = [
        await store.part_url(key, upload, n, len(chunk), 600)
        for n, chunk in enumerate(chunks, start=1)
    ]
    # Parts 1 and 3 arrive; part 2's connection "drops" before it is sent.
    for number in (1, 3):
        response = await put.put(urls[number - 1], content=chunks[number - 1])
        assert response.status_code == 200, response.text
    listed = await store.list_parts(key, upload)
    assert [(p.number, p.size) for p in listed] == [(1, PART), (3, len(chunks[2]))]
    assert not await store.exists(key)  # nothing is a blob before completion

    response = await put.put(urls[1], content=chunks[1])
    assert response.status_code == 200
    listed = await store.list_parts(key, upload)
    assert [p.number for p in listed] == [1, 2, 3]

    result = await store.complete_multipart(key, upload, listed)
    assert result == (len(data), hashlib.sha256(data).hexdigest())
    info = await store.stat(key)
    assert (info.size, info.content_type) == (len(data), "video/mp4")
    assert b"".join([c async for c in store.get_stream(key)]) == data
    with pytest.raises(BlobNotFoundError):  # the multipart upload is closed
        await store.list_parts(key, upload)
    response = await put.put(urls[0], content=chunks[0])  # a URL of a finished upload
    assert response.status_code >= 400
    assert await store.stat(key) == info


async def test_a_part_url_writes_only_its_part(store: BlobStore, put: httpx.AsyncClient) -> None:
    key = "uploads/u2/source.wav"
    upload = await store.start_multipart(key)
    url = await store.part_url(key, upload, 1, 1000, 600)

    bigger = await put.put(url, content=os.urandom(1001))
    # S3 signs Content-Length (403); local storage counts the body (413).
    assert bigger.status_code == (413 if isinstance(store, LocalStorage) else 403)
    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query))
    number = "partNumber" if "partNumber" in query else "part"
    for field, value in ((number, "2"), ("size" if number == "part" else "uploadId", "5")):
        tampered = urlunsplit(parts._replace(query=urlencode({**query, field: value})))
        response = await put.put(tampered, content=os.urandom(1000))
        assert response.status_code == 403, (field, response.text)
    assert await store.list_parts(key, upload) == []  # none of it was kept

    expiring = await store.part_url(key, upload, 1, 1000, 1)
    await asyncio.sleep(2.1)
    response = await put.put(expiring, content=os.urandom(1000))
    assert response.status_code == 403
    assert await store.list_parts(key, upload) == []

    assert (await put.put(url, content=b"x" * 1000)).status_code == 200
    assert [(p.number, p.size) for p in await store.list_parts(key, upload)] == [(1, 1000)]


async def test_abort_drops_the_parts(store: BlobStore, put: httpx.AsyncClient) -> None:
    key = "uploads/u3/source.mp3"
    upload = await store.start_multipart(key, "audio/mpeg")
    url = await store.part_url(key, upload, 1, 10, 600)
    assert (await put.put(url, content=b"0123456789")).status_code == 200
    await store.abort_multipart(key, upload)
    with pytest.raises(BlobNotFoundError):
        await store.list_parts(key, upload)
    await store.abort_multipart(key, upload)  # twice: not an error
    assert (await put.put(url, content=b"0123456789")).status_code >= 400
    assert not await store.exists(key)


async def test_a_part_missing_at_completion_stores_nothing(store: BlobStore) -> None:
    key = "uploads/u4/source.bin"
    upload = await store.start_multipart(key)
    with pytest.raises(ReelscribeError):
        await store.complete_multipart(key, upload, [PartInfo(1, 10, '"nope"')])
    assert not await store.exists(key)
    await store.abort_multipart(key, upload)


async def test_direct_upload_origin(store: BlobStore) -> None:
    origin = store.direct_upload_origin()
    if isinstance(store, LocalStorage):
        assert origin is None  # the API itself
    else:
        url = await store.part_url("k", "id", 1, 1, 60)
        assert origin is not None
        assert url.startswith(origin + "/")


async def test_local_folders_no_upload_names_are_swept_on_open(tmp_path: Path) -> None:
    root = tmp_path / "blobs"
    async with LocalStorage(root) as store:
        old = await store.start_multipart("uploads/a/source.mp4")
        new = await store.start_multipart("uploads/b/source.mp4")
        assert await store.list_parts("uploads/a/source.mp4", old) == []
    folder = root / "multipart" / old
    assert oct(folder.stat().st_mode & 0o777) == "0o700"
    assert oct((folder / "upload.json").stat().st_mode & 0o777) == "0o600"
    long_ago = time.time() - 8 * 86400  # older than any part URL can live
    os.utime(folder, (long_ago, long_ago))
    async with LocalStorage(root) as store:
        with pytest.raises(BlobNotFoundError):
            await store.list_parts("uploads/a/source.mp4", old)
        assert await store.list_parts("uploads/b/source.mp4", new) == []
