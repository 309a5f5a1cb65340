"""Pruning benchmark: deleting ended jobs and their events on PostgreSQL.

Builds a scratch database on 127.0.0.1:5432 (``REELSCRIBE_BENCH_POSTGRES_URL``, the
server's ``test`` database is only used to create and drop it) holding 100,000 jobs
with 10 events each (1,000,000 ``job_events`` rows, inserted with ``generate_series``);
half the jobs ended 40 days ago and are due for pruning. Each design then runs on a
fresh copy of that database (``CREATE DATABASE … TEMPLATE``):

* **naive**: one transaction, ``DELETE FROM job_events WHERE at < cutoff`` then
  ``DELETE FROM jobs WHERE status IN (…) AND finished_at < cutoff``;
* **batched** (what ``reelscribe.service.retention.prune`` does):
  :meth:`JobStore.delete_ended` until it finds nothing, 1,000 jobs per transaction,
  found through ``ix_jobs_status_finished_at`` and deleted through the ``job_id``
  indexes.

For each it prints the wall time, the longest single transaction (how long the rows it
deletes stay locked), the WAL written, and the worst wait of a concurrent writer that
touches a random due job every 20 ms (``UPDATE jobs SET updated_at = now()``, as a
retry or a late heartbeat would): under the naive delete it waits for the whole delete.

    python bench/prune.py [--jobs 100000] [--events-per-job 10] [--batch 1000]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import random
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import make_url, text
from sqlalchemy.ext.asyncio import AsyncEngine

from reelscribe.backends.db import JobStore, create_engine
from reelscribe.migrations import upgrade_async
from reelscribe.service.retention import ENDED

ADMIN_URL = os.environ.get(
    "REELSCRIBE_BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
)
AGE_DAYS = 40
PRUNE_AFTER_DAYS = 30


@dataclass
class Outcome:
    name: str
    seconds: float
    longest_transaction: float
    transactions: int
    wal_bytes: int
    jobs_left: int
    events_left: int
    probe_worst: float
    probe_p50: float


async def admin(sql: str) -> None:
    engine = create_engine(ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        async with engine.connect() as conn:
            await conn.execute(text(sql))
    finally:
        await engine.dispose()


def url_for(name: str) -> str:
    return make_url(ADMIN_URL).set(database=name).render_as_string(hide_password=False)


async def populate(url: str, jobs: int, per_job: int) -> None:
    await upgrade_async(url)
    engine = create_engine(url)
    old = datetime.now(UTC) - timedelta(days=AGE_DAYS)
    try:
        async with engine.begin() as conn:
            # Even jobs failed 40 days ago (due), odd ones are done today (kept).
            await conn.execute(
                text(
                    """
                    INSERT INTO jobs (id, spec, status, priority, attempts, max_attempts,
                        lease_token, run_after, cancel_requested, progress,
                        processing_seconds, created_at, updated_at, finished_at,
                        error_code, owner_key_id)
                    SELECT lpad(g::text, 36, '0'), '{"source": {"url": "https://e/x"}}',
                        CASE WHEN g % 2 = 0 THEN 'failed' ELSE 'done' END, 1, 1, 3, 1,
                        t, false, 100, 1.0, t, t, t,
                        CASE WHEN g % 2 = 0 THEN 'network_error' END, 'k'
                    FROM (SELECT g, CASE WHEN g % 2 = 0 THEN CAST(:old AS timestamptz)
                                 ELSE now() END AS t
                          FROM generate_series(1, :jobs) AS g) AS s
                    """
                ),
                {"old": old, "jobs": jobs},
            )
            await conn.execute(
                text(
                    """
                    INSERT INTO job_events (job_id, at, kind, data)
                    SELECT lpad(j::text, 36, '0'),
                        CASE WHEN j % 2 = 0 THEN CAST(:old AS timestamptz) ELSE now() END,
                        'progress', '{"progress": 50, "stage": "transcribe"}'
                    FROM generate_series(1, :jobs) AS j, generate_series(1, :per_job) AS e
                    """
                ),
                {"old": old, "jobs": jobs, "per_job": per_job},
            )
    finally:
        await engine.dispose()
    engine = create_engine(url, isolation_level="AUTOCOMMIT")
    try:
        async with engine.connect() as conn:
            await conn.execute(text("VACUUM ANALYZE"))
    finally:
        await engine.dispose()


async def wal_position(engine: AsyncEngine) -> int:
    """Bytes of WAL the server has written so far (all databases: run nothing else)."""
    async with engine.connect() as conn:
        stmt = text("SELECT CAST(pg_wal_lsn_diff(pg_current_wal_lsn(), '0/0') AS bigint)")
        return int((await conn.execute(stmt)).scalar_one())


async def probe(engine: AsyncEngine, due: list[str], stop: asyncio.Event) -> list[float]:
    """Touches a random due job every 20 ms; returns how long each touch took."""
    waits: list[float] = []
    async with engine.connect() as conn:
        while not stop.is_set():
            started = time.perf_counter()
            await conn.execute(
                text("UPDATE jobs SET updated_at = now() WHERE id = :id"),
                {"id": random.choice(due)},
            )
            await conn.commit()
            waits.append(time.perf_counter() - started)
            await asyncio.sleep(0.02)
    return waits


async def counts(engine: AsyncEngine) -> tuple[int, int]:
    async with engine.connect() as conn:
        jobs = (await conn.execute(text("SELECT count(*) FROM jobs"))).scalar_one()
        events = (await conn.execute(text("SELECT count(*) FROM job_events"))).scalar_one()
    return int(jobs), int(events)


async def naive(engine: AsyncEngine, cutoff: datetime, batch: int) -> list[float]:
    started = time.perf_counter()
    async with engine.begin() as conn:
        await conn.execute(text("DELETE FROM job_events WHERE at < :c"), {"c": cutoff})
        await conn.execute(
            text(
                "DELETE FROM jobs WHERE status IN ('expired', 'failed', 'cancelled') "
                "AND finished_at < :c"
            ),
            {"c": cutoff},
        )
    return [time.perf_counter() - started]


async def batched(engine: AsyncEngine, cutoff: datetime, batch: int) -> list[float]:
    store = JobStore(engine)
    times = []
    while True:
        started = time.perf_counter()
        count = await store.delete_ended(ENDED, cutoff, limit=batch)
        times.append(time.perf_counter() - started)
        if count < batch:
            return times


Design = Callable[[AsyncEngine, datetime, int], Awaitable[list[float]]]


async def run(template: str, name: str, design: Design, jobs: int, batch: int) -> Outcome:
    copy = f"{template}_{name}"
    await admin(f'CREATE DATABASE "{copy}" TEMPLATE "{template}"')
    engine = create_engine(url_for(copy), pool_size=4)
    try:
        due = [str(g).zfill(36) for g in range(2, jobs + 1, 2)]
        cutoff = datetime.now(UTC) - timedelta(days=PRUNE_AFTER_DAYS)
        await counts(engine)  # warm the pool and the caches alike for both designs
        start_lsn = await wal_position(engine)
        stop = asyncio.Event()
        prober = asyncio.create_task(probe(engine, due, stop))
        await asyncio.sleep(0.2)
        started = time.perf_counter()
        transactions = await design(engine, cutoff, batch)
        seconds = time.perf_counter() - started
        stop.set()
        waits = sorted(await prober)
        wal = await wal_position(engine) - start_lsn
        jobs_left, events_left = await counts(engine)
    finally:
        await engine.dispose()
        await admin(f'DROP DATABASE IF EXISTS "{copy}" WITH (FORCE)')
    return Outcome(
        name,
        seconds,
        max(transactions),
        len(transactions),
        wal,
        jobs_left,
        events_left,
        waits[-1],
        waits[len(waits) // 2],
    )


async def main(jobs: int, per_job: int, batch: int) -> None:
    template = f"reelscribe_bench_prune_{uuid.uuid4().hex[:8]}"
    await admin(f'CREATE DATABASE "{template}"')
    try:
        started = time.perf_counter()
        await populate(url_for(template), jobs, per_job)
        engine = create_engine(url_for(template))
        try:
            async with engine.connect() as conn:
                version = (await conn.execute(text("SHOW server_version"))).scalar_one()
        finally:
            await engine.dispose()
        print(
            f"PostgreSQL {version}; {platform.machine()}, {os.cpu_count()} cores; "
            f"{jobs:,} jobs, {jobs * per_job:,} events, half due; "
            f"loaded in {time.perf_counter() - started:.1f} s"
        )
        outcomes = [
            await run(template, "naive", naive, jobs, batch),
            await run(template, "batched", batched, jobs, batch),
        ]
    finally:
        await admin(f'DROP DATABASE IF EXISTS "{template}" WITH (FORCE)')
    print(
        f"{'design':<8} {'total s':>8} {'txns':>5} {'longest txn s':>14} {'WAL MiB':>8} "
        f"{'writer worst ms':>16} {'writer p50 ms':>14} {'jobs left':>10} {'events left':>12}"
    )
    for o in outcomes:
        print(
            f"{o.name:<8} {o.seconds:>8.2f} {o.transactions:>5} {o.longest_transaction:>14.3f} "
            f"{o.wal_bytes / 2**20:>8.1f} {o.probe_worst * 1000:>16.1f} "
            f"{o.probe_p50 * 1000:>14.1f} {o.jobs_left:>10,} {o.events_left:>12,}"
        )
    naive_o, batched_o = outcomes
    print(
        f"total time batched/naive: {batched_o.seconds / naive_o.seconds:.2f}x; "
        f"longest lock hold naive/batched: "
        f"{naive_o.longest_transaction / batched_o.longest_transaction:.1f}x; "
        f"worst concurrent writer wait naive/batched: "
        f"{naive_o.probe_worst / batched_o.probe_worst:.1f}x"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=100_000)
    parser.add_argument("--events-per-job", type=int, default=10)
    parser.add_argument("--batch", type=int, default=1000)
    args = parser.parse_args()
    asyncio.run(main(args.jobs, args.events_per_job, args.batch))
