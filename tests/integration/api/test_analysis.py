"""Analysis and moderation through the service: a job asking for a summary, keywords
and chapters carries them in its result; a job whose frames the detector flags, under
a block policy, ends ``blocked`` with only its report published, and signed links to
anything else of the job are refused."""

from __future__ import annotations

from pathlib import Path

from reelscribe.worker import Worker
from tests.integration.analysis.test_moderation import photo_video
from tests.integration.api.conftest import Live, StartApi


def _run_worker(live: Live) -> Worker:
    worker = Worker(live.runtime)
    live.run(worker.run(burst=True), timeout=300)
    return worker


def _upload(live: Live, path: Path) -> str:
    with live.client() as admin:
        done = admin.post("/api/uploads", content=path.read_bytes(),
                          headers={"X-Filename": path.name})  # fmt: skip
        assert done.status_code == 201, done.text
        return str(done.json()["id"])


def test_a_summary_job_carries_its_analysis(
    start_api: StartApi, models_dir: Path, shared_media: Path
) -> None:
    live = start_api(models_dir=models_dir)
    upload = _upload(live, shared_media / "jfk.flac")
    with live.client() as admin:
        options = {"summary_sentences": 1, "keywords": True, "language": "en"}
        spec = {"source": {"upload_id": upload}, "outputs": ["json", "md"], "options": options}
        job = admin.post("/api/jobs", json=spec)
        assert job.status_code == 202, job.text
        job_id = job.json()["id"]
        assert _run_worker(live).jobs_done == 1
        assert admin.get(f"/api/jobs/{job_id}").json()["status"] == "done"
        result = admin.get(f"/api/jobs/{job_id}/result").json()
        analysis = result["summary"]["analysis"]
        (sentence,) = analysis["summary"]
        assert "ask not what your country can do for you" in sentence["text"].lower()
        assert {"country", "fellow americans"} & {k.lower() for k in analysis["keywords"]}
        assert result["transcript"]["analysis"]["summary"][0]["text"] == sentence["text"]
        steps = [s["name"] for s in admin.get(f"/api/jobs/{job_id}/steps").json()["steps"]]
        assert steps.index("transcribe") < steps.index("summarize") < steps.index("render")
        md = next(o for o in result["outputs"] if o["name"] == "md")
        assert "## Summary" in admin.get(md["url"]).text


def test_block_policy_ends_the_job_blocked_with_only_the_report(
    start_api: StartApi, models_dir: Path, tmp_path: Path
) -> None:
    """The detector finds a face in a real photograph; no frame it calls unsafe can be
    had honestly here, so this deployment lists FACE_FEMALE as unsafe."""
    live = start_api(models_dir=models_dir, moderation_unsafe_labels=["FACE_FEMALE"])
    upload = _upload(live, photo_video(tmp_path / "astronaut.mp4"))
    with live.client() as admin:
        spec = {"source": {"upload_id": upload}, "outputs": ["srt", "clip"],
                "options": {"moderate": "block"}}  # fmt: skip
        job_id = admin.post("/api/jobs", json=spec).json()["id"]
        _run_worker(live)
        job = admin.get(f"/api/jobs/{job_id}").json()
        assert job["status"] == "blocked"
        assert job["error"]["code"] == "content_blocked"
        steps = [s["name"] for s in admin.get(f"/api/jobs/{job_id}/steps").json()["steps"]]
        assert "moderate" in steps
        assert "transcribe" not in steps  # stopped before anything else was made
        result = admin.get(f"/api/jobs/{job_id}/result")
        assert result.status_code == 200, result.text
        body = result.json()
        assert [o["name"] for o in body["outputs"]] == ["moderation"]
        assert body["summary"]["analysis"]["moderation"]["verdict"] == "blocked"
        report = admin.get(body["outputs"][0]["url"])
        assert report.status_code == 200
        assert report.json()["verdict"] == "blocked"
        assert any(f["unsafe"] and f["thumbnail"].startswith("data:image/jpeg;base64,")
                   for f in report.json()["flags"])  # fmt: skip
        # Anything else of the job (here, a file put there as an earlier attempt might
        # have) is refused through a link signed for it, valid or not.
        key = f"results/{job_id}/0123456789abcdef/astronaut.mp4"
        planted = tmp_path / "planted.mp4"
        planted.write_bytes(b"unsafe")
        live.run(live.runtime.storage.put_file(key, planted, "video/mp4"))
        url = live.run(live.runtime.storage.signed_url(key, 600, filename="astronaut.mp4"))
        refused = admin.get(url)
        assert refused.status_code == 403
        assert refused.json()["error"]["code"] == "content_blocked"
        # A blocked job has ended: it cannot be cancelled, nor retried.
        assert admin.post(f"/api/jobs/{job_id}/cancel").status_code == 409
        assert admin.post(f"/api/jobs/{job_id}/retry").status_code == 409


def test_the_same_video_passes_with_the_default_labels(
    start_api: StartApi, models_dir: Path, tmp_path: Path
) -> None:
    live = start_api(models_dir=models_dir, moderation_policy="block")
    upload = _upload(live, photo_video(tmp_path / "astronaut.mp4"))
    with live.client() as admin:
        spec = {"source": {"upload_id": upload}, "outputs": ["clip", "moderation"]}
        job_id = admin.post("/api/jobs", json=spec).json()["id"]
        _run_worker(live)
        assert admin.get(f"/api/jobs/{job_id}").json()["status"] == "done"
        result = admin.get(f"/api/jobs/{job_id}/result").json()
        assert {o["name"] for o in result["outputs"]} == {"clip", "moderation"}
        assert result["summary"]["analysis"]["moderation"]["verdict"] == "safe"
