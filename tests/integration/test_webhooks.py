"""Webhooks end to end: jobs ended through the real queue on SQLite and PostgreSQL, the
outbox swept and delivered by :class:`Dispatcher` through the SSRF guard, to a real HTTP
receiver on 127.0.0.1 that checks every signature the way a customer's would.

Retry timing is shrunk (50 ms backoff) so the suite stays fast; the default schedule
is checked on its own.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import shutil
import socket
import threading
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from reelscribe.backends.db import JobStatus, JobStore, create_engine
from reelscribe.backends.queue import Backoff, DatabaseQueue
from reelscribe.errors import InvalidInputError
from reelscribe.migrations import upgrade_async
from reelscribe.service.spec import JobSpec, Source
from reelscribe.service.webhook_signing import sign, signature_header
from reelscribe.webhooks import (
    DEFAULT_BACKOFF,
    DEFAULT_MAX_AGE,
    Dispatcher,
    list_deliveries,
    retry_offsets,
    verify_signature,
)
from tests.integration.queue.services import temporary_postgres_database

SECRET = "whsec-test-0123456789"
LOOPBACK = ("127.0.0.1/32",)
#: 50 ms, 100 ms, 200 ms, 200 ms …: several retries within a second.
FAST = Backoff(base=0.05, factor=2.0, max_delay=0.2, jitter=0.0)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


# --- databases --------------------------------------------------------------------


@pytest.fixture(scope="module")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Migrated once; each test gets a copy (much faster than migrating per test)."""
    path = tmp_path_factory.mktemp("webhooks") / "template.db"
    asyncio.run(upgrade_async(f"sqlite:///{path}"))
    return path


@pytest.fixture(scope="module")
def postgres_url() -> Iterator[str]:
    """A uniquely named database for this module, migrated, dropped afterwards."""
    with temporary_postgres_database("webhooks") as url:
        asyncio.run(upgrade_async(url))
        yield url


async def _truncate(url: str) -> None:
    engine = create_engine(url)
    try:
        async with engine.begin() as conn:
            await conn.execute(
                text("TRUNCATE jobs, job_events, webhook_deliveries, webhook_attempts CASCADE")
            )
    finally:
        await engine.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        path = tmp_path / "jobs.db"
        shutil.copy(request.getfixturevalue("sqlite_template"), path)
        return f"sqlite:///{path}"
    url: str = request.getfixturevalue("postgres_url")
    asyncio.run(_truncate(url))
    return url


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(database_url)
    try:
        yield engine
    finally:
        await engine.dispose()


async def ended_job(
    engine: AsyncEngine,
    status: JobStatus,
    webhook_url: str | None,
    *,
    metadata: dict[str, str] | None = None,
    result: dict[str, Any] | None = None,
) -> str:
    """Creates a job and takes it to ``status`` through the real queue (cancelled
    while queued; done or failed after a claim). Create one at a time: the queue
    claims the oldest queued job."""
    spec = JobSpec(
        source=Source(url="https://media.example/talk.mp4"),
        webhook_url=webhook_url,
        metadata=metadata or {},
    )
    job, _ = await JobStore(engine).create(spec.model_dump(mode="json"))
    queue = DatabaseQueue(engine)
    if status is JobStatus.CANCELLED:
        assert await queue.cancel(job.id) is JobStatus.CANCELLED
    elif status in (JobStatus.DONE, JobStatus.FAILED, JobStatus.PROCESSING, JobStatus.BLOCKED):
        claim = await queue.claim("test-worker", lease_seconds=60)
        assert claim is not None
        assert claim.job_id == job.id
        if status is JobStatus.DONE:
            await queue.complete(claim, result or {"srt": f"jobs/{job.id}/out.srt"})
        elif status is JobStatus.BLOCKED:
            await queue.complete(claim, result or {}, status=JobStatus.BLOCKED)
        elif status is JobStatus.FAILED:
            await queue.fail(claim, InvalidInputError("start is after end"), retryable=False)
    return job.id


# --- the receiver -----------------------------------------------------------------


@dataclass(frozen=True)
class Received:
    headers: dict[str, str]
    body: bytes
    valid: bool
    answered: int


class Receiver:
    """A webhook endpoint on 127.0.0.1 in a thread. It checks each request's signature
    (401 when invalid, as a real receiver should) and answers ``statuses`` in turn,
    then 200."""

    def __init__(self, port: int = 0, statuses: Iterable[int] = (), *, delay: float = 0.0) -> None:
        self.requests: list[Received] = []
        self._statuses = deque(statuses)
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                valid = verify_signature(
                    SECRET,
                    self.headers.get("Reelscribe-Timestamp", ""),
                    body,
                    self.headers.get("Reelscribe-Signature"),
                )
                time.sleep(delay)
                with receiver._lock:
                    code = (
                        401
                        if not valid
                        else (receiver._statuses.popleft() if receiver._statuses else 200)
                    )
                    receiver.requests.append(Received(dict(self.headers), body, valid, code))
                self.send_response(code)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass  # keep test output clean

        self._server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.05,), daemon=True
        )
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/hooks/reelscribe"

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    yield server
    server.close()


def dispatcher(engine: AsyncEngine, **kwargs: Any) -> Dispatcher:
    options: dict[str, Any] = {
        "allowed_networks": LOOPBACK,
        "timeout": 5.0,
        "backoff": FAST,
        "max_age": 60.0,
    }
    return Dispatcher(engine, SECRET, **(options | kwargs))


async def until(condition: Callable[[], Awaitable[bool]], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not await condition():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.02)


async def deliver_until(d: Dispatcher, done: Callable[[], bool], timeout: float = 10.0) -> None:
    """Calls ``deliver_due`` (as ``run`` would) until ``done()``."""

    async def check() -> bool:
        await d.deliver_due()
        return done()

    await until(check, timeout)


async def attempts_reach(d: Dispatcher, job_id: str, count: int) -> None:
    """Calls ``deliver_due`` until the job's one delivery has ``count`` attempts (one
    delivery: at most one attempt per call, so never more)."""

    async def reached() -> bool:
        await d.deliver_due()
        [delivery] = await list_deliveries(d.engine, job_id)
        return len(delivery["attempts"]) >= count

    await until(reached)


# --- signatures and the schedule (no database) ----------------------------------------


def test_verify_signature_accepts_the_signed_body_only_and_only_while_fresh() -> None:
    body = b'{"id":"d1","type":"job.completed"}'
    now = 1_767_225_600
    header = signature_header(SECRET, now, body)
    assert header == f"v1={sign(SECRET, now, body)}"
    assert len(header) == 3 + 64

    assert verify_signature(SECRET, str(now), body, header, now=now)
    assert verify_signature(SECRET, now, body.decode(), header, now=now + 300)
    # Rotation: any one matching v1 signature will do.
    assert verify_signature(SECRET, now, body, f"v1={'0' * 64}, {header}", now=now)

    assert not verify_signature(SECRET, now, body + b" ", header, now=now)  # tampered
    assert not verify_signature("other-secret", now, body, header, now=now)
    assert not verify_signature(SECRET, now + 1, body, header, now=now)  # timestamp changed
    assert not verify_signature(SECRET, now, body, header, now=now + 301)  # replayed late
    assert not verify_signature(SECRET, now, body, header, now=now - 301)  # from the future
    assert verify_signature(SECRET, now, body, header, now=now + 3000, tolerance=3600)
    assert not verify_signature(SECRET, f" {now}", body, header, now=now)
    assert not verify_signature(SECRET, "", body, header, now=now)
    assert not verify_signature(SECRET, now, body, None, now=now)
    assert not verify_signature(SECRET, now, body, "v0=" + header[3:], now=now)
    assert not verify_signature(SECRET, now, body, "v1=é", now=now)


def test_default_schedule_retries_for_at_least_an_hour() -> None:
    offsets = retry_offsets()
    delays = [b - a for a, b in itertools.pairwise(offsets)]
    assert DEFAULT_MAX_AGE >= 3600
    assert offsets[-1] >= 3600, offsets  # the last attempt comes an hour or more in
    assert offsets[-2] < DEFAULT_MAX_AGE  # and is the first past the limit
    assert delays[:4] == [5.0, 10.0, 20.0, 40.0]
    assert max(delays) == DEFAULT_BACKOFF.max_delay == 600.0
    assert delays == sorted(delays)
    assert len(offsets) < 20  # not a flood either


# --- the outbox ---------------------------------------------------------------------


@pytest.mark.anyio
async def test_sweep_adds_one_delivery_per_ended_job_with_a_webhook(engine: AsyncEngine) -> None:
    url = "https://hooks.example/reelscribe"
    done = await ended_job(
        engine,
        JobStatus.DONE,
        url,
        metadata={"order": "A-17"},
        result={"srt": "jobs/x/a.srt", "json": "jobs/x/a.json"},
    )
    failed = await ended_job(engine, JobStatus.FAILED, url)
    cancelled = await ended_job(engine, JobStatus.CANCELLED, url)
    await ended_job(engine, JobStatus.DONE, None)  # no webhook: no event
    await ended_job(engine, JobStatus.PROCESSING, url)  # not ended yet
    await ended_job(engine, JobStatus.QUEUED, url)

    async with dispatcher(engine) as d:
        assert await d.sweep() == 3
        assert await d.sweep() == 0  # incremental sweep: nothing new
    # A fresh dispatcher (another process, or a restart) sweeps everything: still nothing.
    async with dispatcher(engine) as d:
        assert await d.sweep() == 0

    events = {}
    for job_id in (done, failed, cancelled):
        [delivery] = await list_deliveries(engine, job_id)
        assert delivery["state"] == "pending"
        assert delivery["attempts"] == []
        assert delivery["url"] == url
        assert delivery["payload"]["id"] == delivery["id"]
        assert delivery["payload"]["type"] == delivery["event"]
        assert delivery["payload"]["data"]["job"]["id"] == job_id
        events[job_id] = delivery["event"]
    assert events == {done: "job.completed", failed: "job.failed", cancelled: "job.cancelled"}
    [delivery] = await list_deliveries(engine, done)
    job = delivery["payload"]["data"]["job"]
    assert job["status"] == "done"
    assert job["outputs"] == ["json", "srt"]  # a flat {name: storage key} result
    assert job["metadata"] == {"order": "A-17"}
    assert job["error"] is None
    [delivery] = await list_deliveries(engine, cancelled)
    assert delivery["payload"]["data"]["job"]["status"] == "cancelled"


@pytest.mark.anyio
async def test_a_job_blocked_by_moderation_sends_job_blocked(engine: AsyncEngine) -> None:
    url = "https://hooks.example/reelscribe"
    report = {"key": "results/x/0/a.moderation.json"}
    result = {"blocked": True, "outputs": {"moderation": report}}
    blocked = await ended_job(engine, JobStatus.BLOCKED, url, result=result)
    async with dispatcher(engine) as d:
        assert await d.sweep() == 1
    [delivery] = await list_deliveries(engine, blocked)
    assert delivery["event"] == "job.blocked"
    job = delivery["payload"]["data"]["job"]
    assert job["status"] == "blocked"
    assert job["error"]["code"] == "content_blocked"
    assert job["outputs"] == ["moderation"]


@pytest.mark.anyio
async def test_each_end_of_a_job_retried_by_hand_gets_its_own_delivery(
    engine: AsyncEngine,
) -> None:
    job_id = await ended_job(engine, JobStatus.FAILED, "https://hooks.example/r")
    queue = DatabaseQueue(engine)
    async with dispatcher(engine) as d:
        assert await d.sweep() == 1
        # Retried by hand, claimed again, failed again: a second job.failed.
        assert await queue.enqueue(job_id) is JobStatus.QUEUED
        assert await d.sweep() == 0  # queued again: nothing has ended
        claim = await queue.claim("test-worker", lease_seconds=60)
        assert claim is not None
        assert claim.job_id == job_id
        await queue.fail(claim, InvalidInputError("still broken"), retryable=False)
        assert await d.sweep() == 1
        assert await d.sweep() == 0
    async with dispatcher(engine) as d:  # a full sweep by a fresh dispatcher
        assert await d.sweep() == 0
    deliveries = await list_deliveries(engine, job_id)
    assert [x["event"] for x in deliveries] == ["job.failed", "job.failed"]
    assert len({x["id"] for x in deliveries}) == 2
    messages = [x["payload"]["data"]["job"]["error"]["message"] for x in deliveries]
    assert sorted(messages) == ["start is after end", "still broken"]


@pytest.mark.anyio
async def test_delivery_is_signed_and_carries_the_job(
    engine: AsyncEngine, receiver: Receiver
) -> None:
    # The result as the worker stores it.
    result = {
        "outputs": {
            name: {"key": f"results/x/0123/a.{name}", "filename": f"a.{name}", "size": 10}
            for name in ("srt", "json")
        },
        "media": {"duration": 6.0, "has_video": True, "has_audio": True},
    }
    job_id = await ended_job(
        engine, JobStatus.DONE, receiver.url, metadata={"order": "A-17"}, result=result
    )
    failed_id = await ended_job(engine, JobStatus.FAILED, receiver.url)
    async with dispatcher(engine) as d:
        assert await d.sweep() == 2
        assert await d.deliver_due() == 2
        assert await d.deliver_due() == 0  # both delivered: nothing is due

    assert [r.answered for r in receiver.requests] == [200, 200]
    by_job = {json.loads(r.body)["data"]["job"]["id"]: r for r in receiver.requests}
    request = by_job[job_id]
    assert request.valid
    headers = {k.lower(): v for k, v in request.headers.items()}
    body = json.loads(request.body)
    assert headers["content-type"] == "application/json"
    assert headers["reelscribe-event"] == body["type"] == "job.completed"
    assert headers["reelscribe-delivery"] == body["id"]
    assert headers["reelscribe-signature"].startswith("v1=")
    assert abs(int(headers["reelscribe-timestamp"]) - time.time()) < 60
    assert body["created_at"].endswith("Z")
    assert body["data"]["job"] == {
        "id": job_id,
        "status": "done",
        "created_at": body["data"]["job"]["created_at"],
        "finished_at": body["data"]["job"]["finished_at"],
        "error": None,
        "outputs": ["json", "srt"],  # names only: storage keys stay private
        "metadata": {"order": "A-17"},
    }
    failed_job = json.loads(by_job[failed_id].body)["data"]["job"]
    assert failed_job["status"] == "failed"
    assert failed_job["error"] == {"code": "invalid_input", "message": "start is after end"}

    # What a receiver must refuse: a changed body, an old timestamp.
    timestamp = headers["reelscribe-timestamp"]
    signature = headers["reelscribe-signature"]
    tampered = request.body.replace(b'"A-17"', b'"A-18"')
    assert tampered != request.body
    assert not verify_signature(SECRET, timestamp, tampered, signature)
    assert not verify_signature(SECRET, timestamp, request.body, signature, now=time.time() + 600)
    forwarded = {k: v for k, v in request.headers.items() if k.lower().startswith("reelscribe-")}
    async with httpx.AsyncClient(trust_env=False) as client:
        forged = await client.post(receiver.url, content=tampered, headers=forwarded)
    assert forged.status_code == 401
    assert receiver.requests[-1].body == tampered
    assert not receiver.requests[-1].valid

    [delivery] = await list_deliveries(engine, job_id)
    assert delivery["state"] == "delivered"
    assert delivery["id"] == body["id"]
    assert delivery["delivered_at"] is not None
    assert delivery["next_attempt_at"] is None
    [attempt] = delivery["attempts"]
    assert attempt["status_code"] == 200
    assert attempt["error"] is None
    assert attempt["duration_ms"] > 0


@pytest.mark.anyio
async def test_a_replayed_old_timestamp_is_refused_by_the_receiver(
    engine: AsyncEngine, receiver: Receiver
) -> None:
    job_id = await ended_job(engine, JobStatus.CANCELLED, receiver.url)
    # A sender whose signature timestamp is 10 minutes old looks like a replay.
    async with dispatcher(engine, clock=lambda: time.time() - 600) as d:
        await d.sweep()
        assert await d.deliver_due() == 1
    [request] = receiver.requests
    assert not request.valid
    assert request.answered == 401
    [delivery] = await list_deliveries(engine, job_id)
    assert delivery["state"] == "pending"  # a 4xx is retried like any failure
    assert delivery["attempts"][0]["status_code"] == 401
    assert delivery["attempts"][0]["error"] == "HTTP 401 Unauthorized"


@pytest.mark.anyio
async def test_a_receiver_that_is_down_gets_retries_until_it_is_back(engine: AsyncEngine) -> None:
    # A bound socket that never listens: the port is ours, and connecting is refused.
    reserved = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    reserved.bind(("127.0.0.1", 0))
    port = reserved.getsockname()[1]
    url = f"http://127.0.0.1:{port}/hooks/reelscribe"
    job_id = await ended_job(engine, JobStatus.DONE, url)
    server: Receiver | None = None
    try:
        async with dispatcher(engine) as d:
            await d.sweep()
            for n in (1, 2, 3):
                await attempts_reach(d, job_id, n)
            [delivery] = await list_deliveries(engine, job_id)
            # Down: every attempt recorded, refused, and the next one pushed back further.
            assert delivery["state"] == "pending"
            attempts = delivery["attempts"]
            assert len(attempts) == 3
            for attempt in attempts:
                assert attempt["status_code"] is None
                assert "ConnectError" in attempt["error"]
                assert "refused" in attempt["error"]
            assert delivery["next_attempt_at"] > attempts[-1]["at"]
            gaps = [_seconds(b["at"]) - _seconds(a["at"]) for a, b in itertools.pairwise(attempts)]
            # Backoff 50 ms then 100 ms (SQLite keeps milliseconds: 2 ms of slack).
            assert gaps[0] >= 0.048, gaps
            assert gaps[1] >= 0.098, gaps
            assert await d.deliver_due() == 0  # not due yet: nothing is sent early

            # Up again, on the same port.
            reserved.close()
            server = Receiver(port)
            await deliver_until(d, lambda: bool(server and server.requests))
        [delivery] = await list_deliveries(engine, job_id)
        assert delivery["state"] == "delivered"
        assert [a["status_code"] for a in delivery["attempts"]] == [None, None, None, 200]
        assert len(server.requests) == 1
        assert server.requests[0].valid
    finally:
        reserved.close()
        if server is not None:
            server.close()


def _seconds(iso: str) -> float:
    return datetime.fromisoformat(iso).timestamp()


@pytest.mark.anyio
async def test_a_500_is_retried_and_the_200_after_it_delivers(engine: AsyncEngine) -> None:
    server = Receiver(statuses=[500])
    try:
        job_id = await ended_job(engine, JobStatus.FAILED, server.url)
        async with dispatcher(engine) as d:
            await d.sweep()
            await deliver_until(d, lambda: len(server.requests) == 2)
            assert await d.deliver_due() == 0
        assert [r.answered for r in server.requests] == [500, 200]
        first, second = (json.loads(r.body) for r in server.requests)
        assert first == second  # the same delivery, id included, re-signed
        [delivery] = await list_deliveries(engine, job_id)
        assert delivery["state"] == "delivered"
        assert [(a["status_code"], a["error"]) for a in delivery["attempts"]] == [
            (500, "HTTP 500 Internal Server Error"),
            (200, None),
        ]
    finally:
        server.close()


@pytest.mark.anyio
async def test_blocked_targets_are_never_contacted(engine: AsyncEngine, receiver: Receiver) -> None:
    metadata = await ended_job(engine, JobStatus.DONE, "http://169.254.169.254/latest/meta-data/")
    loopback = await ended_job(engine, JobStatus.DONE, receiver.url)
    # No allowlist: the receiver on 127.0.0.1 is a loopback address like any other.
    async with dispatcher(engine, allowed_networks=()) as d:
        assert await d.sweep() == 2
        assert await d.deliver_due() == 2
        assert await d.deliver_due() == 0
    assert receiver.requests == []
    for job_id, reason in ((metadata, "cloud metadata"), (loopback, "loopback")):
        [delivery] = await list_deliveries(engine, job_id)
        # A refusal will not heal by waiting: given up at once.
        assert delivery["state"] == "failed"
        [attempt] = delivery["attempts"]
        assert attempt["status_code"] is None
        assert "refusing" in attempt["error"]
        assert reason in attempt["error"]


@pytest.mark.anyio
async def test_a_delivery_is_given_up_only_after_max_age(engine: AsyncEngine) -> None:
    server = Receiver(statuses=[503] * 1000)
    try:
        job_id = await ended_job(engine, JobStatus.DONE, server.url)
        async with dispatcher(engine, max_age=0.5) as d:
            await d.sweep()

            async def given_up() -> bool:
                await d.deliver_due()
                [delivery] = await list_deliveries(engine, job_id)
                return bool(delivery["state"] == "failed")

            await until(given_up)
            assert await d.deliver_due() == 0
        [delivery] = await list_deliveries(engine, job_id)
        attempts = delivery["attempts"]
        span = _seconds(attempts[-1]["at"]) - _seconds(attempts[0]["at"])
        assert span >= 0.5
        assert _seconds(attempts[-2]["at"]) - _seconds(attempts[0]["at"]) < 0.5
        assert all(a["status_code"] == 503 for a in attempts)
        assert len(server.requests) == len(attempts)
    finally:
        server.close()


@pytest.mark.anyio
async def test_two_dispatchers_deliver_each_event_exactly_once(
    database_url: str, engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A slow receiver keeps leases held while the other dispatcher looks for work.
    server = Receiver(delay=0.03)
    jobs = 12
    try:
        statuses = [JobStatus.DONE, JobStatus.FAILED, JobStatus.CANCELLED]
        ids = [await ended_job(engine, statuses[i % 3], server.url) for i in range(jobs)]
        # Two engines: as if two processes, each with its own connection pool.
        other = create_engine(database_url)
        stop = asyncio.Event()
        try:
            async with (
                dispatcher(engine, batch_size=2) as one,
                dispatcher(other, batch_size=2) as two,
            ):
                attempts = {"one": 0, "two": 0}
                for name, d in (("one", one), ("two", two)):
                    monkeypatch.setattr(d, "deliver_due", _counting(d.deliver_due, attempts, name))
                runs = [
                    asyncio.create_task(one.run(stop, interval=0.02)),
                    asyncio.create_task(two.run(stop, interval=0.02)),
                ]

                async def all_delivered() -> bool:
                    found = [await list_deliveries(engine, job_id) for job_id in ids]
                    return all(len(f) == 1 and f[0]["state"] == "delivered" for f in found)

                try:
                    await until(all_delivered, timeout=15)
                finally:
                    stop.set()
                    await asyncio.gather(*runs)
        finally:
            await other.dispose()
        assert attempts["one"] > 0, attempts  # both took part
        assert attempts["two"] > 0, attempts
        assert attempts["one"] + attempts["two"] == jobs
        delivered = [r.headers["Reelscribe-Delivery"] for r in server.requests]
        assert len(delivered) == len(set(delivered)) == jobs
        assert all(r.valid and r.answered == 200 for r in server.requests)
        for job_id in ids:
            [delivery] = await list_deliveries(engine, job_id)
            assert len(delivery["attempts"]) == 1
    finally:
        server.close()


def _counting(
    deliver_due: Callable[[], Awaitable[int]], counts: dict[str, int], name: str
) -> Callable[[], Awaitable[int]]:
    async def counted() -> int:
        made = await deliver_due()
        counts[name] += made
        return made

    return counted


@pytest.mark.anyio
async def test_an_outage_is_logged_once_and_the_dispatcher_goes_on(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A database that cannot be reached (a folder that does not exist) makes every round
    fail: one warning when it starts, no traceback per round, and the loop keeps going."""
    engine = create_engine(f"sqlite:///{tmp_path / 'missing' / 'db.sqlite'}")
    stop = asyncio.Event()
    caplog.set_level("DEBUG", logger="reelscribe")
    try:
        task = asyncio.create_task(dispatcher(engine).run(stop, interval=0.02))
        await asyncio.sleep(1.0)
        assert not task.done()  # still running through the outage
        stop.set()
        await asyncio.wait_for(task, 5.0)
    finally:
        await engine.dispose()
    failures = [r for r in caplog.records if "webhook dispatch" in r.getMessage()]
    loud = [r for r in failures if r.levelname in ("WARNING", "ERROR")]
    assert len(failures) >= 3  # it did retry
    assert len(loud) == 1
    assert "retrying with backoff" in loud[0].getMessage()
