"""Deleting results past retention: ``done → expired``, then the job's stored files;
and the staged bytes of resumable uploads abandoned on this host.

The two steps are separate transactions, so the sweep also finishes what an earlier,
interrupted sweep started: any expired job that still has a result gets its files
deleted and its result cleared.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from sqlalchemy import null, select, update

from reelscribe.backends.db.enums import JobStatus
from reelscribe.backends.db.schema import JobRow
from reelscribe.service.runtime import Runtime
from reelscribe.service.uploads import UploadService

log = logging.getLogger("reelscribe.retention")


def results_prefix(job_id: str) -> str:
    return f"results/{job_id}/"


async def sweep(runtime: Runtime, *, limit: int = 500) -> int:
    """Expires due jobs and deletes their files; returns how many jobs were cleaned."""
    await runtime.jobs.expire_done()
    async with runtime.engine.connect() as conn:
        ids = (await conn.execute(
            select(JobRow.id)
            .where(JobRow.status == JobStatus.EXPIRED, JobRow.result.is_not(None))
            .limit(limit)
        )).scalars().all()  # fmt: skip
    for job_id in ids:
        await runtime.storage.delete_prefix(results_prefix(job_id))
        async with runtime.engine.begin() as conn:
            # SQL NULL, not JSON null: the sweep's query looks for rows with a result.
            await conn.execute(update(JobRow).where(JobRow.id == job_id).values(result=null()))
    return len(ids)


async def run(runtime: Runtime, stop: asyncio.Event, interval: float = 60.0) -> None:
    uploads = UploadService(runtime)
    while not stop.is_set():
        try:
            cleaned = await sweep(runtime)
            if cleaned:
                log.info("retention: removed the results of %d expired jobs", cleaned)
            staged = await uploads.sweep_staging()
            if staged:
                log.info("retention: removed %d abandoned resumable uploads' bytes", staged)
        except Exception:  # a failed sweep is retried at the next interval
            log.exception("retention sweep failed")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=interval)
