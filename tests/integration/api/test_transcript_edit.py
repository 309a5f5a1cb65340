"""Correcting a transcript through the service: ``PATCH /api/jobs/{id}/transcript``
re-renders every text output from the stored JSON transcript, keeps the timings of the
words that did not change and records the edit; nothing is transcribed again."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pysrt
import pytest
from sqlalchemy import select

from reelscribe.backends.db import JobEventRow
from reelscribe.worker import Worker
from tests.integration.api.conftest import Live, StartApi


@pytest.fixture
def live_with_models(start_api: StartApi, models_dir: Path) -> Live:
    return start_api(models_dir=models_dir)


async def _events(live: Live, job_id: str) -> list[JobEventRow]:
    async with live.runtime.engine.connect() as conn:
        stmt = select(JobEventRow.__table__).where(JobEventRow.job_id == job_id)
        return list((await conn.execute(stmt)).all())  # type: ignore[arg-type]


def _download(client: httpx.Client, result: dict[str, object]) -> dict[str, str]:
    return {o["name"]: client.get(o["url"]).text for o in result["outputs"]}  # type: ignore[attr-defined]


def test_correct_a_segment_rerenders_every_output(
    live_with_models: Live, shared_media: Path
) -> None:
    live = live_with_models
    with live.client() as admin:
        audio = (shared_media / "jfk.flac").read_bytes()
        upload = admin.post("/api/uploads", content=audio, headers={"X-Filename": "jfk.flac"})
        spec = {"source": {"upload_id": upload.json()["id"]}, "outputs": ["srt", "txt", "json"]}
        job = admin.post("/api/jobs", json=spec).json()
        url = f"/api/jobs/{job['id']}/transcript"

        early = admin.patch(url, json={"segments": [{"index": 0, "text": "x"}]})
        assert early.status_code == 409
        assert early.json()["error"]["code"] == "job_not_done"

        live.run(Worker(live.runtime).run(burst=True), timeout=300)
        before = admin.get(f"/api/jobs/{job['id']}/result").json()["transcript"]
        first = before["segments"][0]
        words = [w["text"].strip() for w in first["words"]]
        assert len(words) >= 4
        # Replace the third word, keep the others.
        corrected = [*words[:2], "REELSCRIBED", *words[3:]]
        edited = admin.patch(url, json={"segments": [{"index": 0, "text": " ".join(corrected)}]})
        assert edited.status_code == 200, edited.text
        result = edited.json()
        after = _download(admin, result)
        assert set(after) == {"srt", "txt", "json"}
        assert "REELSCRIBED" in after["txt"]
        assert "REELSCRIBED" in pysrt.from_string(after["srt"])[0].text
        doc = json.loads(after["json"])
        assert doc == result["transcript"]
        new_words = doc["segments"][0]["words"]
        assert [w["text"].strip() for w in new_words] == corrected
        for i, (old, new) in enumerate(zip(first["words"], new_words, strict=True)):
            if i == 2:  # the corrected word takes the replaced one's time, marked as a guess
                assert new["interpolated"] is True
                assert (new["start"], new["end"]) == (old["start"], old["end"])
            else:
                assert new == old
        assert doc["segments"][1:] == before["segments"][1:]

        edits = [e.data for e in live.run(_events(live, job["id"])) if "edit" in e.data]
        assert edits == [{"edit": "text", "segments": [0]}]
        steps = admin.get(f"/api/jobs/{job['id']}/steps").json()["steps"]
        assert [s["name"] for s in steps].count("transcribe") == 1

        # Refusals: an index the transcript lacks, a malformed body, an unknown job.
        count = len(doc["segments"])
        bad = admin.patch(url, json={"segments": [{"index": count, "text": "x"}]})
        assert bad.status_code == 400
        assert bad.json()["error"]["code"] == "invalid_input"
        twice = admin.patch(url, json={"segments": [{"index": 0, "text": "a"},
                                                    {"index": 0, "text": "b"}]})  # fmt: skip
        assert twice.status_code == 400
        assert "named twice" in twice.json()["error"]["message"]
        assert admin.patch(url, json={"segments": []}).status_code == 422
        missing = admin.patch("/api/jobs/nope/transcript",
                              json={"segments": [{"index": 0, "text": "x"}]})  # fmt: skip
        assert missing.status_code == 404
