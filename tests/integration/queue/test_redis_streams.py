"""What only the Redis queue has to get right: streams that do not grow, and recovery
when Redis loses its data (it runs without persistence here)."""

from __future__ import annotations

import asyncio
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


async def test_a_running_queue_recreates_a_lost_consumer_group(redis_env: Env) -> None:
    """Redis restarted empty under a running worker (NOGROUP): the next claim recreates
    the group and the table's jobs are delivered again; a heartbeat of a job in hand
    does not fail either."""
    queue = redis_env.queue
    assert isinstance(queue, RedisStreamQueue)
    running, _ = await redis_env.store.create({})
    await queue.enqueue(running.id)
    claim = await queue.claim("w1", LEASE)
    assert claim is not None
    waiting, _ = await redis_env.store.create({})
    await queue.enqueue(waiting.id)

    await delete_prefix(str(redis_env.target.redis_url), redis_env.target.prefix)  # "restart"

    assert await queue.heartbeat(claim) is False  # NOGROUP: recreated, resynced
    second = await queue.claim("w2", LEASE)
    assert second is not None
    assert second.job_id == waiting.id
    assert await queue.claim("w2", LEASE) is None  # the running job's new entry waits
    await queue.complete(claim, {})
    await queue.complete(second, {})
    for stream in queue.streams.values():
        await queue.redis.xadd(stream, {"job": "nothing"})  # garbage is dropped too
    assert await queue.claim("w1", LEASE) is None


async def test_redis_down_at_start_up_does_not_fail_the_queue(sqlite_url: str) -> None:
    """Started with Redis unreachable, the queue opens; claims fail (the worker backs
    off) until Redis answers; then the groups are made and table jobs delivered."""
    import shutil
    import socket
    import subprocess

    from reelscribe.backends.db import JobStore, create_engine
    from reelscribe.backends.faults import is_transient
    from tests.services import missing_service

    binary = shutil.which("redis-server")
    if binary is None:
        missing_service("redis-server is not installed")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    engine = create_engine(sqlite_url)
    redis = Redis.from_url(f"redis://127.0.0.1:{port}/0", socket_connect_timeout=0.5)
    server = None
    try:
        job, _ = await JobStore(engine).create({})
        async with RedisStreamQueue(engine, redis, prefix="reelscribe-test") as queue:
            with pytest.raises(Exception) as failure:  # noqa: PT011 (redis-py's class)
                await queue.claim("w1", LEASE)
            assert is_transient(failure.value)
            server = subprocess.Popen(
                [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                 "--appendonly", "no"], stdout=subprocess.DEVNULL,
            )  # fmt: skip
            for _ in range(100):
                try:
                    await redis.ping()
                    break
                except Exception:
                    await asyncio.sleep(0.05)
            claim = await queue.claim("w1", LEASE)
            assert claim is not None
            assert claim.job_id == job.id
    finally:
        if server is not None:
            server.terminate()
            server.wait()
        await redis.aclose()
        await engine.dispose()
