"""A job whose speech is partly lost records the warnings: a ``progress`` event with a
``warnings`` list (event kinds are fixed by a CHECK constraint), the job summary, and
the stored JSON transcript."""

from __future__ import annotations

import json
import wave
from pathlib import Path

import numpy as np
import pytest

from reelscribe.backends.db.enums import EventKind, JobStatus
from reelscribe.service.runtime import Runtime
from reelscribe.worker import Worker
from tests.conftest import decode_channel
from tests.integration.service.test_worker import add_upload, events, submit

pytestmark = [pytest.mark.anyio, pytest.mark.media]


def _repeated(shared_media: Path, dest: Path) -> Path:
    """JFK's sentence six times (73 s; see tests/integration/test_warnings.py)."""
    jfk = decode_channel(shared_media / "jfk.flac")
    pause = np.zeros(16_000, np.float32)
    audio = np.concatenate([x for _ in range(6) for x in (pause, jfk)] + [pause])
    with wave.open(str(dest), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(16_000)
        out.writeframes((np.clip(audio, -1, 1) * 32767).astype("<i2").tobytes())
    return dest


@pytest.mark.timeout(600)
async def test_lost_speech_is_recorded_in_the_events_and_the_result(
    runtime: Runtime, shared_media: Path, tmp_path: Path
) -> None:
    upload_id = await add_upload(runtime, _repeated(shared_media, tmp_path / "repeated.wav"))
    job_id = await submit(runtime, {"source": {"upload_id": upload_id}, "outputs": ["json"]})
    await Worker(runtime).run(burst=True)
    job = await runtime.jobs.get(job_id)
    assert job is not None
    assert job.status == JobStatus.DONE, job.error_message

    recorded = [e.data for e in await events(runtime, job_id)
                if e.kind == EventKind.PROGRESS and "warnings" in e.data]  # fmt: skip
    assert len(recorded) == 1
    warnings = recorded[0]["warnings"]
    assert {w["reason"] for w in warnings} == {"uncovered_speech", "hallucination_guard"}
    assert all(set(w) == {"start", "end", "reason", "detail"} for w in warnings)
    assert job.result["transcript"]["warnings"] == warnings
    key = job.result["outputs"]["json"]["key"]
    body = b"".join([c async for c in runtime.storage.get_stream(key)])
    assert json.loads(body)["warnings"] == warnings
