"""A job with ``engine: hosted`` through the service: the worker's engines (made once
per worker from its settings) send the audio to an OpenAI-compatible stand-in, and the
engine shows in the result, the JSON transcript and the job's events."""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from reelscribe.asr.faster_whisper import EngineOptions, LoadedModel, load_model
from reelscribe.backends.db.enums import EventKind, JobStatus
from reelscribe.config import Settings
from reelscribe.errors import InvalidInputError
from reelscribe.options import JobOptions
from reelscribe.pipeline.plan import build_plan
from reelscribe.service.runtime import Runtime
from reelscribe.worker import Worker
from tests.asrserver import AsrServer
from tests.integration.service.conftest import service_settings
from tests.integration.service.test_worker import add_upload, events, submit

KEY = "sk-service-5c6d7e8f9a0bSECRET"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def server(engine_options: EngineOptions) -> Iterator[AsrServer]:
    model: LoadedModel = load_model(engine_options)
    with AsrServer(model, api_key=KEY) as server:
        yield server


@pytest.mark.anyio
async def test_a_hosted_job_runs_through_the_worker(
    server: AsrServer,
    shared_media: Path,
    tmp_path: Path,
    models_dir: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    server.failures += [(429, {"Retry-After": "1"})]
    settings = service_settings(tmp_path, models_dir, hosted_asr_url=server.base_url,
                                hosted_asr_api_key=KEY, hosted_asr_max_wait=10.0)  # fmt: skip
    local = tmp_path / "jfk.flac"
    shutil.copy(shared_media / "jfk.flac", local)
    async with Runtime(settings) as runtime:
        upload_id = await add_upload(runtime, local)
        job_id = await submit(runtime, {"source": {"upload_id": upload_id}, "outputs": ["json"],
                                        "options": {"engine": "hosted"}})  # fmt: skip
        worker = Worker(runtime)
        await worker.run(burst=True)
        job = await runtime.jobs.get(job_id)
        assert job is not None
        assert job.status == JobStatus.DONE, job.error_message
        key = job.result["outputs"]["json"]["key"]
        body = b"".join([c async for c in runtime.storage.get_stream(key)])
        noted = [e.data for e in await events(runtime, job_id)
                 if e.kind == EventKind.PROGRESS and "engine" in e.data]  # fmt: skip
    assert [r.status for r in server.requests] == [429, 200]
    assert job.result["transcript"]["engine"]["name"] == "openai-compatible"
    document = json.loads(body)
    assert document["engine"] == {"name": "openai-compatible", "model": "whisper-1",
                                  "fallback_from": None}  # fmt: skip
    assert document["model"]["source"] == "hosted"
    assert "country" in document["text"].lower()
    assert len(noted) == 1
    assert noted[0] | {"attempt": 1} == {"step": "transcribe", "engine": "openai-compatible",
                                         "model": "whisper-1", "fallback_from": None,
                                         "attempt": 1}  # fmt: skip
    assert caplog.records
    assert not any(KEY in r.getMessage() for r in caplog.records)
    assert KEY not in caplog.text


@pytest.mark.anyio
async def test_a_job_naming_a_hosted_route_is_refused_where_none_is_configured(
    tmp_path: Path, models_dir: Path
) -> None:
    from reelscribe.api.deps import Services
    from reelscribe.service.auth import ANONYMOUS
    from reelscribe.service.spec import JobSpec

    spec = JobSpec.model_validate({"source": {"url": "https://example.com/a.mp3"},
                                   "options": {"engine": "hosted-then-local"}})  # fmt: skip
    async with Runtime(service_settings(tmp_path, models_dir)) as runtime:
        with pytest.raises(InvalidInputError, match="REELSCRIBE_HOSTED_ASR_URL"):
            await Services.build(runtime).jobs.create(spec, caller=ANONYMOUS)


def test_a_hosted_route_needs_a_hosted_engine_configured() -> None:
    with pytest.raises(InvalidInputError, match="REELSCRIBE_HOSTED_ASR_URL"):
        build_plan("a.wav", JobOptions(engine="local-then-hosted"), Settings(), outputs=["srt"])
    hosted = Settings(hosted_asr_url="http://127.0.0.1:9/v1")
    plan = build_plan("a.wav", JobOptions(engine="hosted"), hosted, outputs=["srt"])
    assert plan.request.transcribe.route == "hosted"
    fallback = hosted.model_copy(update={"asr_engine": "hosted-then-local"})
    default = build_plan("a.wav", JobOptions(), fallback, outputs=["srt"])
    assert default.request.transcribe.route == "hosted-then-local"


def test_the_cli_runs_hosted_with_its_engine_flag(
    server: AsrServer, shared_media: Path, tmp_path: Path, models_dir: Path
) -> None:
    env = dict(os.environ, REELSCRIBE_MODELS_DIR=str(models_dir),
               REELSCRIBE_HOSTED_ASR_URL=server.base_url,
               REELSCRIBE_HOSTED_ASR_API_KEY=KEY)  # fmt: skip
    done = subprocess.run(
        [sys.executable, "-m", "reelscribe.cli", "transcribe", str(shared_media / "jfk.flac"),
         "--engine", "hosted", "-f", "json", "-o", str(tmp_path), "--json", "--quiet"],
        env=env, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert summary["transcript"]["engine"]["name"] == "openai-compatible"
    assert len(server.requests) == 1
    assert KEY not in done.stdout + done.stderr
    unconfigured = {k: v for k, v in env.items() if k != "REELSCRIBE_HOSTED_ASR_URL"}
    refused = subprocess.run(
        [sys.executable, "-m", "reelscribe.cli", "transcribe", str(shared_media / "jfk.flac"),
         "--engine", "local-then-hosted", "-o", str(tmp_path)],
        env=unconfigured, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert refused.returncode != 0
    assert "REELSCRIBE_HOSTED_ASR_URL" in refused.stderr
    assert len(refused.stderr.strip().splitlines()) == 1
