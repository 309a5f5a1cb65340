"""Estimates of a job's time and cost, before it runs (``POST /api/estimates``, and at
submission, stored with the job).

The source's duration is probed without downloading it (an upload's stored file, a
URL's headers by HTTP ranges or yt-dlp's metadata: :mod:`reelscribe.pipeline.remote_probe`);
the steps are those the job's plan would run (:func:`reelscribe.service.spec.to_plan`,
plus the worker's upload); their speeds are learnt from the step timings of the
deployment's recent finished jobs (:mod:`reelscribe.pipeline.estimate`).
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any

import anyio
import anyio.from_thread

from reelscribe.asr.catalog import check_job_model
from reelscribe.backends.db import AsyncEngine
from reelscribe.backends.db.estimates import recent_results, results_at, set_estimate
from reelscribe.backends.faults import describe
from reelscribe.backends.storage import ByteRange
from reelscribe.config import Settings
from reelscribe.errors import InvalidInputError, NetworkError
from reelscribe.pipeline.estimate import (
    Estimate,
    Prices,
    SpeedTable,
    engine_of_route,
    estimate_run,
    samples_of,
)
from reelscribe.pipeline.fetch import FetchOptions
from reelscribe.pipeline.remote_probe import RangedFile, RemoteMedia, probe_url, ranged_duration
from reelscribe.service.auth import ApiKey
from reelscribe.service.runtime import Runtime
from reelscribe.service.spec import JobSpec, to_plan
from reelscribe.service.uploads import COMPLETE, UploadService
from reelscribe.sources import as_source

log = logging.getLogger("reelscribe.estimates")

#: The worker's own step after the pipeline (reelscribe.worker.UPLOAD_STEP).
UPLOAD_STEP = "upload"


def device_of(setting: str) -> str:
    """The device this deployment's ASR runs on ("cpu" or "cuda")."""
    from reelscribe.asr.engine import pick_device

    return pick_device(setting)


async def learn_speeds(engine: AsyncEngine, history: int) -> SpeedTable:
    """Step speeds learnt from the step timings of the ``history`` latest done jobs."""
    results = await recent_results(engine, history)
    return SpeedTable.learn(s for r in results for s in samples_of(r))


async def deployment_speeds(settings: Settings) -> tuple[SpeedTable, str | None]:
    """The speeds the deployment whose database ``settings`` name has measured (for
    the CLI), and why there are none when there are none."""
    results, note = await results_at(settings.database_url, settings.estimate_history)
    return SpeedTable.learn(s for r in results for s in samples_of(r)), note


class EstimateService:
    def __init__(self, runtime: Runtime, uploads: UploadService) -> None:
        self.runtime = runtime
        self.settings = runtime.settings
        self.uploads = uploads
        self.prices = Prices.from_settings(runtime.settings)
        self._pending: set[asyncio.Task[dict[str, Any] | None]] = set()

    async def speeds(self) -> SpeedTable:
        """Step speeds learnt from the latest finished jobs' step timings."""
        return await learn_speeds(self.runtime.engine, self.settings.estimate_history)

    async def estimate(
        self, spec: JobSpec, caller: ApiKey, *, speeds: SpeedTable | None = None
    ) -> Estimate:
        """The estimate of the job ``spec`` describes; raises what submitting it would
        (unknown upload, blocked URL, a model not allowed, a range past the media)."""
        if spec.options.model is not None:
            check_job_model(self.settings, spec.options.model)
        media, source = await self._probe(spec, caller)
        plan = to_plan(spec, as_source(source), self.settings)
        return estimate_run(
            [*(s.name for s in plan.stages), UPLOAD_STEP],
            media.duration,
            spec.time_range(),
            max_seconds=min(self.settings.max_duration, self.settings.max_clip_seconds),
            speeds=speeds or await self.speeds(),
            prices=self.prices,
            model=spec.options.model or self.settings.model,
            device=device_of(self.settings.device),
            engine=engine_of_route(plan.request.transcribe.route),
            probe=media.method,
        )

    async def record(self, job_id: str, spec: JobSpec, caller: ApiKey) -> dict[str, Any] | None:
        """Estimates a job just submitted and stores the estimate with it. Never fails
        the submission: a source whose duration cannot be learnt gets none.

        An upload is probed where it lies, at once. A URL is probed in the background
        (the estimate is stored a moment later): a submission must not wait for a
        third-party server. The speeds are read first either way, so a job that ends
        before its estimate is made is not counted in it."""
        speeds = await self.speeds()
        if spec.source.url is None:
            return await self._record(job_id, spec, caller, speeds)
        task = asyncio.create_task(self._record(job_id, spec, caller, speeds))
        self._pending.add(task)  # held: the loop keeps only weak references to tasks
        task.add_done_callback(self._pending.discard)
        return None

    async def _record(
        self, job_id: str, spec: JobSpec, caller: ApiKey, speeds: SpeedTable
    ) -> dict[str, Any] | None:
        try:
            estimate = (await self.estimate(spec, caller, speeds=speeds)).to_dict()
            await set_estimate(self.runtime.engine, job_id, estimate)
        except Exception as exc:  # an estimate is a courtesy: never the job's failure
            log.info("job %s: no estimate: %s", job_id, describe(exc))
            return None
        return estimate

    # --- probing ------------------------------------------------------------------------

    async def _probe(self, spec: JobSpec, caller: ApiKey) -> tuple[RemoteMedia, str]:
        """The source's duration and the source string the plan is built with."""
        timeout = self.settings.estimate_probe_timeout
        limit = self.settings.estimate_probe_max_bytes
        if spec.source.url is not None:
            url = spec.source.url
            options = FetchOptions.from_settings(self.settings)
            try:
                with anyio.fail_after(timeout):
                    media = await anyio.to_thread.run_sync(
                        lambda: probe_url(url, options, max_bytes=limit, deadline=timeout),
                        abandon_on_cancel=True,
                    )
            except TimeoutError as exc:
                raise NetworkError(f"{url} did not tell its duration within {timeout:g} s") from exc
            return media, url
        assert spec.source.upload_id is not None  # JobSpec requires one of the two
        upload = await self.uploads.get(spec.source.upload_id, caller)
        if upload.state != COMPLETE or upload.storage_key is None:
            raise InvalidInputError(
                f"upload {upload.id} is not complete ({upload.received} of {upload.size} bytes)",
                code="upload_incomplete",
            )
        key = upload.storage_key
        local = self.runtime.storage.local_path(key)
        with anyio.fail_after(timeout):
            if local is not None:
                duration = await anyio.to_thread.run_sync(_file_duration, local)
                return RemoteMedia(duration, "upload", upload.filename, upload.size), str(local)
            size = (await self.runtime.storage.stat(key)).size
            media = await anyio.to_thread.run_sync(
                self._storage_duration, key, size, upload.filename, limit, abandon_on_cancel=True
            )
        return media, upload.filename

    def _storage_duration(self, key: str, size: int, name: str, limit: int) -> RemoteMedia:
        """Runs in a worker thread: ranged reads of the stored upload (S3, say)."""

        async def read(start: int, end: int) -> bytes:
            data = bytearray()
            async for chunk in self.runtime.storage.get_stream(key, ByteRange(start, end)):
                data += chunk
            return bytes(data)

        def read_range(start: int, end: int) -> bytes:
            return anyio.from_thread.run(read, start, end)

        file = RangedFile(size, read_range, max_bytes=limit)
        return RemoteMedia(ranged_duration(file, name), "storage", name, size, file.bytes_read)


def _file_duration(path: Path) -> float:
    from reelscribe.pipeline.probe import probe

    return probe(path).duration
