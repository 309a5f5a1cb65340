"""Uploads: streamed bodies hashed on the way with the size limit enforced mid-stream,
and resumable uploads that survive a broken connection."""

from __future__ import annotations

import hashlib
import os
import socket
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select

from reelscribe.backends.db.schema import UploadRow
from reelscribe.service.uploads import staging_dir
from tests.integration.api.conftest import ADMIN_SECRET, Live, StartApi


def chunked(data: bytes, size: int = 64 * 1024) -> Iterator[bytes]:
    """A generator body: httpx sends it chunked, without a Content-Length."""
    for start in range(0, len(data), size):
        yield data[start : start + size]


def upload_count(live: Live) -> int:
    async def count() -> int:
        async with live.runtime.engine.connect() as conn:
            return int((await conn.execute(select(func.count()).select_from(UploadRow))).scalar())

    return live.run(count())


def stored_files(live: Live) -> list[Path]:
    root = Path(live.settings.storage_url.removeprefix("file://"))
    return [p for p in root.rglob("*") if p.is_file() and "staging" not in p.parts]


def test_streamed_upload_is_hashed_and_usable_as_a_source(live: Live, admin: httpx.Client) -> None:
    data = os.urandom(1024 * 1024 + 17)
    response = admin.post(
        "/api/uploads",
        content=chunked(data),
        headers={"X-Filename": "talk%20%C3%A9t%C3%A9.mp4", "Content-Type": "video/mp4"},
    )
    assert response.status_code == 201, response.text
    upload = response.json()
    assert upload["sha256"] == hashlib.sha256(data).hexdigest()
    assert (upload["size"], upload["offset"], upload["state"]) == (len(data), len(data), "complete")
    assert upload["filename"] == "talk été.mp4"
    assert upload["content_type"] == "video/mp4"

    key = f"uploads/{upload['id']}/source.mp4"
    info = live.run(live.runtime.storage.stat(key))
    assert info.size == len(data)

    assert admin.get(f"/api/uploads/{upload['id']}").json() == upload
    job = admin.post("/api/jobs", json={"source": {"upload_id": upload["id"]}})
    assert job.status_code == 202
    with live.client(_other_key(admin)) as other:  # someone else's upload is not there
        refused = other.post("/api/jobs", json={"source": {"upload_id": upload["id"]}})
        assert refused.status_code == 404


def _other_key(admin: httpx.Client) -> str:
    body = {"name": "other", "scopes": ["read", "submit"]}
    secret: str = admin.post("/api/keys", json=body).json()["secret"]
    return secret


def test_size_limit_is_enforced_while_streaming(start_api: StartApi) -> None:
    live = start_api(max_upload_bytes=100_000)
    with live.client() as admin:
        over = admin.post("/api/uploads", content=chunked(os.urandom(300_000), 16 * 1024))
        assert over.status_code == 413
        assert over.json()["error"]["code"] == "upload_too_large"
        declared = admin.post(
            "/api/uploads", content=b"x" * 100_001, headers={"Content-Type": "audio/wav"}
        )
        assert declared.status_code == 413
        assert upload_count(live) == 0
        assert stored_files(live) == []  # no blob and no partial file left behind

        fits = admin.post("/api/uploads", content=chunked(os.urandom(100_000)))
        assert fits.status_code == 201
        assert upload_count(live) == 1


def _send_half(live: Live, upload_id: str, offset: int, chunk: bytes) -> None:
    """A PATCH whose connection breaks after half of its body."""
    host, port = live.base_url.removeprefix("http://").split(":")
    head = (
        f"PATCH /api/uploads/{upload_id} HTTP/1.1\r\nHost: {host}\r\n"
        f"Authorization: Bearer {ADMIN_SECRET}\r\nUpload-Offset: {offset}\r\n"
        f"Content-Type: application/offset+octet-stream\r\nContent-Length: {len(chunk)}\r\n\r\n"
    )
    with socket.create_connection((host, int(port))) as sock:
        sock.sendall(head.encode() + chunk[: len(chunk) // 2])


def test_resumable_upload_resumes_after_a_broken_connection(
    live: Live, admin: httpx.Client
) -> None:
    data = os.urandom(700_000)
    created = admin.post(
        "/api/uploads/resumable",
        json={"size": len(data), "filename": "long.mkv", "content_type": "video/x-matroska"},
    )
    assert created.status_code == 201
    upload_id = created.json()["id"]
    assert created.headers["upload-offset"] == "0"

    first = admin.patch(
        f"/api/uploads/{upload_id}", content=data[:200_000], headers={"Upload-Offset": "0"}
    )
    assert first.status_code == 200
    assert first.json()["offset"] == 200_000
    assert first.json()["state"] == "open"

    _send_half(live, upload_id, 200_000, data[200_000:600_000])
    offset = _settled_offset(admin, upload_id)
    assert offset == 400_000  # the half that arrived was kept

    stale = admin.patch(
        f"/api/uploads/{upload_id}",
        content=data[200_000:300_000],
        headers={"Upload-Offset": "200000"},
    )
    assert stale.status_code == 409
    assert stale.json()["error"]["code"] == "upload_offset_mismatch"
    assert stale.json()["error"]["details"] == {"offset": 400_000}
    assert stale.headers["upload-offset"] == "400000"

    rest = admin.patch(
        f"/api/uploads/{upload_id}",
        content=chunked(data[offset:]),
        headers={"Upload-Offset": str(offset)},
    )
    assert rest.status_code == 200, rest.text
    done = rest.json()
    digest = hashlib.sha256(data).hexdigest()
    assert (done["state"], done["offset"], done["sha256"]) == ("complete", len(data), digest)
    key = f"sha256/{digest[:2]}/{digest}.mkv"  # content-addressed once complete
    assert live.run(live.runtime.storage.stat(key)).size == len(data)
    assert not (staging_dir(live.settings) / upload_id).exists()

    late = admin.patch(
        f"/api/uploads/{upload_id}", content=b"x", headers={"Upload-Offset": "700000"}
    )
    assert late.status_code == 409
    assert late.json()["error"]["code"] == "upload_complete"
    assert admin.post("/api/jobs", json={"source": {"upload_id": upload_id}}).status_code == 202


def _settled_offset(admin: httpx.Client, upload_id: str) -> int:
    """HEAD until the server has noticed the disconnect and recorded what it got."""
    import time

    deadline = time.monotonic() + 10
    offset = -1
    while time.monotonic() < deadline:
        head = admin.head(f"/api/uploads/{upload_id}")
        assert head.status_code == 200
        assert head.content == b""
        assert head.headers["upload-length"] == "700000"
        offset = int(head.headers["upload-offset"])
        if offset != 200_000:
            return offset
        time.sleep(0.05)
    return offset


def test_resumable_refuses_bytes_past_the_declared_size(live: Live, admin: httpx.Client) -> None:
    upload_id = admin.post("/api/uploads/resumable", json={"size": 10}).json()["id"]
    over = admin.patch(
        f"/api/uploads/{upload_id}", content=b"x" * 11, headers={"Upload-Offset": "0"}
    )
    assert over.status_code == 413
    assert admin.get(f"/api/uploads/{upload_id}").json()["state"] == "open"


@pytest.mark.parametrize("size", [0, 10**12])
def test_resumable_sizes_out_of_bounds(admin: httpx.Client, size: int) -> None:
    response = admin.post("/api/uploads/resumable", json={"size": size})
    assert response.status_code == (422 if size == 0 else 413)


def test_abandoned_resumable_bytes_are_swept_and_the_upload_starts_over(
    live: Live, admin: httpx.Client
) -> None:
    from reelscribe.service.uploads import UploadService

    stale = admin.post("/api/uploads/resumable", json={"size": 10}).json()["id"]
    fresh = admin.post("/api/uploads/resumable", json={"size": 10}).json()["id"]
    for upload_id in (stale, fresh):
        sent = admin.patch(
            f"/api/uploads/{upload_id}", content=b"abcd", headers={"Upload-Offset": "0"}
        )
        assert sent.status_code == 200
    staged = staging_dir(live.settings)
    day_ago = os.stat(staged / stale).st_mtime - 2 * 86400 - 60
    os.utime(staged / stale, (day_ago, day_ago))

    sweeper = UploadService(live.runtime)
    assert live.run(sweeper.sweep_staging()) == 1  # only the one idle past the limit
    assert not (staged / stale).exists()
    assert (staged / fresh).read_bytes() == b"abcd"

    # The client resumes where it left off and is told to start again from 0.
    resumed = admin.patch(f"/api/uploads/{stale}", content=b"efgh", headers={"Upload-Offset": "4"})
    assert resumed.status_code == 409
    assert resumed.headers["Upload-Offset"] == "0"
    redo = admin.patch(f"/api/uploads/{stale}", content=b"0123456789",
                       headers={"Upload-Offset": "0"})  # fmt: skip
    assert redo.status_code == 200
    assert redo.json()["state"] == "complete"
    assert redo.json()["sha256"] == hashlib.sha256(b"0123456789").hexdigest()
