"""The job API end to end, on SQLite + database queue and on PostgreSQL + Redis Streams.

Jobs are moved along as a worker would move them, through ``runtime.queue``
(claim / fail / complete) with real blobs in storage, so every view is read from
real rows and files.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from reelscribe.backends.db import EventKind
from reelscribe.errors import MediaError
from tests.integration.api.conftest import MEDIA_URL, Live, StartApi

pytestmark = pytest.mark.parametrize("backend", ["sqlite", "postgresql"], indirect=True)


def submit(client: httpx.Client, **spec: Any) -> httpx.Response:
    body = {"source": {"url": MEDIA_URL}} | spec
    return client.post("/api/jobs", json=body)


async def _one(data: bytes) -> AsyncIterator[bytes]:
    yield data


def complete_with_outputs(live: Live, job_id: str) -> dict[str, bytes]:
    """Claims the job and completes it with a stored SRT and JSON transcript, as the
    worker does (keys under results/<job id>/)."""
    claim = live.claim()
    assert claim.job_id == job_id
    files = {
        "srt": b"1\n00:00:00,000 --> 00:00:01,500\nHello there.\n",
        "json": json.dumps({"schema": "reelscribe.transcript", "text": "Hello there."}).encode(),
    }
    outputs = {}
    for name, data in files.items():
        key = f"results/{job_id}/{hashlib.sha256(data).hexdigest()[:16]}/clip.{name}"
        live.run(live.runtime.storage.put_stream(key, _one(data), "text/plain"))
        outputs[name] = {
            "key": key,
            "filename": f"clip.{name}",
            "size": len(data),
            "sha256": hashlib.sha256(data).hexdigest(),
            "content_type": "text/plain",
        }
    result = {"outputs": outputs, "start": 0.0, "end": None, "media": {"duration": 12.5}}
    live.run(live.runtime.queue.complete(claim, result, retain_seconds=3600))
    return files


def test_create_get_list_and_paginate(live: Live, admin: httpx.Client) -> None:
    created = [submit(admin, metadata={"n": str(i)}) for i in range(3)]
    assert [r.status_code for r in created] == [202, 202, 202]
    job = created[0].json()
    assert job["status"] == "queued"
    assert job["spec"]["outputs"] == ["srt", "json"]
    assert job["links"]["self"] == f"{live.base_url}/api/jobs/{job['id']}"
    assert job["links"]["cancel"].endswith(f"/api/jobs/{job['id']}/cancel")
    assert created[0].headers["location"] == job["links"]["self"]

    got = admin.get(f"/api/jobs/{job['id']}")
    assert got.status_code == 200
    assert got.json()["id"] == job["id"]

    first = admin.get("/api/jobs", params={"limit": 2}).json()
    assert [j["spec"]["metadata"]["n"] for j in first["items"]] == ["2", "1"]  # newest first
    assert first["next_cursor"]
    second = admin.get("/api/jobs", params={"limit": 2, "cursor": first["next_cursor"]}).json()
    assert [j["spec"]["metadata"]["n"] for j in second["items"]] == ["0"]
    assert second["next_cursor"] is None

    admin.post(f"/api/jobs/{job['id']}/cancel")
    cancelled = admin.get("/api/jobs", params={"status": "cancelled"}).json()["items"]
    assert [j["id"] for j in cancelled] == [job["id"]]
    assert len(admin.get("/api/jobs", params={"status": "queued"}).json()["items"]) == 2


def test_idempotency_key_returns_the_first_job(admin: httpx.Client) -> None:
    headers = {"Idempotency-Key": "order-42"}
    first = admin.post("/api/jobs", json={"source": {"url": MEDIA_URL}}, headers=headers)
    again = admin.post("/api/jobs", json={"source": {"url": MEDIA_URL}}, headers=headers)
    assert (first.status_code, again.status_code) == (202, 200)
    assert again.json()["id"] == first.json()["id"]
    assert again.headers["idempotent-replayed"] == "true"

    changed = admin.post(
        "/api/jobs", json={"source": {"url": MEDIA_URL}, "outputs": ["vtt"]}, headers=headers
    )
    assert changed.status_code == 409
    assert changed.json()["error"]["code"] == "idempotency_conflict"

    other = admin.post(
        "/api/jobs", json={"source": {"url": MEDIA_URL}}, headers={"Idempotency-Key": "order-43"}
    )
    assert other.status_code == 202
    assert other.json()["id"] != first.json()["id"]
    assert len(admin.get("/api/jobs").json()["items"]) == 2


def test_full_queue_refuses_with_429_and_creates_nothing(start_api: StartApi) -> None:
    live = start_api(max_queued_jobs=2)
    with live.client() as admin:
        first = submit(admin)
        assert submit(admin).status_code == 202
        refused = submit(admin)
        assert refused.status_code == 429
        assert refused.json()["error"]["code"] == "queue_full"
        assert int(refused.headers["retry-after"]) > 0
        assert len(admin.get("/api/jobs").json()["items"]) == 2

        # Once a worker takes a job, there is room again.
        live.claim()
        assert submit(admin).status_code == 202
        assert admin.get(f"/api/jobs/{first.json()['id']}").json()["status"] == "processing"


def test_cancel_retry_and_delete(live: Live, admin: httpx.Client) -> None:
    queued = submit(admin).json()
    cancel = admin.post(f"/api/jobs/{queued['id']}/cancel")
    assert cancel.status_code == 202
    assert cancel.json()["status"] == "cancelled"
    assert admin.post(f"/api/jobs/{queued['id']}/cancel").status_code == 202  # again: fine
    assert admin.post(f"/api/jobs/{queued['id']}/retry").json()["error"]["code"] == (
        "job_state_conflict"
    )

    failing = submit(admin).json()
    claim = live.claim()
    assert claim.job_id == failing["id"]
    live.run(live.runtime.queue.fail(claim, MediaError("no audio stream")))
    failed = admin.get(f"/api/jobs/{failing['id']}").json()
    assert failed["status"] == "failed"
    assert failed["error"] == {"code": "media_error", "message": "no audio stream"}
    retried = admin.post(f"/api/jobs/{failing['id']}/retry")
    assert retried.status_code == 202
    assert retried.json()["status"] == "queued"
    assert retried.json()["attempts"] == 0

    # A running job cannot be deleted: cancellation is requested instead.
    claim = live.claim()
    conflict = admin.delete(f"/api/jobs/{failing['id']}")
    assert conflict.status_code == 409
    assert admin.get(f"/api/jobs/{failing['id']}").json()["cancel_requested"] is True
    live.run(live.runtime.queue.cancelled(claim))

    done = submit(admin).json()
    complete_with_outputs(live, done["id"])
    keys = [
        o["key"] for o in live.run(live.runtime.jobs.get(done["id"])).result["outputs"].values()
    ]
    assert all(live.run(live.runtime.storage.exists(key)) for key in keys)
    assert admin.post(f"/api/jobs/{done['id']}/cancel").status_code == 409

    for job in (queued, failing, done):
        assert admin.delete(f"/api/jobs/{job['id']}").status_code == 204
        missing = admin.get(f"/api/jobs/{job['id']}")
        assert missing.status_code == 404
        assert missing.json()["error"]["code"] == "job_not_found"
    assert not any(live.run(live.runtime.storage.exists(key)) for key in keys)
    assert live.run(live.runtime.jobs.events(done["id"])) == []
    assert admin.get("/api/jobs").json()["items"] == []


def test_steps_and_result(live: Live, admin: httpx.Client) -> None:
    job = submit(admin).json()
    early = admin.get(f"/api/jobs/{job['id']}/result")
    assert early.status_code == 409
    assert early.json()["error"]["code"] == "job_not_done"

    claim = live.claim()
    live.add_events(
        job["id"],
        (EventKind.STEP_START, {"step": "fetch", "attempt": 1}),
        (EventKind.STEP_FINISH, {"step": "fetch", "duration": 2.0, "attempt": 1}),
        (EventKind.STEP_START, {"step": "transcribe", "attempt": 1}),
    )
    steps = admin.get(f"/api/jobs/{job['id']}/steps").json()
    assert steps["status"] == "processing"
    by_name = {s["name"]: s for s in steps["steps"]}
    assert list(by_name) == ["fetch", "transcribe"]
    assert by_name["fetch"]["status"] == "done"
    assert by_name["fetch"]["duration_seconds"] == 2.0
    assert by_name["fetch"]["estimate_seconds"] == 2.0  # the median of the history
    assert by_name["transcribe"]["status"] == "running"
    assert by_name["transcribe"]["finished_at"] is None
    assert by_name["transcribe"]["estimate_seconds"] is None  # never finished anywhere yet

    live.add_events(job["id"], (EventKind.STEP_FINISH, {"step": "transcribe", "duration": 5.5}))
    live.run(live.runtime.queue.release(claim))  # give it back, then finish it properly
    files = complete_with_outputs(live, job["id"])

    result = admin.get(f"/api/jobs/{job['id']}/result")
    assert result.status_code == 200
    body = result.json()
    assert body["transcript"] == json.loads(files["json"])
    assert body["summary"]["media"] == {"duration": 12.5}
    outputs = {o["name"]: o for o in body["outputs"]}
    assert set(outputs) == {"srt", "json"}
    srt = outputs["srt"]
    assert srt["filename"] == "clip.srt"
    assert srt["url"].startswith(f"{live.base_url}/blobs/results/{job['id']}/")
    download = httpx.get(srt["url"])
    assert download.status_code == 200
    assert download.content == files["srt"]
    assert 'filename="clip.srt"' in download.headers["content-disposition"]
    part = httpx.get(srt["url"], headers={"Range": "bytes=2-9"})
    assert part.status_code == 206
    assert part.content == files["srt"][2:10]


def test_events_stream_replays_then_follows_until_the_end(live: Live, admin: httpx.Client) -> None:
    job = submit(admin).json()
    claim = live.claim()
    seen: list[tuple[str, str | None, dict[str, Any]]] = []
    with admin.stream("GET", f"/api/jobs/{job['id']}/events") as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        for event, event_id, data in _sse(response.iter_lines()):
            seen.append((event, event_id, data))
            if event == "progress" and data["status"] == "processing":
                # The job moves on while the client listens.
                live.add_events(job["id"], (EventKind.STEP_START, {"step": "fetch", "attempt": 1}))
                complete_with_outputs_after(live, claim)
            if event == "end":
                break
    kinds = [event for event, _, _ in seen]
    transitions = [data["data"]["to"] for event, _, data in seen if event == "transition"]
    assert transitions == ["queued", "processing", "done"]
    assert "step_start" in kinds
    assert kinds[-1] == "end"
    assert seen[-1][2] == {"status": "done"}
    ids = [int(i) for _, i, _ in seen if i is not None]
    assert ids == sorted(ids)
    assert len(ids) == len(set(ids)) == 4

    # Reconnecting with Last-Event-ID replays nothing already seen.
    with admin.stream(
        "GET", f"/api/jobs/{job['id']}/events", headers={"Last-Event-ID": str(ids[-1])}
    ) as response:
        again = [event for event, _, _ in _sse(response.iter_lines())]
    assert again == ["progress", "end"]


def complete_with_outputs_after(live: Live, claim: Any) -> None:
    live.run(live.runtime.queue.complete(claim, {"outputs": {}}, retain_seconds=60))


def _sse(lines: Any) -> Any:
    """(event, id, data) per Server-Sent Event; comments (pings) skipped."""
    event: str | None = None
    event_id: str | None = None
    data: list[str] = []
    for line in lines:
        if line == "":
            if data:
                yield event or "message", event_id, json.loads("\n".join(data))
            event, event_id, data = None, None, []
        elif line.startswith(":"):
            continue
        else:
            field, _, value = line.partition(":")
            value = value.removeprefix(" ")
            if field == "event":
                event = value
            elif field == "id":
                event_id = value
            elif field == "data":
                data.append(value)


def test_webhook_deliveries_of_a_job(live: Live, admin: httpx.Client) -> None:
    from reelscribe.backends.db.schema import WebhookAttemptRow, WebhookDeliveryRow

    job = submit(admin, webhook_url="https://hooks.example/reelscribe").json()
    assert job["spec"]["webhook_url"] == "https://hooks.example/reelscribe"
    assert admin.get(f"/api/jobs/{job['id']}/webhooks").json() == []

    async def deliver() -> None:
        async with live.runtime.engine.begin() as conn:
            await conn.execute(
                WebhookDeliveryRow.__table__.insert().values(
                    id="d1",
                    job_id=job["id"],
                    event="job.done",
                    url="https://hooks.example/reelscribe",
                    payload={"job_id": job["id"]},
                    state="delivered",
                    attempts=2,
                )
            )
            for status in (503, 200):
                await conn.execute(
                    WebhookAttemptRow.__table__.insert().values(
                        delivery_id="d1", status_code=status, duration_ms=12.5
                    )
                )

    live.run(deliver())
    deliveries = admin.get(f"/api/jobs/{job['id']}/webhooks").json()
    assert [(d["id"], d["event"], d["state"]) for d in deliveries] == [
        ("d1", "job.done", "delivered")
    ]
    assert [a["status_code"] for a in deliveries[0]["attempts"]] == [503, 200]
    assert deliveries[0]["payload"] == {"job_id": job["id"]}
