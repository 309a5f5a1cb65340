"""Honest quotas (a whole-file job reserves its maximum until probed), upload deletion
and retention, pruning of ended jobs with their events, and private files."""

from __future__ import annotations

import os
import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, null, select, update

from reelscribe.backends.db import EventKind, JobEventRow, JobRow, JobStatus
from reelscribe.backends.db.schema import UploadRow, WebhookDeliveryRow
from reelscribe.errors import SourceError
from reelscribe.service import retention
from reelscribe.service.uploads import UploadService
from tests.integration.api.conftest import MEDIA_URL, Live, StartApi

JOB = {"source": {"url": MEDIA_URL}}


def new_key(admin: httpx.Client, **limits: float) -> str:
    body = {"name": "k", "scopes": ["read", "submit"], **limits}
    response = admin.post("/api/keys", json=body)
    assert response.status_code == 201, response.text
    secret: str = response.json()["secret"]
    return secret


# --- quotas -----------------------------------------------------------------------------


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"], indirect=True)
def test_a_whole_file_job_reserves_the_rest_of_the_quota(live: Live, admin: httpx.Client) -> None:
    """A key of 0.05 audio minutes (3 s) a day: the first whole-file job is admitted
    and reserves the 3 s; the second is refused at once, before anything ran."""
    key = new_key(admin, quota_audio_minutes_per_day=0.05)
    with live.client(key) as client:
        first = client.post("/api/jobs", json=JOB)
        assert first.status_code == 202, first.text
        second = client.post("/api/jobs", json=JOB)
        assert second.status_code == 429
        assert second.json()["error"]["code"] == "quota_exceeded"
        assert "reserved" in second.json()["error"]["message"]
        assert int(second.headers["retry-after"]) >= 1
        ranged = client.post("/api/jobs", json=JOB | {"start": 0, "end": 1})
        assert ranged.status_code == 429

        # The probe settles the charge: the source lasted 2 s, so 1 s is left.
        claim = live.claim()
        assert claim.job_id == first.json()["id"]
        live.run(live.runtime.queue.complete(claim, {"media": {"duration": 2.0}}))
        third = client.post("/api/jobs", json=JOB)
        assert third.status_code == 202, third.text
        assert client.post("/api/jobs", json=JOB).status_code == 429

        # A job that fails before its probe gives its reservation back.
        claim = live.claim()
        live.run(live.runtime.queue.fail(claim, SourceError("gone"), retryable=False))
        assert client.post("/api/jobs", json=JOB | {"start": 0, "end": 1}).status_code == 202


def test_reservations_are_capped_by_the_longest_job(start_api: StartApi) -> None:
    live = start_api(max_clip_seconds=60.0)
    with live.client() as admin:
        key = new_key(admin, quota_audio_minutes_per_day=2.5)  # 150 s
        with live.client(key) as client:
            assert client.post("/api/jobs", json=JOB).status_code == 202  # reserves 60 s
            assert client.post("/api/jobs", json=JOB).status_code == 202  # 60 s more
            assert client.post("/api/jobs", json=JOB).status_code == 202  # the last 30 s
            assert client.post("/api/jobs", json=JOB).status_code == 429

    async def reserved() -> list[float | None]:
        async with live.runtime.engine.connect() as conn:
            rows = await conn.execute(
                select(JobRow.audio_reserved_seconds).order_by(JobRow.created_at)
            )
            return [r[0] for r in rows]

    assert live.run(reserved()) == [60.0, 60.0, 30.0]


# --- uploads --------------------------------------------------------------------------------


def _upload(client: httpx.Client, data: bytes = b"\0" * 5000) -> dict[str, Any]:
    response = client.post("/api/uploads", content=data, headers={"X-Filename": "a.wav"})
    assert response.status_code == 201, response.text
    upload: dict[str, Any] = response.json()
    return upload


def _blob_exists(live: Live, upload_id: str) -> bool:
    async def key() -> str | None:
        async with live.runtime.engine.connect() as conn:
            return (
                await conn.execute(select(UploadRow.storage_key).where(UploadRow.id == upload_id))
            ).scalar()

    storage_key = live.run(key())
    assert storage_key is not None
    return live.run(live.runtime.storage.exists(storage_key))


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"], indirect=True)
def test_delete_an_upload(live: Live, admin: httpx.Client) -> None:
    owner = new_key(admin)
    with live.client(owner) as client, live.client(new_key(admin)) as other:
        upload = _upload(client)
        root = Path(live.settings.storage_url.removeprefix("file://"))
        blob = root / "data" / "uploads" / upload["id"] / "source.wav"
        assert blob.is_file()

        assert other.delete(f"/api/uploads/{upload['id']}").status_code == 404  # not theirs
        job = client.post("/api/jobs", json={"source": {"upload_id": upload["id"]}}).json()
        in_use = client.delete(f"/api/uploads/{upload['id']}")
        assert in_use.status_code == 409
        assert in_use.json()["error"]["code"] == "upload_in_use"
        assert blob.is_file()

        assert client.post(f"/api/jobs/{job['id']}/cancel").status_code == 202
        assert client.delete(f"/api/uploads/{upload['id']}").status_code == 204
        assert not blob.exists()
        assert client.get(f"/api/uploads/{upload['id']}").status_code == 404
        assert client.delete(f"/api/uploads/{upload['id']}").status_code == 404
        assert client.delete("/api/uploads/no-such-upload").status_code == 404

        theirs = _upload(client)  # an admin may delete anyone's
        assert admin.delete(f"/api/uploads/{theirs['id']}").status_code == 204


def test_uploads_sharing_a_blob_keep_it_until_the_last_goes(
    live: Live, admin: httpx.Client
) -> None:
    data = os.urandom(3000)
    ids = []
    for _ in range(2):
        created = admin.post("/api/uploads/resumable", json={"size": len(data)}).json()
        sent = admin.patch(
            f"/api/uploads/{created['id']}",
            content=data,
            headers={"Upload-Offset": "0", "Content-Type": "application/offset+octet-stream"},
        )
        assert sent.json()["state"] == "complete", sent.text
        ids.append(created["id"])
    assert _blob_exists(live, ids[0])
    assert admin.delete(f"/api/uploads/{ids[0]}").status_code == 204
    assert _blob_exists(live, ids[1])
    assert admin.delete(f"/api/uploads/{ids[1]}").status_code == 204
    assert not live.run(live.runtime.storage.exists(f"sha256/{ids[1]}"))


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"], indirect=True)
def test_unused_uploads_expire(live: Live, admin: httpx.Client) -> None:
    old, needed, fresh = (_upload(admin, os.urandom(100)) for _ in range(3))
    admin.post("/api/jobs", json={"source": {"upload_id": needed["id"]}})

    async def age(*upload_ids: str) -> None:
        async with live.runtime.engine.begin() as conn:
            await conn.execute(
                update(UploadRow)
                .where(UploadRow.id.in_(upload_ids))
                .values(updated_at=datetime.now(UTC) - timedelta(days=8))
            )

    live.run(age(old["id"], needed["id"]))
    service = UploadService(live.runtime)  # the retention loop's own, as in run()
    assert live.run(service.sweep_expired()) == 1

    async def left() -> set[str]:
        async with live.runtime.engine.connect() as conn:
            return set((await conn.execute(select(UploadRow.id))).scalars())

    assert live.run(left()) == {needed["id"], fresh["id"]}  # a queued job needs one
    key = f"uploads/{old['id']}/source.wav"
    assert not live.run(live.runtime.storage.exists(key))


# --- pruning ------------------------------------------------------------------------------


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"], indirect=True)
def test_pruning_removes_ended_jobs_with_their_events(live: Live, admin: httpx.Client) -> None:
    ids = [admin.post("/api/jobs", json=JOB).json()["id"] for _ in range(6)]
    old = datetime.now(UTC) - timedelta(days=31)
    recent = datetime.now(UTC) - timedelta(days=1)
    # (status, finished_at, result): the first three go, the others stay.
    states: list[tuple[JobStatus, datetime, dict[str, Any] | None]] = [
        (JobStatus.EXPIRED, old, None),
        (JobStatus.FAILED, old, None),
        (JobStatus.CANCELLED, old, None),
        (JobStatus.FAILED, recent, None),  # ended too recently
        (JobStatus.DONE, old, {"outputs": {}}),  # results not expired yet
        (JobStatus.EXPIRED, old, {"outputs": {}}),  # results not swept yet
    ]

    async def arrange() -> None:
        async with live.runtime.engine.begin() as conn:
            for job_id, (status, finished, result) in zip(ids, states, strict=True):
                await conn.execute(
                    update(JobRow)
                    .where(JobRow.id == job_id)
                    # SQL NULL, as the retention sweep writes it (None would be JSON null).
                    .values(status=status, finished_at=finished, result=result or null())
                )
                await conn.execute(
                    WebhookDeliveryRow.__table__.insert().values(
                        id=job_id[::-1], job_id=job_id, event="job.failed", url="https://h/x",
                        payload={}, state="delivered",
                    )
                )  # fmt: skip

    live.run(arrange())
    for job_id in ids:
        live.add_events(job_id, *[(EventKind.PROGRESS, {"progress": n}) for n in range(20)])

    assert live.run(retention.prune(live.runtime, batch=2)) == 3

    async def counts() -> tuple[set[str], dict[str, int], int]:
        async with live.runtime.engine.connect() as conn:
            left = set((await conn.execute(select(JobRow.id))).scalars())
            grouped = await conn.execute(
                select(JobEventRow.job_id, func.count()).group_by(JobEventRow.job_id)
            )
            events = {job_id: count for job_id, count in grouped}
            deliveries = (
                await conn.execute(select(func.count()).select_from(WebhookDeliveryRow))
            ).scalar_one()
        return left, events, deliveries

    left, events, deliveries = live.run(counts())
    assert left == set(ids[3:])
    assert set(events) == set(ids[3:])
    assert all(count >= 20 for count in events.values())
    assert deliveries == 3
    assert live.run(retention.prune(live.runtime)) == 0


# --- permissions ----------------------------------------------------------------------------


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_created_files_are_private(start_api: StartApi, tmp_path: Path) -> None:
    old_umask = os.umask(0o022)
    try:
        data = tmp_path / "fresh" / "data"
        live = start_api(
            database_url=f"sqlite:///{data / 'db.sqlite'}", storage_url=f"file://{data / 'blobs'}"
        )
        with live.client() as admin:
            _upload(admin)
            created = admin.post("/api/uploads/resumable", json={"size": 10}).json()
            admin.patch(
                f"/api/uploads/{created['id']}",
                content=b"12345",
                headers={"Upload-Offset": "0", "Content-Type": "application/offset+octet-stream"},
            )
            admin.post("/api/jobs", json=JOB)
    finally:
        os.umask(old_umask)
    assert _mode(data) == 0o700
    assert _mode(tmp_path / "fresh") == 0o700
    db_files = list(data.glob("db.sqlite*"))
    assert len(db_files) >= 2  # the database and its WAL
    assert {f.name: _mode(f) for f in db_files} == {f.name: 0o600 for f in db_files}
    folders = [data / "blobs", *[p for p in (data / "blobs").rglob("*") if p.is_dir()]]
    files = [p for p in (data / "blobs").rglob("*") if p.is_file()]
    files += [p for p in data.rglob("*") if p.is_file() and "staging" in p.parts]
    assert len(files) >= 3  # the blob, its metadata, the staged chunk
    assert {str(p): _mode(p) for p in folders} == {str(p): 0o700 for p in folders}
    assert {str(p): _mode(p) for p in files} == {str(p): 0o600 for p in files}
