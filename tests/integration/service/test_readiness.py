"""Readiness follows the workers, and a transient fault is a 503 with Retry-After,
never a 500: the API over a real runtime (SQLite, local storage) through httpx's ASGI
transport."""

from __future__ import annotations

import asyncio
import errno
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy.exc import OperationalError

from reelscribe.api import create_app
from reelscribe.api.metrics import collect, render
from reelscribe.backends.db import JobStatus, workers
from reelscribe.service.runtime import Runtime
from reelscribe.worker import Worker
from tests.integration.service.conftest import service_settings

pytestmark = pytest.mark.anyio
#: Does not resolve; allowed by name (unresolvable hosts are otherwise refused at submit).
MEDIA_URL = "https://media.example/talk.mp4"


@pytest.fixture
async def rt(tmp_path: Path, models_dir: Path) -> AsyncIterator[Runtime]:
    settings = service_settings(
        tmp_path, models_dir, allow_anonymous=True, worker_stale_seconds=1.0,
        worker_beat_seconds=0.1, allowed_networks=["media.example"],
    )  # fmt: skip
    async with Runtime(settings) as runtime:
        yield runtime


@pytest.fixture
async def client(rt: Runtime) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(rt)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as c:
        yield c


def beat(**changes: Any) -> workers.WorkerBeat:
    values: dict[str, Any] = {
        "id": "w-1", "host": "h", "pid": 1, "slots": 1, "busy": 0, "claim_age": 0.0,
        "claim_failing": False,
    }  # fmt: skip
    values.update(changes)
    return workers.WorkerBeat(**values)


async def test_readyz_follows_worker_liveness(rt: Runtime, client: httpx.AsyncClient) -> None:
    ready = await client.get("/readyz")
    assert ready.status_code == 200, ready.text
    assert ready.json()["checks"]["workers"]["details"]["live"] == 0  # idle, no worker: ready

    response = await client.post("/api/jobs", json={"source": {"url": MEDIA_URL}})
    assert response.status_code == 202, response.text
    await asyncio.sleep(1.2)  # the job has waited longer than worker_stale_seconds
    unready = await client.get("/readyz")
    assert unready.status_code == 503
    check = unready.json()["checks"]["workers"]
    assert check["ok"] is False
    assert "no healthy worker" in check["error"]

    await workers.publish(rt.engine, beat(claim_failing=True))  # alive, but its claims fail
    assert (await client.get("/readyz")).status_code == 503

    await workers.publish(rt.engine, beat(claim_age=0.2))  # alive and claiming
    ready = await client.get("/readyz")
    assert ready.status_code == 200, ready.text
    (listed,) = ready.json()["checks"]["workers"]["details"]["workers"]
    assert listed["id"] == "w-1"
    assert listed["healthy"] is True
    assert 0.2 <= listed["claim_age"] < 1.0

    await asyncio.sleep(1.2)  # its heartbeat gets old: a dead worker
    assert (await client.get("/readyz")).status_code == 503

    await workers.publish(rt.engine, beat(claim_age=30.0, busy=1))  # busy on a long job
    assert (await client.get("/readyz")).status_code == 200

    text = render(await collect(rt)).decode()
    assert 'reelscribe_workers{state="live"} 1.0' in text
    assert 'reelscribe_workers{state="healthy"} 1.0' in text
    assert 'reelscribe_worker_claim_age_seconds{worker="w-1"}' in text


async def test_a_real_worker_makes_the_service_ready(
    rt: Runtime, client: httpx.AsyncClient
) -> None:
    """A worker stuck in a failing claim loop is reported; once claims work, ready."""
    response = await client.post("/api/jobs", json={"source": {"url": MEDIA_URL}})
    job_id = response.json()["id"]
    real_claim = rt.queue.claim
    broken = {"on": True}

    async def claim(worker_id: str, lease_seconds: float) -> Any:
        if broken["on"]:
            raise ConnectionRefusedError(errno.ECONNREFUSED, "Connect call failed")
        return await real_claim(worker_id, lease_seconds)

    rt.queue.claim = claim  # type: ignore[method-assign]
    worker = Worker(rt, worker_id="w-real")
    task = asyncio.ensure_future(worker.run())
    try:
        for _ in range(200):  # the model loads first; the job waits for over 1 s
            body = (await client.get("/readyz")).json()
            listed = body["checks"]["workers"]["details"]["workers"]
            if listed and listed[0]["claim_failing"] and body["status"] == "unready":
                break
            await asyncio.sleep(0.1)
        assert body["status"] == "unready", body
        assert [(w["id"], w["healthy"]) for w in listed] == [("w-real", False)]

        broken["on"] = False
        for _ in range(100):
            job = await rt.jobs.get(job_id)
            assert job is not None
            if job.status != JobStatus.QUEUED:
                break
            await asyncio.sleep(0.1)
        for _ in range(50):
            if (await client.get("/readyz")).status_code == 200:
                break
            await asyncio.sleep(0.1)
        else:
            raise AssertionError("never ready again")
    finally:
        worker.stop.set()
        await asyncio.wait_for(task, 15)


def refused_db() -> OperationalError:
    cause = ConnectionRefusedError(errno.ECONNREFUSED, "Connect call failed ('127.0.0.1', 5432)")
    return OperationalError("SELECT jobs", {}, cause)


async def test_a_transient_fault_is_503_with_retry_after(
    rt: Runtime, client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def down(*args: Any, **kwargs: Any) -> Any:
        raise refused_db()

    monkeypatch.setattr(rt.jobs, "get", down)
    response = await client.get("/api/jobs/01a2-some-job")
    assert response.status_code == 503, response.text
    assert response.headers["retry-after"] == "5"
    assert response.json()["error"]["code"] == "unavailable"
    assert set(response.json()["error"]) == {"code", "message", "details"}

    async def redis_down(*args: Any, **kwargs: Any) -> Any:
        from redis.exceptions import ConnectionError as RedisConnectionError

        raise RedisConnectionError("Error 111 connecting to 127.0.0.1:6379")

    monkeypatch.setattr(rt.jobs, "get", redis_down)
    assert (await client.get("/api/jobs/x")).status_code == 503

    async def bug(*args: Any, **kwargs: Any) -> Any:
        raise ValueError("a bug is still a 500")

    monkeypatch.setattr(rt.jobs, "get", bug)
    response = await client.get("/api/jobs/x")
    assert response.status_code == 500
    assert response.json()["error"]["code"] == "internal"


async def test_a_failed_submit_is_safe_to_retry_with_its_idempotency_key(
    rt: Runtime, client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The job row was written but the delivery failed (the queue was down): the client
    gets 503, retries with the same Idempotency-Key and gets the one job, which runs."""
    real = rt.queue.submitted

    async def queue_down(job_id: str, priority: Any) -> None:
        raise ConnectionResetError(errno.ECONNRESET, "Connection reset by peer")

    monkeypatch.setattr(rt.queue, "submitted", queue_down)
    body = {"source": {"url": MEDIA_URL}}
    headers = {"Idempotency-Key": "submit-1"}
    first = await client.post("/api/jobs", json=body, headers=headers)
    assert first.status_code == 503, first.text
    assert first.headers["retry-after"] == "5"

    monkeypatch.setattr(rt.queue, "submitted", real)
    again = await client.post("/api/jobs", json=body, headers=headers)
    assert again.status_code == 200, again.text  # the job the first call created
    assert again.headers["idempotent-replayed"] == "true"
    listed = (await client.get("/api/jobs")).json()
    assert [job["id"] for job in listed["items"]] == [again.json()["id"]]
    claim = await rt.queue.claim("w", 5.0)  # it is claimable: the delivery was not lost
    assert claim is not None
    assert claim.job_id == again.json()["id"]
