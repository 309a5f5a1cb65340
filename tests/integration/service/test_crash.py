"""A worker process killed with SIGKILL mid-transcription: the job is taken over by
another worker after the lease expires and finishes with exactly one set of results."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import select

from reelscribe.backends.db.enums import EventKind, JobStatus
from reelscribe.backends.db.schema import JobEventRow
from reelscribe.service.runtime import Runtime
from tests.integration.service.conftest import service_settings
from tests.integration.service.test_worker import add_upload, submit

pytestmark = pytest.mark.anyio
CLI = str(Path(sys.executable).with_name("reelscribe"))


def worker_env(root: Path, models_dir: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update({
        "REELSCRIBE_DATABASE_URL": f"sqlite:///{root / 'db.sqlite'}",
        "REELSCRIBE_STORAGE_URL": f"file://{root / 'blobs'}",
        "REELSCRIBE_SIGNING_KEY": "test-signing-key-0123456789",
        "REELSCRIBE_MODELS_DIR": str(models_dir),
        "REELSCRIBE_CACHE_DIR": str(root / "cache"),
        "REELSCRIBE_LEASE_SECONDS": "2",
        "REELSCRIBE_HEARTBEAT_SECONDS": "0.3",
        # sequential decoding: slow enough to be killed in the middle of it
        "REELSCRIBE_BATCHED_MIN_DURATION": "100000",
    })  # fmt: skip
    return env


async def test_sigkill_mid_transcription(
    tmp_path: Path, models_dir: Path, shared_media: Path
) -> None:
    settings = service_settings(tmp_path, models_dir)
    async with Runtime(settings) as rt:
        media = tmp_path / "multilingual.mp3"
        shutil.copy(shared_media / "multilingual.mp3", media)
        job_id = await submit(rt, {"source": {"upload_id": await add_upload(rt, media)},
                                   "outputs": ["srt", "json"]})  # fmt: skip
        env = worker_env(tmp_path, models_dir)
        first = subprocess.Popen([CLI, "worker"], env=env, stdout=subprocess.DEVNULL,
                                 stderr=subprocess.DEVNULL)  # fmt: skip
        try:
            deadline = time.monotonic() + 120
            while True:
                job = await rt.jobs.get(job_id)
                assert job is not None
                if job.stage == "transcribe" and job.progress > 40:
                    break
                assert time.monotonic() < deadline, "the first worker never got to transcribe"
                assert first.poll() is None, "the first worker exited early"
                await asyncio.sleep(0.1)
        finally:
            first.send_signal(signal.SIGKILL)
            first.wait()
        job = await rt.jobs.get(job_id)
        assert job is not None
        assert job.status == JobStatus.PROCESSING  # the killed worker still holds the lease
        await asyncio.sleep(2.5)  # its lease (2 s) runs out; the job becomes claimable again

        second = subprocess.run([CLI, "worker", "--burst"], env=env, capture_output=True,
                                text=True, timeout=180, check=False)  # fmt: skip
        assert second.returncode == 0, second.stderr[-2000:]

        job = await rt.jobs.get(job_id)
        assert job is not None
        assert job.status == JobStatus.DONE, (job.error_code, job.error_message)
        assert job.attempts == 2
        async with rt.engine.connect() as conn:
            rows = (await conn.execute(select(JobEventRow).where(JobEventRow.job_id == job_id)
                                       .order_by(JobEventRow.id))).all()  # fmt: skip
        starts = [e for e in rows if e.kind == EventKind.STEP_START and e.data["step"] == "fetch"]
        assert [e.data["attempt"] for e in starts] == [1, 2]
        transitions = [(e.data["from"], e.data["to"]) for e in rows
                       if e.kind == EventKind.TRANSITION]  # fmt: skip
        assert transitions[-1] == ("processing", "done")
        assert sum(1 for t in transitions if t[1] == "done") == 1
        # exactly one set of results: each output stored once, nothing else under the job
        outputs = job.result["outputs"]
        assert set(outputs) == {"srt", "json"}
        assert await rt.storage.delete_prefix(f"results/{job_id}/") == len(outputs)
