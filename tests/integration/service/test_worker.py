"""The worker on a real runtime (SQLite, local storage) and the real pipeline."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from reelscribe.backends.db.enums import EventKind, JobStatus
from reelscribe.backends.db.schema import JobEventRow, UploadRow
from reelscribe.service.runtime import Runtime
from reelscribe.service.spec import JobSpec
from reelscribe.worker import Worker

pytestmark = pytest.mark.anyio


async def submit(rt: Runtime, spec: dict[str, Any]) -> str:
    body = JobSpec.model_validate(spec).model_dump(mode="json")
    row, _ = await rt.jobs.create(body)
    await rt.queue.enqueue(row.id)
    return row.id


async def add_upload(rt: Runtime, path: Path) -> str:
    key = f"uploads/{path.name}"
    await rt.storage.put_file(key, path, "audio/flac")
    async with rt.engine.begin() as conn:
        await conn.execute(UploadRow.__table__.insert().values(
            id="up-1", filename=path.name, state="complete", received=path.stat().st_size,
            size=path.stat().st_size, storage_key=key,
        ))  # fmt: skip
    return "up-1"


async def events(rt: Runtime, job_id: str) -> list[JobEventRow]:
    async with rt.engine.connect() as conn:
        rows = await conn.execute(
            select(JobEventRow).where(JobEventRow.job_id == job_id).order_by(JobEventRow.id)
        )
        return list(rows.all())  # type: ignore[arg-type]


async def test_upload_job_runs_to_done(
    runtime: Runtime, shared_media: Path, tmp_path: Path
) -> None:
    local = tmp_path / "jfk.flac"
    shutil.copy(shared_media / "jfk.flac", local)
    upload_id = await add_upload(runtime, local)
    job_id = await submit(runtime, {"source": {"upload_id": upload_id},
                                    "outputs": ["srt", "json", "md"]})  # fmt: skip
    worker = Worker(runtime)
    await worker.run(burst=True)
    assert worker.jobs_done == 1

    job = await runtime.jobs.get(job_id)
    assert job is not None
    assert job.status == JobStatus.DONE, job.error_message
    assert job.progress == pytest.approx(100.0)
    assert job.expires_at is not None
    outputs = job.result["outputs"]
    assert set(outputs) == {"srt", "json", "md"}
    for item in outputs.values():
        assert item["key"].startswith(f"results/{job_id}/")
        assert await runtime.storage.exists(item["key"])
    body = b"".join([c async for c in runtime.storage.get_stream(outputs["json"]["key"])])
    assert "fellow Americans" in json.loads(body)["text"]

    kinds = [e.kind for e in await events(runtime, job_id)]
    assert kinds.count(EventKind.STEP_START) == kinds.count(EventKind.STEP_FINISH) >= 4
    steps = [e.data["step"] for e in await events(runtime, job_id)
             if e.kind == EventKind.STEP_START]  # fmt: skip
    assert steps[0] == "fetch"
    assert "transcribe" in steps
    assert steps[-1] == "upload"


async def test_bad_source_fails_without_retry(runtime: Runtime) -> None:
    job_id = await submit(runtime, {"source": {"url": "http://127.0.0.1:9/nothing.mp4"}})
    await Worker(runtime).run(burst=True)
    job = await runtime.jobs.get(job_id)
    assert job is not None
    assert job.status == JobStatus.FAILED
    assert job.error_code == "blocked_url"
    assert job.attempts == 1


async def test_cancel_while_processing(
    runtime: Runtime, shared_media: Path, tmp_path: Path
) -> None:
    import asyncio

    long = tmp_path / "multilingual.mp3"
    shutil.copy(shared_media / "multilingual.mp3", long)
    upload_id = await add_upload(runtime, long)
    job_id = await submit(runtime, {"source": {"upload_id": upload_id}, "outputs": ["srt"]})
    worker = Worker(runtime)
    task = asyncio.ensure_future(worker.run(burst=True))
    for _ in range(200):
        job = await runtime.jobs.get(job_id)
        assert job is not None
        if job.stage == "transcribe":
            break
        await asyncio.sleep(0.1)
    assert await runtime.queue.cancel(job_id) == JobStatus.PROCESSING
    await asyncio.wait_for(task, timeout=60)
    job = await runtime.jobs.get(job_id)
    assert job is not None
    assert job.status == JobStatus.CANCELLED
    assert await runtime.storage.delete_prefix(f"results/{job_id}/") == 0  # nothing stored


async def test_retention_expires_and_deletes(
    runtime: Runtime, shared_media: Path, tmp_path: Path
) -> None:
    from sqlalchemy import update

    from reelscribe.backends.db.schema import JobRow
    from reelscribe.service import retention

    local = tmp_path / "jfk.flac"
    shutil.copy(shared_media / "jfk.flac", local)
    job_id = await submit(runtime, {"source": {"upload_id": await add_upload(runtime, local)},
                                    "outputs": ["txt"]})  # fmt: skip
    other = await submit(runtime, {"source": {"upload_id": "up-1"}, "outputs": ["vtt"]})
    await Worker(runtime).run(burst=True)
    async with runtime.engine.begin() as conn:  # make the first job's retention run out
        await conn.execute(update(JobRow).where(JobRow.id == job_id)
                           .values(expires_at=JobRow.created_at))  # fmt: skip
    assert await retention.sweep(runtime) == 1
    job = await runtime.jobs.get(job_id)
    assert job is not None
    assert job.status == JobStatus.EXPIRED
    assert job.result is None
    assert await runtime.storage.delete_prefix(f"results/{job_id}/") == 0
    kept = await runtime.jobs.get(other)
    assert kept is not None
    assert kept.status == JobStatus.DONE
    assert await runtime.storage.exists(kept.result["outputs"]["vtt"]["key"])
    assert await retention.sweep(runtime) == 0


async def test_a_storage_failure_fails_the_attempt_and_the_worker_goes_on(
    runtime: Runtime, shared_media: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    local = tmp_path / "jfk.flac"
    shutil.copy(shared_media / "jfk.flac", local)
    upload_id = await add_upload(runtime, local)
    real_put = runtime.storage.put_file
    failures = []

    async def disk_full_once(key: str, path: Path, *args: Any, **kwargs: Any) -> Any:
        if key.startswith("results/") and not failures:
            failures.append(key)
            raise OSError(28, "No space left on device")
        return await real_put(key, path, *args, **kwargs)

    monkeypatch.setattr(runtime.storage, "put_file", disk_full_once)
    spec = {"source": {"upload_id": upload_id}, "outputs": ["clip"], "start": 0, "end": 3}
    first, second = await submit(runtime, spec), await submit(runtime, spec)
    worker = Worker(runtime)
    await worker.run(burst=True)  # the retry is not due yet: burst ends after two

    failed = await runtime.jobs.get(first)
    assert failed is not None
    assert (failed.status, failed.attempts) == (JobStatus.QUEUED, 1), failed.error_message
    assert "No space left on device" in (failed.error_message or "")
    done = await runtime.jobs.get(second)
    assert done is not None
    assert done.status == JobStatus.DONE, done.error_message
    assert await runtime.storage.exists(done.result["outputs"]["clip"]["key"])
