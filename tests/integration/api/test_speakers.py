"""Speakers through the service: a per-channel job, then renaming its speakers with
``PATCH /api/jobs/{id}/speakers``: every text output says the new names, and nothing
was transcribed again."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pysrt
import pytest
import webvtt
from sqlalchemy import select

from reelscribe.backends.db import JobEventRow
from reelscribe.worker import Worker
from tests.integration.api.conftest import Live, StartApi


@pytest.fixture
def live_with_models(start_api: StartApi, models_dir: Path) -> Live:
    return start_api(models_dir=models_dir)


def _run_worker(live: Live) -> Worker:
    worker = Worker(live.runtime)
    live.run(worker.run(burst=True), timeout=300)
    return worker


async def _events(live: Live, job_id: str) -> list[JobEventRow]:
    async with live.runtime.engine.connect() as conn:
        stmt = select(JobEventRow.__table__).where(JobEventRow.job_id == job_id)
        return list((await conn.execute(stmt)).all())  # type: ignore[arg-type]


def _download(client: httpx.Client, result: dict[str, object]) -> dict[str, str]:
    texts = {}
    for output in result["outputs"]:  # type: ignore[attr-defined]
        texts[output["name"]] = client.get(output["url"]).text
    return texts


def test_split_channels_then_rename_rerenders_every_output(
    live_with_models: Live, shared_media: Path
) -> None:
    live = live_with_models
    with live.client() as admin:
        audio = (shared_media / "stereo_diarization.wav").read_bytes()
        upload = admin.post("/api/uploads", content=audio, headers={"X-Filename": "call.wav"})
        assert upload.status_code == 201, upload.text
        spec = {
            "source": {"upload_id": upload.json()["id"]},
            "outputs": ["srt", "vtt", "txt", "md", "rttm"],  # no json: it is kept anyway
            "options": {"channels": "split"},
        }
        job = admin.post("/api/jobs", json=spec).json()
        worker = _run_worker(live)
        assert worker.jobs_done == 1
        assert admin.get(f"/api/jobs/{job['id']}").json()["status"] == "done"
        before = _download(admin, admin.get(f"/api/jobs/{job['id']}/result").json())
        assert "Channel 1: He began a confused complaint" in before["txt"]
        assert "Channel 2: The horizon seems extremely distant." in before["txt"]

        renamed = admin.patch(
            f"/api/jobs/{job['id']}/speakers",
            json={"names": {"SPEAKER_00": "Diane", "SPEAKER_01": "Sheila Smith"}},
        )
        assert renamed.status_code == 200, renamed.text
        after = _download(admin, renamed.json())
        assert set(after) == {"srt", "vtt", "txt", "md", "rttm"}
        for name, text in after.items():
            assert "Diane" in text, name
            assert "Channel 1" not in text, name
        assert "Sheila Smith: The horizon seems extremely distant." in after["txt"]
        assert "**Sheila Smith**" in after["md"]
        assert "[Diane]" in " ".join(item.text for item in pysrt.from_string(after["srt"]))
        voices = {c.voice for c in webvtt.from_string(after["vtt"]).captions}
        assert voices == {"Diane", "Sheila Smith"}
        assert {line.split()[7] for line in after["rttm"].splitlines()} == {
            "Diane", "Sheila_Smith"
        }  # fmt: skip

        # Nothing ran again: one transcribe step in the job's history, the worker idle,
        # and the edit is an event of its own.
        steps = admin.get(f"/api/jobs/{job['id']}/steps").json()["steps"]
        assert [s["name"] for s in steps].count("transcribe") == 1
        assert _run_worker(live).jobs_done == 0
        edits = [e.data for e in live.run(_events(live, job["id"])) if "edit" in e.data]
        assert edits == [{"edit": "speakers", "speaker_names": {
            "SPEAKER_00": "Diane", "SPEAKER_01": "Sheila Smith"}}]  # fmt: skip

        # A second rename works from the renamed transcript; unknown ids are refused.
        again = admin.patch(f"/api/jobs/{job['id']}/speakers",
                            json={"names": {"SPEAKER_01": "Sheila"}})  # fmt: skip
        assert "Sheila: The horizon" in _download(admin, again.json())["txt"]
        assert "Diane: He began" in _download(admin, again.json())["txt"]
        bad = admin.patch(f"/api/jobs/{job['id']}/speakers",
                          json={"names": {"SPEAKER_09": "Nobody"}})  # fmt: skip
        assert bad.status_code == 400
        assert bad.json()["error"]["code"] == "invalid_input"
        assert "SPEAKER_09" in json.dumps(bad.json())
