"""Estimates before running: ``POST /api/estimates`` (the body of a job) answers the
source's duration, the steps with their times and the cost; a job keeps the estimate
made at submission and, once done, shows what it actually took beside it.

The five jobs the issue names (a local file, an upload, a URL, a clip, a
transcription) are estimated once the deployment has measured its speeds (two jobs
run first), then run; each estimate must be within ±50 % of the actual time. The
media are short (jfk.flac is 11 s) because CI has two cores.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from reelscribe.options import JobOptions
from reelscribe.pipeline.estimate import Prices, estimate_run
from reelscribe.pipeline.plan import build_plan
from reelscribe.pipeline.remote_probe import probe_source
from reelscribe.pipeline.runner import run
from reelscribe.service.estimates import device_of, learn_speeds
from reelscribe.worker import Worker
from tests.integration.api.conftest import UNRESOLVED_HOSTS, Live, StartApi
from tests.rangeserver import RangeServer

LOOPBACK = [*UNRESOLVED_HOSTS, "127.0.0.1/32"]
PRICES = {"price_cpu_per_hour": 3.6, "price_gpu_per_hour": 36.0}
#: One job at a time: jobs run side by side would slow each other down.
SERIAL = {"worker_concurrency": 1}


@pytest.fixture
def web(shared_media: Path, tmp_path: Path) -> Iterator[RangeServer]:
    root = tmp_path / "web"
    root.mkdir()
    shutil.copy(shared_media / "jfk.flac", root / "jfk.flac")
    with RangeServer(root) as server:
        yield server


def _upload(client: httpx.Client, path: Path) -> str:
    done = client.post("/api/uploads", content=path.read_bytes(), headers={"X-Filename": path.name})
    assert done.status_code == 201, done.text
    return str(done.json()["id"])


def _drain(live: Live) -> None:
    live.run(Worker(live.runtime).run(burst=True), timeout=300)


def _estimate(client: httpx.Client, spec: dict[str, Any]) -> dict[str, Any]:
    response = client.post("/api/estimates", json=spec)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def _stored_estimate(client: httpx.Client, job_id: str) -> dict[str, Any]:
    """The estimate stored with a job (a URL's is made in the background)."""
    for _ in range(200):
        estimate: dict[str, Any] | None = client.get(f"/api/jobs/{job_id}").json()["estimate"]
        if estimate is not None:
            return estimate
        time.sleep(0.05)
    raise AssertionError(f"job {job_id} got no estimate")


def _near(estimate: float, actual: float) -> bool:
    return 0.5 * actual <= estimate <= 1.5 * actual


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_estimates_learn_speeds_and_match_what_jobs_take(
    start_api: StartApi, models_dir: Path, shared_media: Path, web: RangeServer, tmp_path: Path
) -> None:
    live = start_api(models_dir=models_dir, allowed_networks=LOOPBACK, **PRICES, **SERIAL)
    with live.client() as client:
        jfk = _upload(client, shared_media / "jfk.flac")
        hotwords = _upload(client, shared_media / "hotwords.mp3")

        # Nothing measured yet: built-in speeds, labelled so.
        first = _estimate(client, {"source": {"upload_id": jfk}, "outputs": ["json"]})
        assert first["source_duration"] == pytest.approx(11.0, abs=0.1)
        assert first["media_seconds"] == pytest.approx(11.0, abs=0.1)
        assert [s["name"] for s in first["steps"]] == [
            "fetch", "probe", "audio", "transcribe", "render", "upload",
        ]  # fmt: skip
        assert {s["basis"] for s in first["steps"]} == {"default"}
        assert first["basis"] == "default"
        assert first["seconds"] == pytest.approx(sum(s["seconds"] for s in first["steps"]), 0.01)
        # 3.60 an hour is 0.001 a second of compute.
        assert first["cost"]["compute"] == pytest.approx(first["seconds"] * 0.001, rel=0.01)

        # Two jobs teach the deployment its speeds (one of them cuts a clip).
        for spec in (
            {"source": {"upload_id": jfk}, "outputs": ["json"]},
            {"source": {"upload_id": jfk}, "start": 1, "end": 8, "outputs": ["srt", "clip"]},
        ):
            assert client.post("/api/jobs", json=spec).status_code == 202
        _drain(live)

        jobs = {
            "upload": {"source": {"upload_id": jfk}, "outputs": ["srt", "json"]},
            "url": {"source": {"url": web.url("/jfk.flac")}, "outputs": ["srt"]},
            "clip": {
                "source": {"upload_id": jfk},
                "start": 2,
                "end": 9,
                "outputs": ["srt", "clip"],
            },
            "transcription": {"source": {"upload_id": hotwords}, "outputs": ["txt", "json"]},
        }
        for name, spec in jobs.items():
            estimate = _estimate(client, spec)
            assert estimate["basis"] == "measured", (name, estimate["steps"])
            submitted = client.post("/api/jobs", json=spec)
            assert submitted.status_code == 202, submitted.text
            job_id = submitted.json()["id"]
            stored = _stored_estimate(client, job_id)
            assert stored["basis"] == "measured"
            if "upload_id" in spec["source"]:  # probed at once; a URL in the background
                assert submitted.json()["estimate"] == stored
            _drain(live)
            job = client.get(f"/api/jobs/{job_id}").json()
            assert job["status"] == "done", job
            actual = job["actual"]
            assert job["estimate"]["seconds"] == stored["seconds"]
            assert set(actual["steps"]) == {s["name"] for s in stored["steps"]}
            assert _near(stored["seconds"], actual["seconds"]), (name, stored, actual)
            assert actual["cost"]["compute"] == pytest.approx(actual["seconds"] * 0.001, rel=0.01)
            result = client.get(f"/api/jobs/{job_id}/result").json()
            assert result["estimate"]["seconds"] == stored["seconds"]
            assert result["actual"]["seconds"] == actual["seconds"]

        clip = _estimate(client, jobs["clip"])
        assert clip["media_seconds"] == pytest.approx(7.0, abs=0.01)
        assert "clip" in [s["name"] for s in clip["steps"]]
        speeds = live.run(learn_speeds(live.runtime.engine, history=200))

    # A local file, as the CLI runs it: the deployment's speeds, then the pipeline itself.
    settings = live.settings
    source = str(shared_media / "jfk.flac")
    plan = build_plan(source, JobOptions(), settings, outputs=["srt"])
    media = probe_source(source, plan.request.fetch, max_bytes=settings.estimate_probe_max_bytes)
    local = estimate_run(
        [s.name for s in plan.stages], media.duration, None, max_seconds=settings.max_duration,
        speeds=speeds, prices=Prices.from_settings(settings), model=settings.model,
        device=device_of(settings.device), probe=media.method,
    )  # fmt: skip
    assert local.basis == "measured"
    ran = run(plan.request, tmp_path / "out", tmp_path / "work")
    assert _near(local.seconds, sum(ran.timings.values())), (local, ran.timings)


def test_a_url_is_probed_without_downloading_it(
    start_api: StartApi, web: RangeServer, shared_media: Path
) -> None:
    live = start_api(allowed_networks=LOOPBACK)
    size = (shared_media / "jfk.flac").stat().st_size
    with live.client() as client:
        body = _estimate(client, {"source": {"url": web.url("/jfk.flac")}, "start": 3})
        assert body["source_duration"] == pytest.approx(11.0, abs=0.1)
        assert body["media_seconds"] == pytest.approx(8.0, abs=0.1)
        assert body["probe"] == "range"
        assert 0 < web.bytes_sent["/jfk.flac"] <= size // 4  # the headers, not the media
        assert all("Range" in r.headers for r in web.requests if r.path == "/jfk.flac")


def test_bad_sources_and_ranges_are_refused_with_a_code(
    start_api: StartApi, web: RangeServer, shared_media: Path
) -> None:
    live = start_api()  # loopback is blocked, as by default
    with live.client() as client:
        jfk = _upload(client, shared_media / "jfk.flac")

        def refused(spec: dict[str, Any]) -> tuple[int, str]:
            response = client.post("/api/estimates", json=spec)
            return response.status_code, response.json()["error"]["code"]

        assert refused({"source": {"upload_id": "nope"}}) == (404, "upload_not_found")
        assert refused({"source": {"url": web.url("/jfk.flac")}}) == (400, "blocked_url")
        assert refused({"source": {"upload_id": jfk}, "start": 20}) == (400, "range_beyond_media")
        assert refused({"source": {"upload_id": jfk}, "start": 5, "end": 2})[0] == 422
        assert refused({"source": {"upload_id": jfk}, "options": {"model": "/etc"}}) == (
            422, "model_not_allowed",
        )  # fmt: skip
    assert web.count() == 0


def test_a_server_without_ranges_is_not_downloaded(start_api: StartApi, web: RangeServer) -> None:
    live = start_api(allowed_networks=LOOPBACK)
    web.unsized.add("/jfk.flac")  # answers 200 with the whole body, whatever the Range
    with live.client() as client:
        response = client.post("/api/estimates", json={"source": {"url": web.url("/jfk.flac")}})
        assert response.status_code == 400
        assert response.json()["error"]["code"] == "duration_unknown"
        # A job is still accepted; it just has no estimate.
        job = client.post("/api/jobs", json={"source": {"url": web.url("/jfk.flac")}})
        assert job.status_code == 202
        assert job.json()["estimate"] is None


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"], indirect=True)
def test_a_job_keeps_its_estimate_and_shows_what_it_took(
    live: Live, admin: httpx.Client, shared_media: Path
) -> None:
    """Without ASR: the job is completed as a worker would, with its step timings."""
    jfk = _upload(admin, shared_media / "jfk.flac")
    submitted = admin.post("/api/jobs", json={"source": {"upload_id": jfk}, "outputs": ["srt"]})
    assert submitted.status_code == 202, submitted.text
    job_id = submitted.json()["id"]
    assert submitted.json()["estimate"]["media_seconds"] == pytest.approx(11.0, abs=0.1)
    assert submitted.json()["actual"] is None
    timings = {"fetch": 0.01, "probe": 0.01, "audio": 0.1, "transcribe": 2.4, "render": 0.01,
               "upload": 0.02}  # fmt: skip
    result = {"start": 0.0, "end": None, "media": {"duration": 11.0}, "timings": timings,
              "transcript": {"model": {"name": "base", "device": "cpu"}}}  # fmt: skip
    claim = live.claim()
    live.run(live.runtime.queue.complete(claim, result))
    job = admin.get(f"/api/jobs/{job_id}").json()
    assert job["status"] == "done"
    assert job["estimate"] == submitted.json()["estimate"]
    assert job["actual"]["seconds"] == pytest.approx(2.55)
    assert job["actual"]["steps"] == timings
    listed = admin.get("/api/jobs").json()["items"][0]
    assert listed["actual"] == job["actual"]
    # The deployment has now measured every step of such a job.
    again = _estimate(admin, {"source": {"upload_id": jfk}, "outputs": ["srt"]})
    assert again["basis"] == "measured"
    steps = {s["name"]: s for s in again["steps"]}
    assert steps["transcribe"]["seconds"] == pytest.approx(2.4)
    assert steps["transcribe"]["samples"] == 1
