"""The queue contract: each test runs against every backend (see conftest.py)."""

from __future__ import annotations

import asyncio
import multiprocessing
import time

import pytest
from sqlalchemy import func, insert, select

from reelscribe.backends.db import EventKind, JobEventRow, JobRow, JobStatus, Priority
from reelscribe.backends.db.store import new_job_id
from reelscribe.errors import InvalidInputError, JobNotFoundError, LeaseLost, NetworkError
from tests.integration.queue.harness import LEASE, Env, stress_worker

pytestmark = pytest.mark.anyio


async def submit(env: Env, priority: Priority = Priority.NORMAL) -> str:
    job, created = await env.store.create({"url": "file:///a.mp4"}, priority=priority)
    assert created
    assert await env.queue.enqueue(job.id, priority) is JobStatus.QUEUED
    return job.id


async def status_of(env: Env, job_id: str) -> JobStatus:
    job = await env.store.get(job_id)
    assert job is not None
    return job.status


async def transitions(env: Env, job_id: str) -> list[tuple[str | None, str]]:
    events = await env.store.events(job_id)
    assert all(event.kind is EventKind.TRANSITION for event in events)
    return [(event.data["from"], event.data["to"]) for event in events]


async def test_claims_in_priority_order(env: Env) -> None:
    bulk = await submit(env, Priority.BULK)
    normal = await submit(env, Priority.NORMAL)
    fast = await submit(env, Priority.FAST)
    claimed = [await env.queue.claim("w1", LEASE) for _ in range(4)]
    assert [c.job_id if c else None for c in claimed] == [fast, normal, bulk, None]
    assert [c.priority for c in claimed if c] == [Priority.FAST, Priority.NORMAL, Priority.BULK]


async def test_fifo_within_a_priority(env: Env) -> None:
    ids = [await submit(env) for _ in range(6)]
    claimed = [await env.queue.claim("w1", LEASE) for _ in ids]
    assert [c.job_id for c in claimed if c] == ids


async def test_happy_path_records_every_transition(env: Env) -> None:
    job_id = await submit(env)
    claim = await env.queue.claim("w1", LEASE)
    assert claim is not None
    assert (claim.job_id, claim.attempt, claim.reclaimed) == (job_id, 1, False)
    assert claim.spec == {"url": "file:///a.mp4"}
    assert await env.queue.heartbeat(claim) is False
    await env.queue.complete(claim, {"srt": f"jobs/{job_id}/out.srt"}, retain_seconds=3600)
    job = await env.store.get(job_id)
    assert job is not None
    assert job.status is JobStatus.DONE
    assert job.result == {"srt": f"jobs/{job_id}/out.srt"}
    assert (job.progress, job.attempts, job.lease_owner) == (100.0, 1, None)
    assert job.finished_at is not None
    assert job.expires_at is not None
    assert job.expires_at > job.finished_at
    assert job.processing_seconds >= 0.0
    assert await transitions(env, job_id) == [
        (None, "queued"),
        ("queued", "processing"),
        ("processing", "done"),
    ]


async def test_expired_lease_is_reclaimed_and_the_old_worker_fenced_off(env: Env) -> None:
    job_id = await submit(env)
    old = await env.queue.claim("w-old", LEASE)
    assert old is not None
    assert await env.queue.claim("w-new", LEASE) is None  # still leased
    await asyncio.sleep(LEASE + 0.15)

    new = await env.queue.claim("w-new", LEASE)
    assert new is not None
    assert new.job_id == job_id
    assert (new.attempt, new.reclaimed) == (2, True)
    assert new.token > old.token

    # Every write of the old worker is refused and changes nothing.
    with pytest.raises(LeaseLost):
        await env.queue.complete(old, {"from": "old"})
    with pytest.raises(LeaseLost):
        await env.queue.heartbeat(old)
    with pytest.raises(LeaseLost):
        await env.queue.fail(old, NetworkError("late"))
    with pytest.raises(LeaseLost):
        await env.queue.release(old)
    assert await status_of(env, job_id) is JobStatus.PROCESSING

    await env.queue.complete(new, {"from": "new"})
    job = await env.store.get(job_id)
    assert job is not None
    assert (job.status, job.result, job.attempts) == (JobStatus.DONE, {"from": "new"}, 2)
    assert await transitions(env, job_id) == [
        (None, "queued"),
        ("queued", "processing"),
        ("processing", "processing"),
        ("processing", "done"),
    ]


async def test_heartbeat_keeps_the_lease(env: Env) -> None:
    await submit(env)
    claim = await env.queue.claim("w1", LEASE)
    assert claim is not None
    for _ in range(4):  # well past one lease in total
        await asyncio.sleep(LEASE / 3)
        assert await env.queue.heartbeat(claim) is False
        assert await env.queue.claim("w2", LEASE) is None
    await env.queue.complete(claim, {})


async def test_lease_lost_attempts_used_up_fails_the_job(env: Env) -> None:
    job, _ = await env.store.create({}, max_attempts=1)
    await env.queue.enqueue(job.id)
    assert await env.queue.claim("w1", LEASE) is not None
    await asyncio.sleep(LEASE + 0.15)
    assert await env.queue.claim("w2", LEASE) is None  # no attempt left to give
    await env.queue.reap()
    failed = await env.store.get(job.id)
    assert failed is not None
    assert (failed.status, failed.error_code) == (JobStatus.FAILED, "lease_expired")


async def test_cancellation(env: Env) -> None:
    waiting = await submit(env, Priority.BULK)
    running = await submit(env, Priority.FAST)
    claim = await env.queue.claim("w1", LEASE)
    assert claim is not None
    assert claim.job_id == running

    # A queued job is cancelled at once and never handed out.
    assert await env.queue.cancel(waiting) is JobStatus.CANCELLED
    # A running one is asked: its worker learns through the heartbeat.
    assert await env.queue.cancel(running) is JobStatus.PROCESSING
    assert await env.queue.heartbeat(claim) is True
    await env.queue.cancelled(claim)

    assert await status_of(env, running) is JobStatus.CANCELLED
    assert await env.queue.claim("w1", LEASE) is None
    assert await env.queue.cancel(running) is JobStatus.CANCELLED  # idempotent
    assert await transitions(env, waiting) == [(None, "queued"), ("queued", "cancelled")]
    with pytest.raises(JobNotFoundError):
        await env.queue.cancel(new_job_id())


async def test_retry_backs_off_exponentially(env: Env) -> None:
    job_id = await submit(env)
    delays: list[float] = []
    for attempt in (1, 2, 3):
        claim = None
        deadline = time.monotonic() + 5
        while claim is None and time.monotonic() < deadline:
            claim = await env.queue.claim("w1", LEASE)
            if claim is None:
                await asyncio.sleep(0.02)
        assert claim is not None
        assert claim.attempt == attempt
        status = await env.queue.fail(claim, NetworkError("connection reset"))
        job = await env.store.get(job_id)
        assert job is not None
        assert job.error_code == "network_error"
        if attempt < 3:
            assert status is JobStatus.QUEUED
            delays.append((job.run_after - job.updated_at).total_seconds())
            # Not handed out again before run_after.
            assert await env.queue.claim("w1", LEASE) is None
        else:
            assert status is JobStatus.FAILED  # max_attempts (3) used up

    backoff = env.target.backoff
    assert backoff.base * 0.98 <= delays[0] <= backoff.base * (1 + backoff.jitter) + 0.002
    assert delays[1] > delays[0]
    assert delays[1] >= backoff.base * backoff.factor * 0.98
    retries = [e.data["retry_in"] for e in await env.store.events(job_id) if "retry_in" in e.data]
    assert len(retries) == 2
    assert retries[1] > retries[0]


async def test_user_fault_is_not_retried(env: Env) -> None:
    job_id = await submit(env)
    claim = await env.queue.claim("w1", LEASE)
    assert claim is not None
    status = await env.queue.fail(claim, InvalidInputError("end must be after start"))
    assert status is JobStatus.FAILED
    job = await env.store.get(job_id)
    assert job is not None
    assert (job.attempts, job.error_code) == (1, "invalid_input")
    assert await env.queue.claim("w1", LEASE) is None

    # failed → queued by hand starts afresh.
    assert await env.queue.enqueue(job_id) is JobStatus.QUEUED
    again = await env.queue.claim("w1", LEASE)
    assert again is not None
    assert (again.job_id, again.attempt) == (job_id, 1)


async def test_release_does_not_count_an_attempt(env: Env) -> None:
    job_id = await submit(env)
    first = await env.queue.claim("w1", LEASE)
    assert first is not None
    await env.queue.release(first)
    job = await env.store.get(job_id)
    assert job is not None
    assert (job.status, job.attempts) == (JobStatus.QUEUED, 0)

    second = await env.queue.claim("w2", LEASE)
    assert second is not None
    assert (second.job_id, second.attempt, second.reclaimed) == (job_id, 1, False)
    assert second.token > first.token
    with pytest.raises(LeaseLost):
        await env.queue.heartbeat(first)


async def test_idempotency_key_returns_the_existing_job(env: Env) -> None:
    first, created = await env.store.create({"n": 1}, owner_key_id="k1", idempotency_key="abc")
    again, created_again = await env.store.create(
        {"n": 2}, owner_key_id="k1", idempotency_key="abc"
    )
    assert (created, created_again) == (True, False)
    assert again.id == first.id
    assert again.spec == {"n": 1}
    other_owner, created_other = await env.store.create(
        {"n": 3}, owner_key_id="k2", idempotency_key="abc"
    )
    assert created_other
    assert other_owner.id != first.id
    # No owner is an owner too; no key means no deduplication.
    anon, _ = await env.store.create({}, idempotency_key="abc")
    anon_again, created_anon = await env.store.create({}, idempotency_key="abc")
    assert anon_again.id == anon.id
    assert not created_anon
    unkeyed = [(await env.store.create({}))[0].id for _ in range(2)]
    assert unkeyed[0] != unkeyed[1]


async def test_concurrent_creates_share_a_transaction_and_keep_their_own_outcome(
    env: Env,
) -> None:
    """Submissions arriving together are written as one batch (a group commit); a
    repeated idempotency key inside the batch still yields one job, and every caller
    gets its own row back with its own first event."""
    plain = await asyncio.gather(*[env.store.create({"n": n}, owner_key_id="k1")
                                   for n in range(40)])  # fmt: skip
    # A conflict inside a batch: the batch falls back to one insert per job.
    dups = await asyncio.gather(
        env.store.create({"n": 40}, owner_key_id="k1"),
        *[env.store.create({"dup": True}, owner_key_id="k1", idempotency_key="same")
          for _ in range(5)],
    )  # fmt: skip
    assert dups[0][1]
    assert dups[0][0].spec == {"n": 40}
    plain, dups, results = [*plain, dups[0]], dups[1:], [*plain, *dups]
    assert [row.spec for row, _ in plain] == [{"n": n} for n in range(41)]
    assert all(created for _, created in plain)
    assert len({row.id for row, _ in plain}) == 41
    assert sorted(created for _, created in dups) == [False] * 4 + [True]
    assert len({row.id for row, _ in dups}) == 1
    for row, _ in results:
        stored = await env.store.get(row.id)
        assert stored is not None
        assert stored.spec == row.spec
        assert [e.data for e in await env.store.events(row.id)] == [{"from": None, "to": "queued"}]
    # All 42 are claimable once delivered, in the queue's defined order: oldest first
    # (created_at, then id). Not creation order: rows of one batch can share a
    # created_at, and ids made within one millisecond are not ordered.
    for row, created in results:
        if created:
            await env.queue.submitted(row.id, row.priority)
    # A long lease: under load 42 claims can outlast LEASE, and then the first jobs
    # would be taken over before the loop ends.
    claimed = [await env.queue.claim("w", 30.0) for _ in range(42)]
    claimed_ids = [c.job_id for c in claimed if c is not None]
    created_ids = {row.id for row, created in results if created}
    assert len(claimed_ids) == len(created_ids) == 42
    assert set(claimed_ids) == created_ids
    if env.target.kind != "redis":  # Redis delivers in XADD order; the table decides here
        stored = [await env.store.get(job_id) for job_id in claimed_ids]
        keys = [(row.created_at, row.id) for row in stored if row is not None]
        assert keys == sorted(keys)
    assert await env.queue.claim("w", 30.0) is None


async def test_wait_returns_when_work_arrives(env: Env) -> None:
    async def submit_soon() -> str:
        await asyncio.sleep(0.1)
        return await submit(env)

    started = time.monotonic()
    task = asyncio.create_task(submit_soon())
    await env.queue.wait(5.0)
    job_id = await task
    # PostgreSQL and Redis are told; SQLite polls (every 0.2 s in these tests).
    assert time.monotonic() - started < 1.0
    claim = await env.queue.claim("w1", LEASE)
    assert claim is not None
    assert claim.job_id == job_id


async def test_wait_wakes_for_a_retry_that_falls_due(env: Env) -> None:
    await submit(env)
    claim = await env.queue.claim("w1", LEASE)
    assert claim is not None
    await env.queue.fail(claim, NetworkError("reset"))  # due again in ~0.05 s
    started = time.monotonic()
    await env.queue.wait(5.0)
    assert time.monotonic() - started < 1.0


@pytest.mark.slow
async def test_stress_every_job_done_exactly_once_by_four_processes(env: Env) -> None:
    count, workers = 2_000, 4
    ids = [new_job_id() for _ in range(count)]
    engine = env.store.engine
    async with engine.begin() as conn:  # bulk setup; creating one by one is not under test
        await conn.execute(insert(JobRow), [{"id": i, "spec": {"n": n}} for n, i in enumerate(ids)])
        await conn.execute(
            insert(JobEventRow),
            [{"job_id": i, "kind": EventKind.TRANSITION, "data": {"to": "queued"}} for i in ids],
        )
    resync = getattr(env.queue, "resync", None)
    if resync is not None:
        assert await resync() == count  # the Redis queue delivers every queued job

    started = time.monotonic()
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(workers) as pool:
        done = await asyncio.to_thread(
            pool.starmap, stress_worker, [(env.target, f"w{n}") for n in range(workers)]
        )
    elapsed = time.monotonic() - started

    completed = [job_id for part in done for job_id in part]
    assert len(completed) == count, "some job was completed twice or not at all"
    assert set(completed) == set(ids)
    assert all(part for part in done), "a worker got no job at all"
    async with engine.connect() as conn:
        rows = (
            await conn.execute(
                select(JobRow.status, JobRow.attempts, func.count()).group_by(
                    JobRow.status, JobRow.attempts
                )
            )
        ).all()
    assert [tuple(row) for row in rows] == [(JobStatus.DONE, 1, count)]
    print(f"{env.target.kind}: {count} jobs by {workers} processes in {elapsed:.1f} s")
