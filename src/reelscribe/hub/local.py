"""``LocalHub``: a worker that holds the runtime itself (queue, database, storage)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from reelscribe.backends.db import workers
from reelscribe.backends.db.enums import JobStatus
from reelscribe.backends.db.events import record
from reelscribe.backends.db.uploads import UploadStore
from reelscribe.backends.db.workers import WorkerBeat
from reelscribe.backends.queue import Claim
from reelscribe.backends.storage import BlobStore
from reelscribe.errors import InvalidInputError, ReelscribeError
from reelscribe.files import sha256_file
from reelscribe.formats import FORMATS
from reelscribe.hub.base import StepEvent, result_key
from reelscribe.service.runtime import Runtime
from reelscribe.service.uploads import COMPLETE


class LocalHub:
    """A :class:`~reelscribe.hub.base.Hub` over a :class:`Runtime` this process opened.
    Every write also wakes the live views of this process (``serve``'s web UI)."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime

    async def claim(self, worker_id: str, lease_seconds: float) -> Claim | None:
        return await self.runtime.queue.claim(worker_id, lease_seconds)

    async def wait(self, timeout: float) -> None:
        await self.runtime.queue.wait(timeout)

    async def heartbeat(self, claim: Claim) -> bool:
        return await self.runtime.queue.heartbeat(claim)

    async def report(
        self,
        claim: Claim,
        *,
        progress: float,
        stage: str | None,
        message: str,
        events: list[StepEvent],
    ) -> None:
        await record(self.runtime.engine, claim, progress=progress, stage=stage,
                     message=message, events=events)  # fmt: skip
        self.runtime.changes.notify(claim.job_id)

    async def source(self, claim: Claim, upload_id: str, folder: Path) -> Path:
        upload = await UploadStore(self.runtime.engine).find(upload_id)
        if upload is None or upload.storage_key is None or upload.state != COMPLETE:
            raise InvalidInputError(f"upload {upload_id} is missing or incomplete")
        path = _fresh(folder, upload.filename)
        local = self.runtime.storage.local_path(upload.storage_key)
        if local is not None:
            # Same machine: a link (under the user's file name, which names the outputs)
            # instead of a copy of what may be gigabytes.
            path.symlink_to(local)
            return path
        with path.open("wb") as fh:
            async for chunk in self.runtime.storage.get_stream(upload.storage_key):
                fh.write(chunk)
        return path

    async def store_output(self, claim: Claim, name: str, path: Path) -> dict[str, Any]:
        return await store_output(self.runtime.storage, claim.job_id, name, path)

    async def complete(self, claim: Claim, result: dict[str, Any]) -> None:
        await finish(self.runtime, claim, result)

    async def fail(
        self, claim: Claim, error: ReelscribeError, *, retryable: bool | None = None
    ) -> None:
        await self.runtime.queue.fail(claim, error, retryable=retryable)
        self.runtime.changes.notify(claim.job_id)

    async def release(self, claim: Claim) -> None:
        await self.runtime.queue.release(claim)
        self.runtime.changes.notify(claim.job_id)

    async def cancelled(self, claim: Claim) -> None:
        await self.runtime.queue.cancelled(claim)
        self.runtime.changes.notify(claim.job_id)

    async def publish(self, beat: WorkerBeat) -> None:
        await workers.publish(self.runtime.engine, beat)

    async def forget(self, worker_id: str) -> None:
        await workers.forget(self.runtime.engine, worker_id)


async def finish(runtime: Runtime, claim: Claim, result: dict[str, Any]) -> None:
    """Completes a job: ``done`` (its results kept for the retention period), or
    ``blocked`` when content moderation stopped it (``result["blocked"]``; the report
    is kept until the job is deleted)."""
    if result.get("blocked"):
        await runtime.queue.complete(claim, result, status=JobStatus.BLOCKED)
    else:
        await runtime.queue.complete(
            claim, result, retain_seconds=runtime.settings.retention_seconds
        )
    runtime.changes.notify(claim.job_id)


def source_name(filename: str) -> str:
    """The upload's file name, safe as one path segment ("upload" when nothing is left)."""
    return Path(filename).name.lstrip(".") or "upload"


def _fresh(folder: Path, filename: str) -> Path:
    path = folder / source_name(filename)
    path.parent.mkdir(parents=True, exist_ok=True)  # exists when this is a retry
    path.unlink(missing_ok=True)
    return path


def content_type(name: str, path: Path) -> str:
    """The media type an output is stored with."""
    if name == "moderation":
        return "application/json"
    if name == "chapters":
        return "text/plain; charset=utf-8"
    if name in FORMATS:
        return FORMATS[name].media_type + ("; charset=utf-8" if name != "json" else "")
    if path.suffix == ".flac":  # the vocal stem
        return "audio/flac"
    return "audio/mp4" if path.suffix == ".m4a" else "video/mp4"


async def store_output(storage: BlobStore, job_id: str, name: str, path: Path) -> dict[str, Any]:
    """Stores one output under :func:`result_key` (moved, not copied: the caller's file
    is gone afterwards) and describes it for the result."""
    digest = await asyncio.to_thread(sha256_file, path)
    key = result_key(job_id, digest, path.name)
    media_type = content_type(name, path)
    size = path.stat().st_size
    if not await storage.exists(key):  # a repeated step reuses what is stored
        await storage.put_file(key, path, media_type, move=True, sha256=digest)
    return {"key": key, "filename": path.name, "size": size, "sha256": digest,
            "content_type": media_type}  # fmt: skip
