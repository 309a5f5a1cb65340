"""A worker heals instead of hanging: failed claims, failed heartbeats and failed
writes are retried with backoff; no slot is lost; a job's scratch folder outlives its
pipeline thread; the worker's heartbeat row says whether it is taking jobs."""

from __future__ import annotations

import asyncio
import errno
import itertools
import logging
import os
import shutil
import time
from pathlib import Path
from typing import Any

import pytest

from reelscribe.backends.db import workers
from reelscribe.backends.db.enums import JobStatus
from reelscribe.backends.faults import Retrier, is_transient
from reelscribe.backends.queue import Claim
from reelscribe.service import scratch
from reelscribe.service.runtime import Runtime
from reelscribe.worker import Worker
from tests.integration.service.test_worker import add_upload, submit

pytestmark = pytest.mark.anyio

CLIP = {"outputs": ["clip"], "start": 0, "end": 3}


def refused() -> OSError:
    return ConnectionRefusedError(errno.ECONNREFUSED, "Connect call failed ('127.0.0.1', 5432)")


async def clip_job(rt: Runtime, media: Path, tmp_path: Path) -> str:
    local = tmp_path / "jfk.flac"
    if not local.exists():
        shutil.copy(media / "jfk.flac", local)
        await add_upload(rt, local)
    return await submit(rt, {"source": {"upload_id": "up-1"}, **CLIP})


async def until(predicate: Any, timeout: float, step: float = 0.05) -> None:
    deadline = time.monotonic() + timeout
    while not await predicate():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(step)


async def test_failed_claims_do_not_end_the_slot(
    runtime: Runtime,
    shared_media: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    real_claim = runtime.queue.claim
    calls: list[float] = []

    async def down_for_a_while(worker_id: str, lease_seconds: float) -> Claim | None:
        calls.append(time.monotonic())
        if len(calls) <= 4:  # the database is restarting
            raise refused()
        return await real_claim(worker_id, lease_seconds)

    monkeypatch.setattr(runtime.queue, "claim", down_for_a_while)
    job_id = await clip_job(runtime, shared_media, tmp_path)
    worker = Worker(runtime)
    caplog.set_level(logging.DEBUG, logger="reelscribe.worker")
    task = asyncio.ensure_future(worker.run())
    try:

        async def done() -> bool:
            job = await runtime.jobs.get(job_id)
            return job is not None and job.status == JobStatus.DONE

        await until(done, 30)
    finally:
        worker.stop.set()
        await asyncio.wait_for(task, 10)
    assert worker.jobs_done == 1
    gaps = [b - a for a, b in itertools.pairwise(calls[:5])]
    assert all(gap >= 0.05 for gap in gaps), gaps  # backed off, not a busy loop
    warnings = [r for r in caplog.records if r.levelno >= logging.WARNING and "claim" in r.message]
    # one line when the outage starts, one when it ends: not one per retry
    assert [("retrying" in r.message, "recovered" in r.message) for r in warnings] == [
        (True, False),
        (False, True),
    ]


async def test_a_failing_wait_does_not_end_the_slot(
    runtime: Runtime, shared_media: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def broken_wait(timeout: float) -> None:
        raise refused()

    monkeypatch.setattr(runtime.queue, "wait", broken_wait)
    worker = Worker(runtime)
    task = asyncio.ensure_future(worker.run())
    await asyncio.sleep(0.5)  # a few claims find nothing; every wait fails
    job_id = await clip_job(runtime, shared_media, tmp_path)
    try:

        async def done() -> bool:
            job = await runtime.jobs.get(job_id)
            return job is not None and job.status == JobStatus.DONE

        await until(done, 30)
    finally:
        worker.stop.set()
        await asyncio.wait_for(task, 10)


async def test_heartbeat_outage_keeps_the_job_and_its_folder(
    runtime: Runtime, shared_media: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Heartbeats fail for less than a lease: the job goes on and finishes once; the
    scratch folder is removed only after the pipeline thread ended."""
    real_heartbeat = runtime.queue.heartbeat
    failing = {"n": 0}

    async def flaky_heartbeat(claim: Claim) -> bool:
        if failing["n"] < 3:
            failing["n"] += 1
            raise refused()
        return await real_heartbeat(claim)

    monkeypatch.setattr(runtime.queue, "heartbeat", flaky_heartbeat)
    import reelscribe.worker as worker_module

    real_run = worker_module.run
    seen: dict[str, Any] = {}

    def slow_run(
        request: Any, out: Path, work: Path, progress: Any, limits: Any, **engines: Any
    ) -> Any:
        time.sleep(1.5)  # several heartbeats fail meanwhile
        result = real_run(request, out, work, progress, limits)
        seen["tmp_exists_at_end"] = out.parent.exists()
        seen["tmp"] = out.parent
        return result

    monkeypatch.setattr(worker_module, "run", slow_run)
    job_id = await clip_job(runtime, shared_media, tmp_path)
    await Worker(runtime).run(burst=True)
    job = await runtime.jobs.get(job_id)
    assert job is not None
    assert (job.status, job.attempts) == (JobStatus.DONE, 1), job.error_message
    assert failing["n"] == 3
    assert seen["tmp_exists_at_end"] is True
    assert not seen["tmp"].exists()  # removed after the thread ended


async def test_scratch_folder_outlives_an_abandoned_pipeline_thread(
    runtime: Runtime, shared_media: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Heartbeats fail for longer than a lease: the worker gives the job up, and still
    waits for the pipeline thread before deleting its folder."""

    async def dead_heartbeat(claim: Claim) -> bool:
        raise refused()

    monkeypatch.setattr(runtime.queue, "heartbeat", dead_heartbeat)
    import reelscribe.worker as worker_module

    state: dict[str, Any] = {}

    def stubborn_run(
        request: Any, out: Path, work: Path, progress: Any, limits: Any, **engines: Any
    ) -> Any:
        work.mkdir(parents=True)
        deadline = time.monotonic() + 20
        try:
            while time.monotonic() < deadline:  # reports progress until told to stop
                from reelscribe.progress import Progress

                progress(Progress(stage="clip", fraction=0.5))
                time.sleep(0.05)
        finally:
            state["folder_at_thread_end"] = work.exists()
        raise AssertionError("never aborted")

    monkeypatch.setattr(worker_module, "run", stubborn_run)
    await clip_job(runtime, shared_media, tmp_path)
    started = time.monotonic()
    worker = Worker(runtime)
    task = asyncio.ensure_future(worker.run())
    try:

        async def thread_ended() -> bool:
            return "folder_at_thread_end" in state

        await until(thread_ended, runtime.settings.lease_seconds + 5)
    finally:
        worker.stop.set()
        await asyncio.wait_for(task, 10)
    assert time.monotonic() - started < runtime.settings.lease_seconds + 5
    assert state["folder_at_thread_end"] is True


async def test_worker_heartbeat_row_reports_claims(runtime: Runtime) -> None:
    settings = runtime.settings.model_copy(update={"worker_beat_seconds": 0.1})
    runtime.settings = settings
    worker = Worker(runtime, worker_id="w-beat")
    task = asyncio.ensure_future(worker.run())
    try:

        async def published() -> bool:
            live = await workers.live_workers(runtime.engine, within=10)
            return any(w.id == "w-beat" and w.claim_age is not None for w in live)

        await until(published, 10)
        (state,) = [w for w in await workers.live_workers(runtime.engine, within=10)]
        assert state.healthy(10)
        assert state.claim_age is not None
        assert state.claim_age < 6  # claims at least every wait (5 s)
    finally:
        worker.stop.set()
        await asyncio.wait_for(task, 10)
    assert await workers.live_workers(runtime.engine, within=10) == []  # forgotten at exit


def test_sweep_removes_only_orphaned_scratch_folders(tmp_path: Path) -> None:
    mine = scratch.make(tmp_path)
    dead = tmp_path / f"{scratch.PREFIX}dead"
    dead.mkdir()
    (dead / scratch.OWNER).write_text("999999999 1\n")  # no such process
    reused = tmp_path / f"{scratch.PREFIX}reused"
    reused.mkdir()
    (reused / scratch.OWNER).write_text(f"{os.getpid()} not-my-start-time\n")
    old = tmp_path / f"{scratch.PREFIX}old"
    old.mkdir()
    os.utime(old, (time.time() - 7200, time.time() - 7200))
    young = tmp_path / f"{scratch.PREFIX}young"
    young.mkdir()
    other = tmp_path / "something-else"
    other.mkdir()

    assert scratch.sweep(tmp_path, max_age=3600) == 3
    assert {p.name for p in tmp_path.iterdir()} == {mine.name, young.name, other.name}


def test_sweep_spares_the_folder_of_a_live_worker_process(tmp_path: Path) -> None:
    import subprocess
    import sys

    code = (
        "import sys, time; from pathlib import Path; from reelscribe.service import scratch;"
        "print(scratch.make(Path(sys.argv[1])), flush=True); time.sleep(60)"
    )
    child = subprocess.Popen([sys.executable, "-c", code, str(tmp_path)], stdout=subprocess.PIPE,
                             text=True)  # fmt: skip
    try:
        assert child.stdout is not None
        folder = Path(child.stdout.readline().strip())
        assert scratch.sweep(tmp_path, max_age=0) == 0
        assert folder.exists()
        child.kill()
        child.wait()
        assert scratch.sweep(tmp_path, max_age=0) == 1  # its owner is gone
        assert not folder.exists()
    finally:
        child.kill()
        child.wait()
        assert child.stdout is not None
        child.stdout.close()


def test_transient_classification() -> None:
    from sqlalchemy.exc import OperationalError

    assert is_transient(refused())
    assert is_transient(TimeoutError())
    assert is_transient(OperationalError("SELECT 1", {}, refused()))
    from redis.exceptions import ConnectionError as RedisConnectionError

    assert is_transient(RedisConnectionError("Error 111 connecting to 127.0.0.1:6379"))
    assert not is_transient(ValueError("bad"))
    assert not is_transient(FileNotFoundError(errno.ENOENT, "gone"))
    wrapped = RuntimeError("while claiming")
    wrapped.__cause__ = refused()
    assert is_transient(wrapped)


def test_backoff_is_capped_exponential_with_jitter() -> None:
    retrier = Retrier("test", logging.getLogger("test"), base=0.1, cap=1.0, jitter=0.5)
    delays = [retrier.failed(refused()) for _ in range(10)]
    assert 0.05 <= delays[0] <= 0.1
    assert all(d <= 1.0 for d in delays)
    assert delays[-1] >= 0.5  # reached the cap (less jitter)
    retrier.succeeded()
    assert retrier.failures == 0
