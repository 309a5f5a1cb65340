"""What only the Redis queue has to get right: streams that do not grow, and recovery
when Redis loses its data (it runs without persistence here)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis

from reelscribe.backends.db import Priority
from reelscribe.backends.queue.redis_streams import RedisStreamQueue
from tests.integration.queue.harness import LEASE, Env, Target, open_env
from tests.integration.queue.services import delete_prefix

pytestmark = pytest.mark.anyio


@pytest.fixture
async def redis_env(sqlite_url: str, redis_url: str) -> AsyncIterator[Env]:
    target = Target("redis", sqlite_url, redis_url, f"reelscribe-test-{uuid.uuid4().hex[:12]}")
    try:
        async with open_env(target) as env:
            yield env
    finally:
        await delete_prefix(redis_url, target.prefix)


async def stream_sizes(queue: RedisStreamQueue) -> list[int]:
    return [await queue.redis.xlen(stream) for stream in queue.streams.values()]


async def test_finished_entries_are_deleted(redis_env: Env) -> None:
    queue = redis_env.queue
    assert isinstance(queue, RedisStreamQueue)
    ids = []
    for priority in (Priority.FAST, Priority.NORMAL, Priority.BULK):
        job, _ = await redis_env.store.create({}, priority=priority)
        await queue.enqueue(job.id, priority)
        ids.append(job.id)
    assert await stream_sizes(queue) == [1, 1, 1]
    await queue.cancel(ids[2])  # the entry stays until a claim reads it
    for _ in range(2):
        claim = await queue.claim("w1", LEASE)
        assert claim is not None
        await queue.complete(claim, {})
    assert await queue.claim("w1", LEASE) is None
    assert await stream_sizes(queue) == [0, 0, 0]
    for stream in queue.streams.values():
        assert (await queue.redis.xpending(stream, queue.group))["pending"] == 0


async def test_lost_redis_data_is_rebuilt_from_the_table(redis_env: Env) -> None:
    queue = redis_env.queue
    assert isinstance(queue, RedisStreamQueue)
    bulk, _ = await redis_env.store.create({}, priority=Priority.BULK)
    fast, _ = await redis_env.store.create({}, priority=Priority.FAST)
    for job in (bulk, fast):
        await queue.enqueue(job.id, job.priority)

    await delete_prefix(str(redis_env.target.redis_url), redis_env.target.prefix)  # "restart"

    redis: Redis = queue.redis
    async with RedisStreamQueue(
        redis_env.store.engine, redis, prefix=redis_env.target.prefix
    ) as fresh:
        first = await fresh.claim("w1", LEASE)
        second = await fresh.claim("w1", LEASE)
        assert first is not None
        assert second is not None
        assert (first.job_id, second.job_id) == (fast.id, bulk.id)
