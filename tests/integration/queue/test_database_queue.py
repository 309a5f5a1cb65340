"""What only the database queue has to get right: PostgreSQL wakes waiting workers
through LISTEN/NOTIFY, across processes and connections, without polling."""

from __future__ import annotations

import asyncio
import time

import pytest

from reelscribe.backends.db import JobStore, create_engine
from reelscribe.backends.queue import DatabaseQueue

pytestmark = pytest.mark.anyio


async def test_postgres_notify_wakes_a_waiting_worker(empty_postgres_url: str) -> None:
    url = empty_postgres_url
    worker_engine, api_engine = create_engine(url), create_engine(url)
    try:
        # A poll interval far longer than the test: only a notification can wake it.
        async with (
            DatabaseQueue(worker_engine, poll_interval=60.0) as worker_queue,
            DatabaseQueue(api_engine) as api_queue,
        ):

            async def submit_soon() -> None:
                await asyncio.sleep(0.2)
                job, _ = await JobStore(api_engine).create({})
                await api_queue.enqueue(job.id)

            task = asyncio.create_task(submit_soon())
            started = time.monotonic()
            await worker_queue.wait(30.0)
            await task
            assert time.monotonic() - started < 5.0
            assert await worker_queue.claim("w1", 5.0) is not None
    finally:
        await worker_engine.dispose()
        await api_engine.dispose()
