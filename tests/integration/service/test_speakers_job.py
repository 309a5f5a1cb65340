"""A job that asks for speakers: the worker runs the diarize step (shown in the step
events, so /steps and progress), and the stored transcript labels both speakers."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from reelscribe.backends.db.enums import EventKind, JobStatus
from reelscribe.media.ffmpeg import ffmpeg_exe
from reelscribe.service.runtime import Runtime
from reelscribe.worker import Worker
from tests.conftest import decode_channel
from tests.integration.service.test_worker import add_upload, events, submit

pytestmark = pytest.mark.anyio


def two_speakers(shared_media: Path, dest: Path) -> Path:
    import subprocess

    source = shared_media / "stereo_diarization.wav"
    mono = np.concatenate([decode_channel(source, 0), np.zeros(16_000, np.float32),
                           decode_channel(source, 1)])  # fmt: skip
    subprocess.run([ffmpeg_exe(), "-loglevel", "error", "-f", "f32le", "-ar", "16000", "-ac",
                    "1", "-i", "pipe:0", str(dest)], input=mono.astype("<f4").tobytes(),
                   check=True)  # fmt: skip
    return dest


async def test_speakers_job_runs_the_diarize_step(
    runtime: Runtime, shared_media: Path, tmp_path: Path
) -> None:
    upload_id = await add_upload(runtime, two_speakers(shared_media, tmp_path / "talk.wav"))
    job_id = await submit(runtime, {"source": {"upload_id": upload_id}, "outputs": ["json"],
                                    "options": {"speakers": True}})  # fmt: skip
    worker = Worker(runtime)
    await worker.run(burst=True)
    job = await runtime.jobs.get(job_id)
    assert job is not None
    assert job.status == JobStatus.DONE, job.error_message
    steps = [e.data["step"] for e in await events(runtime, job_id)
             if e.kind == EventKind.STEP_START]  # fmt: skip
    assert steps == ["fetch", "probe", "audio", "transcribe", "diarize", "render", "upload"]
    key = job.result["outputs"]["json"]["key"]
    doc = json.loads(b"".join([c async for c in runtime.storage.get_stream(key)]))
    assert [s["id"] for s in doc["speakers"]] == ["SPEAKER_00", "SPEAKER_01"]
    assert job.result["transcript"]["speakers"] == [
        {"id": "SPEAKER_00", "name": "SPEAKER_00"}, {"id": "SPEAKER_01", "name": "SPEAKER_01"}
    ]  # fmt: skip
