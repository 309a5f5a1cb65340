"""A cancel lands within 2 s in every stage: during a slow download, during an ffmpeg
re-encode (the ffmpeg process is killed) and during transcription (between segments)."""

from __future__ import annotations

import asyncio
import shutil
import threading
import time
from collections.abc import AsyncIterator, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from reelscribe.backends.db.enums import JobStatus
from reelscribe.service.runtime import Runtime
from reelscribe.worker import Worker
from tests.conftest import make_media
from tests.integration.service.conftest import service_settings
from tests.integration.service.test_worker import add_upload, submit

pytestmark = pytest.mark.anyio
CANCEL_WITHIN = 2.0


@pytest.fixture
async def rt(tmp_path: Path, models_dir: Path) -> AsyncIterator[Runtime]:
    settings = service_settings(
        tmp_path, models_dir, allowed_networks=["127.0.0.1/32"], heartbeat_seconds=0.3,
        batched_min_duration=100000.0,  # sequential decoding: segment by segment
    )  # fmt: skip
    async with Runtime(settings) as runtime:
        yield runtime


async def cancel_in_stage(rt: Runtime, job_id: str, stage: str, *, settle: float = 1.0,
                          timeout: float = 120.0) -> float:  # fmt: skip
    """Runs a worker until the job is in ``stage``, cancels it; returns how long the
    cancel took to land (the job ``cancelled`` and the worker's slot free again)."""
    worker = Worker(rt)
    task = asyncio.ensure_future(worker.run(burst=True))
    try:
        deadline = time.monotonic() + timeout
        while True:
            job = await rt.jobs.get(job_id)
            assert job is not None
            if job.stage == stage:
                break
            assert job.status in (JobStatus.QUEUED, JobStatus.PROCESSING), job.error_message
            assert time.monotonic() < deadline, f"never reached {stage}: {job.stage}"
            await asyncio.sleep(0.05)
        await asyncio.sleep(settle)  # well inside the stage
        job = await rt.jobs.get(job_id)
        assert job is not None
        assert job.stage == stage, f"{stage} ended too soon to cancel it"
        started = time.monotonic()
        assert await rt.queue.cancel(job_id) == JobStatus.PROCESSING
        while True:
            job = await rt.jobs.get(job_id)
            assert job is not None
            if job.status == JobStatus.CANCELLED:
                break
            assert time.monotonic() - started < 30, job.status
            await asyncio.sleep(0.02)
        took = time.monotonic() - started
        # The worker goes on once the stage's thread has stopped (ASR: after the
        # segment in hand).
        await asyncio.wait_for(task, 60)
        free = time.monotonic() - started
        print(f"cancel landed in {took:.2f} s; the worker was free after {free:.2f} s")
        return took
    finally:
        worker.stop.set()
        if not task.done():
            task.cancel()


def ffmpeg_children() -> list[str]:
    import os

    me = str(os.getpid())
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)
        except OSError:
            continue
        if "ffmpeg" in fields[0] and fields[1].split()[1] == me:
            found.append(stat.parent.name)
    return found


async def test_cancel_lands_during_an_ffmpeg_reencode(
    rt: Runtime, tmp_path: Path, media_dir: Path
) -> None:
    source = make_media(tmp_path / "long.mp4", duration=120.0, size="1280x720", fps=30,
                        gop=300)  # fmt: skip
    upload_id = await add_upload(rt, source)
    # Exact mode with an unaligned start re-encodes the whole range (tens of seconds).
    spec = {"source": {"upload_id": upload_id}, "outputs": ["clip"], "start": 0.5, "end": 119.5}
    job_id = await submit(rt, {**spec, "options": {"clip_mode": "exact"}})
    took = await cancel_in_stage(rt, job_id, "clip")
    assert took < CANCEL_WITHIN, took
    assert ffmpeg_children() == []  # killed, not left running
    assert await rt.storage.delete_prefix(f"results/{job_id}/") == 0


async def test_cancel_lands_during_transcription(
    rt: Runtime, shared_media: Path, tmp_path: Path
) -> None:
    local = tmp_path / "multilingual.mp3"
    shutil.copy(shared_media / "multilingual.mp3", local)
    upload_id = await add_upload(rt, local)
    job_id = await submit(rt, {"source": {"upload_id": upload_id}, "outputs": ["srt"]})
    took = await cancel_in_stage(rt, job_id, "transcribe")
    assert took < CANCEL_WITHIN, took


class _Trickle(BaseHTTPRequestHandler):
    """Serves 20 MB at ~100 KB/s: a download that would take minutes."""

    def do_GET(self) -> None:
        size = 20 * 1024 * 1024
        self.send_response(200)
        self.send_header("Content-Type", "video/mp4")
        self.send_header("Content-Length", str(size))
        self.end_headers()
        try:
            for _ in range(size // 4096):
                self.wfile.write(b"\0" * 4096)
                self.wfile.flush()
                time.sleep(0.04)
        except (BrokenPipeError, ConnectionResetError):
            pass

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def trickle() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Trickle)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/slow.mp4"
    finally:
        server.shutdown()
        server.server_close()


async def test_cancel_lands_during_a_slow_download(rt: Runtime, trickle: str) -> None:
    job_id = await submit(rt, {"source": {"url": trickle}, "outputs": ["clip"], "start": 0,
                               "end": 1})  # fmt: skip
    took = await cancel_in_stage(rt, job_id, "fetch")
    assert took < CANCEL_WITHIN, took
