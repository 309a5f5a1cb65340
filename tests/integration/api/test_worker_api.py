"""``/api/worker``: the endpoints of remote workers, through a real server.

A claim is a signed lease; every call about the job carries it. Here the fencing is
shown call by call: once another worker holds the job (the first lease expired and
the job was claimed again), each write of the stale lease is refused with 409
``lease_lost`` and changes nothing; a forged or borrowed lease gets 403."""

from __future__ import annotations

import asyncio
import hashlib
import time
from typing import Any

import httpx
import pytest

from reelscribe.backends.db import workers
from reelscribe.backends.faults import is_transient
from reelscribe.errors import LeaseLost, NetworkError, RemoteApiError
from reelscribe.hub.remote import RemoteHub
from tests.integration.api.conftest import MEDIA_URL, Live, _bound_socket


def worker_client(live: Live, admin: httpx.Client, name: str = "gpu") -> httpx.Client:
    made = admin.post("/api/keys", json={"name": name, "scopes": ["worker"]})
    assert made.status_code == 201, made.text
    return live.client(made.json()["secret"])


def claim(client: httpx.Client, worker_id: str, lease: float = 2.0) -> dict[str, Any]:
    body = {"worker_id": worker_id, "lease_seconds": lease, "wait": 2}
    answer = client.post("/api/worker/claim", json=body)
    assert answer.status_code == 200, answer.text
    job: dict[str, Any] = answer.json()["job"]
    return job


def test_scopes(live: Live, admin: httpx.Client) -> None:
    with worker_client(live, admin) as worker:
        assert worker.post("/api/jobs", json={"source": {"url": MEDIA_URL}}).status_code == 403
        assert worker.get("/api/jobs").status_code == 403
        # Nothing queued: the long poll waits, then answers "no job".
        started = time.monotonic()
        assert worker.post("/api/worker/claim", json={"worker_id": "w", "wait": 0.5}).json() == {
            "job": None
        }
        assert time.monotonic() - started >= 0.4
    made = admin.post("/api/keys", json={"name": "submitter", "scopes": ["submit", "read"]})
    with live.client(made.json()["secret"]) as submitter:
        refused = submitter.post("/api/worker/claim", json={"worker_id": "w"})
        assert refused.status_code == 403
        assert refused.json()["error"]["code"] == "forbidden"
    with live.client(None) as nobody:
        assert nobody.post("/api/worker/claim", json={"worker_id": "w"}).status_code == 401


def test_stale_lease_is_fenced_off(live: Live, admin: httpx.Client) -> None:
    job_id = admin.post("/api/jobs", json={"source": {"url": MEDIA_URL}}).json()["id"]
    with worker_client(live, admin, "a") as first, worker_client(live, admin, "b") as second:
        old = claim(first, "first", lease=2.0)
        assert old["id"] == job_id
        assert old["attempt"] == 1
        path = f"/api/worker/jobs/{job_id}"
        beat = first.post(f"{path}/heartbeat", json={"lease": old["lease"]})
        assert beat.json() == {"cancel_requested": False}
        report = {"lease": old["lease"], "progress": 12.5, "stage": "fetch", "message": "m",
                  "events": [{"kind": "step_start", "data": {"step": "fetch"}}]}  # fmt: skip
        assert first.post(f"{path}/progress", json=report).status_code == 204
        # The lease is bound to the key that claimed it, and cannot be edited.
        borrowed = second.post(f"{path}/heartbeat", json={"lease": old["lease"]})
        assert borrowed.status_code == 403
        assert borrowed.json()["error"]["code"] == "lease_invalid"
        body, sig = old["lease"].split(".")
        forged = first.post(f"{path}/heartbeat", json={"lease": body + "A." + sig})
        assert forged.json()["error"]["code"] == "lease_invalid"
        transition = {"lease": old["lease"], "progress": 1,
                      "events": [{"kind": "transition", "data": {}}]}  # fmt: skip
        assert first.post(f"{path}/progress", json=transition).status_code == 422

        time.sleep(2.3)  # the first lease expires; the second worker takes the job over
        new = claim(second, "second", lease=30.0)
        assert (new["id"], new["attempt"]) == (job_id, 2)
        assert new["token"] > old["token"]

        stale = {"lease": old["lease"]}
        data = b"late bytes"
        digest = hashlib.sha256(data).hexdigest()
        offer = stale | {"name": "srt", "filename": "a.srt", "sha256": digest, "size": 10,
                         "content_type": "text/plain"}  # fmt: skip
        headers = {"X-Reelscribe-Lease": old["lease"], "X-Filename": "a.srt",
                   "Content-Type": "text/plain"}  # fmt: skip
        answers = [
            first.post(f"{path}/heartbeat", json=stale),
            first.post(f"{path}/progress", json=report | {"progress": 99.0}),
            first.post(f"{path}/source", json=stale),
            first.post(f"{path}/outputs", json=offer),
            first.put(f"{path}/outputs/{digest}", content=data, headers=headers),
            first.post(f"{path}/complete", json=stale | {"result": {"outputs": {}}}),
            first.post(
                f"{path}/fail", json=stale | {"code": "x", "message": "late", "retryable": False}
            ),
            first.post(f"{path}/release", json=stale),
            first.post(f"{path}/cancelled", json=stale),
        ]
        assert [(a.status_code, a.json()["error"]["code"]) for a in answers] == [
            (409, "lease_lost")
        ] * len(answers)
        job = admin.get(f"/api/jobs/{job_id}").json()
        assert job["status"] == "processing"
        assert job["progress"] < 99
        assert not live.run(live.runtime.storage.exists(f"results/{job_id}/{digest[:16]}/a.srt"))

        # The current holder's writes go through: an output, then the result.
        lease = new["lease"]
        answer = second.post(f"{path}/outputs", json=offer | {"lease": lease}).json()
        assert answer["stored"] is False
        headers["X-Reelscribe-Lease"] = lease
        wrong = second.put(answer["upload_url"], content=b"other bytes", headers=headers)
        assert wrong.json()["error"]["code"] == "output_mismatch"
        assert not live.run(live.runtime.storage.exists(answer["key"]))
        stored = second.put(answer["upload_url"], content=data, headers=headers)
        assert stored.status_code == 200, stored.text
        assert stored.json()["key"] == answer["key"] == f"results/{job_id}/{digest[:16]}/a.srt"
        again = second.post(f"{path}/outputs", json=offer | {"lease": lease}).json()
        assert again == {"key": answer["key"], "stored": True, "upload_url": None}
        # A result may only name this job's stored outputs.
        for key in ("results/other-job/x/a.srt", f"results/{job_id}/missing/a.srt"):
            bad = second.post(
                f"{path}/complete",
                json={"lease": lease, "result": {"outputs": {"srt": {"key": key}}}},
            )
            assert bad.status_code == 400, bad.text
        result = {"outputs": {"srt": stored.json()}}
        assert (
            second.post(f"{path}/complete", json={"lease": lease, "result": result}).status_code
            == 204
        )
        assert admin.get(f"/api/jobs/{job_id}").json()["status"] == "done"
        assert admin.get(f"/api/jobs/{job_id}/result").status_code == 200
        late = second.post(f"{path}/complete", json={"lease": lease, "result": result})
        assert late.json()["error"]["code"] == "lease_lost"  # completed once, not twice


def test_liveness_rows_of_remote_workers(live: Live, admin: httpx.Client) -> None:
    with worker_client(live, admin) as worker:
        beat = {"host": "gpu-1", "pid": 7, "slots": 2, "busy": 1, "claim_age": 0.5}
        assert worker.put("/api/worker/workers/gpu-1:7:abc", json=beat).status_code == 204
        rows = live.run(workers.live_workers(live.runtime.engine, within=60))
        assert [(r.id, r.host, r.slots, r.busy) for r in rows] == [
            ("remote:gpu-1:7:abc", "gpu-1", 2, 1)
        ]
        assert worker.delete("/api/worker/workers/gpu-1:7:abc").status_code == 204
        assert live.run(workers.live_workers(live.runtime.engine, within=60)) == []


@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)
def test_fencing_on_postgres_and_redis(live: Live, admin: httpx.Client) -> None:
    """The same lease round trip over the Redis Streams queue (its receipt rides in
    the signed lease)."""
    job_id = admin.post("/api/jobs", json={"source": {"url": MEDIA_URL}}).json()["id"]
    with worker_client(live, admin) as worker:
        job = claim(worker, "w", lease=30.0)
        assert job["id"] == job_id
        path = f"/api/worker/jobs/{job_id}"
        assert worker.post(f"{path}/heartbeat", json={"lease": job["lease"]}).status_code == 200
        assert worker.post(f"{path}/release", json={"lease": job["lease"]}).status_code == 204
        again = worker.post(f"{path}/heartbeat", json={"lease": job["lease"]})
        assert again.json()["error"]["code"] == "lease_lost"
        assert claim(worker, "w", lease=30.0)["id"] == job_id  # released: due again at once


def test_remote_hub_translates_answers(live: Live, admin: httpx.Client) -> None:
    """The client side: 409 lease_lost is LeaseLost, a refused key a RemoteApiError
    (not retried), an unreachable API a transient NetworkError; no message holds the key."""
    job_id = admin.post("/api/jobs", json={"source": {"url": MEDIA_URL}}).json()["id"]
    with worker_client(live, admin) as worker:
        token = worker.headers["Authorization"].removeprefix("Bearer ")

    async def scenario() -> list[BaseException]:
        errors: list[BaseException] = []
        async with RemoteHub(live.base_url, token, claim_wait=1.0) as hub:
            claim = await hub.claim("hub-test", 30.0)
            assert claim is not None
            assert claim.job_id == job_id
            assert claim.spec["source"]["url"] == MEDIA_URL
            assert await hub.heartbeat(claim) is False
            await hub.release(claim)
            with pytest.raises(LeaseLost) as lost:
                await hub.heartbeat(claim)
            errors.append(lost.value)
        async with RemoteHub(live.base_url, token + "x") as hub:
            with pytest.raises(RemoteApiError) as refused:
                await hub.claim("hub-test", 30.0)
            assert refused.value.status == 401
            assert not is_transient(refused.value)
            errors.append(refused.value)
        sock = _bound_socket()  # bound, never listening: refused
        with sock:
            url = f"http://127.0.0.1:{sock.getsockname()[1]}"
            async with RemoteHub(url, token) as hub:
                with pytest.raises(NetworkError) as down:
                    await hub.claim("hub-test", 30.0)
                assert is_transient(down.value)
                errors.append(down.value)
        return errors

    for error in asyncio.run(scenario()):
        assert token not in str(error)
        assert token not in repr(error)
