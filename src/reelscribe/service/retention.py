"""The data lifecycle, swept by every service process once a minute:

1. results past ``retention_seconds``: ``done → expired``, then the job's stored files
   (separate transactions, so a sweep also finishes what an interrupted one started:
   any expired job that still has a result gets its files deleted and its result
   cleared);
2. ended jobs (expired, failed, cancelled) past ``prune_after_seconds``: the rows
   themselves, with their events and webhook deliveries, in batches
   (:meth:`JobStore.delete_ended`);
3. uploads not used for ``upload_retention_seconds`` and needed by no queued or running
   job: row and blob (:meth:`UploadService.sweep_expired`);
4. direct (presigned) uploads nobody listed or completed for ``upload_staging_seconds``:
   their parts in the store and their rows (:meth:`DirectUploadService.sweep_abandoned`);
5. the staged bytes of resumable uploads abandoned on this host.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import UTC, datetime, timedelta

from reelscribe.backends.db.enums import JobStatus
from reelscribe.service.direct_uploads import DirectUploadService
from reelscribe.service.runtime import Runtime
from reelscribe.service.uploads import UploadService

log = logging.getLogger("reelscribe.retention")


def results_prefix(job_id: str) -> str:
    return f"results/{job_id}/"


async def sweep(runtime: Runtime, *, limit: int = 500) -> int:
    """Expires due jobs and deletes their files; returns how many jobs were cleaned."""
    await runtime.jobs.expire_done()
    ids = await runtime.jobs.expired_with_results(limit)
    for job_id in ids:
        await runtime.storage.delete_prefix(results_prefix(job_id))
        await runtime.jobs.drop_result(job_id)
    return len(ids)


#: Jobs the pruner deletes once they ended long enough ago (done ones expire first).
ENDED = (JobStatus.EXPIRED, JobStatus.FAILED, JobStatus.CANCELLED)


async def prune(
    runtime: Runtime, *, older_than: float | None = None, batch: int = 1000, max_batches: int = 100
) -> int:
    """Deletes ended jobs whose end is more than ``older_than`` seconds
    (``prune_after_seconds``) ago, with their events, ``batch`` jobs per transaction and
    at most ``max_batches`` batches per call (the next sweep goes on); returns how many."""
    age = runtime.settings.prune_after_seconds if older_than is None else older_than
    before = datetime.now(UTC) - timedelta(seconds=age)
    total = 0
    for _ in range(max_batches):
        count = await runtime.jobs.delete_ended(ENDED, before, limit=batch)
        total += count
        if count < batch:
            break
        await asyncio.sleep(0)  # let the API in between batches
    return total


async def run(runtime: Runtime, stop: asyncio.Event, interval: float = 60.0) -> None:
    uploads = UploadService(runtime)
    direct = DirectUploadService(runtime, uploads)
    while not stop.is_set():
        try:
            cleaned = await sweep(runtime)
            if cleaned:
                log.info("retention: removed the results of %d expired jobs", cleaned)
            pruned = await prune(runtime)
            if pruned:
                log.info("retention: deleted %d ended jobs and their events", pruned)
            gone = await uploads.sweep_expired()
            if gone:
                log.info("retention: deleted %d unused uploads", gone)
            aborted = await direct.sweep_abandoned()
            if aborted:
                log.info("retention: aborted %d abandoned direct uploads", aborted)
            staged = await uploads.sweep_staging()
            if staged:
                log.info("retention: removed %d abandoned resumable uploads' bytes", staged)
        except Exception:  # a failed sweep is retried at the next interval
            log.exception("retention sweep failed")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=interval)
