"""Opens a queue backend from a picklable description, in the test process and in the
stress test's spawned worker processes alike."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from reelscribe.backends.db import JobStatus, JobStore, create_engine
from reelscribe.backends.queue import Backoff, DatabaseQueue, Queue

#: Short enough that lease expiry is quick to wait for, long enough for a loaded CI box.
LEASE = 0.3


@dataclass(frozen=True)
class Target:
    """One backend under test: ``kind`` is "sqlite", "postgresql" or "redis"."""

    kind: str
    database_url: str
    redis_url: str | None = None
    prefix: str = "reelscribe-test"
    backoff: Backoff = field(default_factory=lambda: Backoff(base=0.05, factor=2.0, jitter=0.25))


@dataclass
class Env:
    target: Target
    queue: Queue
    store: JobStore


@contextlib.asynccontextmanager
async def open_env(target: Target) -> AsyncIterator[Env]:
    engine = create_engine(target.database_url)
    try:
        store = JobStore(engine)
        if target.kind == "redis":
            from redis.asyncio import Redis

            from reelscribe.backends.queue.redis_streams import RedisStreamQueue

            assert target.redis_url is not None
            redis = Redis.from_url(target.redis_url)
            try:
                queue: Queue = RedisStreamQueue(
                    engine,
                    redis,
                    prefix=target.prefix,
                    backoff=target.backoff,
                    poll_interval=0.2,
                )
                async with queue:
                    yield Env(target, queue, store)
            finally:
                await redis.aclose()
        else:
            async with DatabaseQueue(engine, backoff=target.backoff, poll_interval=0.2) as queue:
                yield Env(target, queue, store)
    finally:
        await engine.dispose()


def stress_worker(target: Target, worker_id: str) -> list[str]:
    """A burst-mode worker: claims and completes until nothing is queued or running.
    Returns the ids it completed."""
    return asyncio.run(_stress_worker(target, worker_id))


async def _stress_worker(target: Target, worker_id: str) -> list[str]:
    done: list[str] = []
    async with open_env(target) as env:
        while True:
            claim = await env.queue.claim(worker_id, lease_seconds=30.0)
            if claim is None:
                counts = await env.store.count_by_status()
                if not counts.get(JobStatus.QUEUED) and not counts.get(JobStatus.PROCESSING):
                    return done
                await env.queue.wait(0.05)
                continue
            await env.queue.complete(claim, {"worker": worker_id})
            done.append(claim.job_id)
