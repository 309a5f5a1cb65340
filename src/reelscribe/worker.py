"""Workers: claim jobs, run the pipeline, store the results.

A worker process loads its heavy resources (the Whisper model) once, then runs up to
``worker_concurrency`` jobs at a time. Each job runs in a thread (the stages are
blocking, CPU-bound code) while the event loop heartbeats its lease every
``heartbeat_seconds`` and writes its progress and steps, fenced by the lease token.
Cancellation, a lost lease and shutdown reach the pipeline thread through its
progress callback, which raises :class:`JobAborted` at the next report (downloads
report each read, ASR each segment), and through ffmpeg's abort check, which kills a
running ffmpeg within a fraction of a second (see :func:`reelscribe.media.ffmpeg.abort_check`).

Everything the worker asks of the service goes through a :class:`~reelscribe.hub.Hub`:
the local one (this process holds the queue, database and storage) or the remote one
(``reelscribe worker --remote``: only the API's URL and a worker key). The code here,
the pipeline's, is the same for both.

No outage of the database, queue, storage (or, remotely, the API) ends a worker or
one of its slots: every call is retried with capped exponential backoff and jitter
(see :mod:`reelscribe.backends.faults`). Each worker writes a heartbeat row (the
``workers`` table) that ``/readyz`` and ``/metrics`` read, and sweeps the scratch
folders of dead workers (:mod:`reelscribe.service.scratch`).

Results are stored under ``results/<job id>/<sha256[:16]>/<file name>``
(:func:`reelscribe.hub.result_key`): the key is content-addressed within the job, so an
attempt that produces what a crashed attempt already stored reuses the stored object,
and deleting a job deletes one prefix.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import socket
import threading
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from reelscribe.asr.faster_whisper import EngineOptions, load_model
from reelscribe.asr.routing import Engines
from reelscribe.backends.db import workers
from reelscribe.backends.db.enums import EventKind
from reelscribe.backends.faults import Retrier, describe, is_transient, sleep_unless
from reelscribe.backends.queue import Claim
from reelscribe.config import Settings
from reelscribe.errors import (
    ContentBlockedError,
    InvalidInputError,
    JobAborted,
    LeaseLost,
    ProcessingError,
    ReelscribeError,
)
from reelscribe.formats import render
from reelscribe.hub import Hub
from reelscribe.hub.local import LocalHub, store_output
from reelscribe.media.ffmpeg import abort_check
from reelscribe.pipeline.plan import PlannedStage
from reelscribe.pipeline.runner import PipelineResult, StageLimits, run
from reelscribe.progress import Progress
from reelscribe.service import scratch
from reelscribe.service.runtime import Runtime
from reelscribe.service.spec import JobSpec, to_plan
from reelscribe.sources import MediaSource, UploadSource, UrlSource

__all__ = ["CANCEL_GRACE", "JobAborted", "Worker", "run_worker", "store_output"]

log = logging.getLogger("reelscribe.worker")

#: The worker's own step after the pipeline's: storing the outputs.
UPLOAD_STEP = ("upload", 0.5)


#: How long a cancelled pipeline may take to stop before the job is marked cancelled
#: anyway (the thread is still waited for before its scratch folder is removed).
CANCEL_GRACE = 0.5


@dataclass
class _Live:
    """What the pipeline thread reports and the event loop writes, under a lock."""

    #: Planned steps and their weights, in order (JobPlan.stages plus the upload).
    weights: dict[str, float]
    lock: threading.Lock = field(default_factory=threading.Lock)
    abort_reason: str | None = None
    stage: str | None = None
    stage_started: float = 0.0
    fraction: float = 0.0
    eta: float | None = None
    message: str = ""
    events: list[tuple[EventKind, dict[str, Any]]] = field(default_factory=list)

    def __call__(self, event: Progress) -> None:  # the pipeline's progress callback
        with self.lock:
            if self.abort_reason is not None:
                raise JobAborted(self.abort_reason)
            if event.stage != self.stage:
                self._switch(event.stage)
            self.fraction = event.fraction if event.fraction is not None else self.fraction
            self.eta, self.message = event.eta, event.message or self.message

    def _switch(self, stage: str | None) -> None:
        now = time.monotonic()
        if self.stage is not None:
            self.events.append((EventKind.STEP_FINISH, {
                "step": self.stage, "duration": round(now - self.stage_started, 3),
            }))  # fmt: skip
        if stage is not None:
            self.events.append((EventKind.STEP_START, {"step": stage}))
            self.weights.setdefault(stage, 0.5)  # unplanned: counted from here on
        self.stage, self.stage_started, self.fraction, self.eta = stage, now, 0.0, None

    def plan(self, stages: Sequence[PlannedStage]) -> None:
        with self.lock:
            self.weights = {s.name: s.weight for s in stages} | self.weights

    def switch(self, stage: str | None) -> None:
        with self.lock:
            self._switch(stage)

    def warnings(self, result: PipelineResult) -> None:
        """Nothing lost silently (pipeline/coverage.py): the transcript's warnings as one
        ``progress`` event (the kinds are fixed by a CHECK constraint; the payload says
        what it is, as the speakers rename does)."""
        transcript = result.transcript
        if transcript is None or not transcript.warnings:
            return
        payload = {"warnings": [asdict(w) for w in transcript.warnings],
                   "source_offset": transcript.source_offset}  # fmt: skip
        with self.lock:
            self.events.append((EventKind.PROGRESS, payload))

    def abort(self, reason: str) -> None:
        with self.lock:
            self.abort_reason = self.abort_reason or reason

    def snapshot(self) -> tuple[float, str | None, str, list[tuple[EventKind, dict[str, Any]]]]:
        with self.lock:
            events, self.events = self.events, []
            total = sum(self.weights.values()) or 1.0
            done = 0.0
            for name, weight in self.weights.items():
                if name == self.stage:
                    done += weight * self.fraction
                    break
                done += weight
            message = self.message
            if self.eta is not None:
                message = f"{message} (eta {self.eta:.0f}s)".strip()
            return 100.0 * done / total, self.stage, message, events


def _note_engine(live: _Live, result: PipelineResult) -> None:
    """A progress event saying which engine made the transcript (and which one failed
    first, after a fallback)."""
    engine = result.transcript.made_by if result.transcript is not None else None
    if engine is not None:
        with live.lock:
            live.events.append((EventKind.PROGRESS, {
                "step": "transcribe", "engine": engine.name, "model": engine.model,
                "fallback_from": engine.fallback_from,
            }))  # fmt: skip


class Worker:
    """Runs jobs from ``hub`` (a :class:`Runtime` means a :class:`LocalHub` over it);
    ``settings`` (default: the runtime's) are this process's: model, concurrency,
    lease and heartbeat intervals."""

    def __init__(
        self,
        hub: Hub | Runtime,
        settings: Settings | None = None,
        *,
        worker_id: str | None = None,
    ) -> None:
        if isinstance(hub, Runtime):
            settings = settings or hub.settings
            hub = LocalHub(hub)
        if settings is None:
            raise TypeError("a worker over a remote hub needs its settings")
        self.hub: Hub = hub
        self.settings = settings
        self.worker_id = worker_id or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self.limits = StageLimits.of(
            self.settings.asr_concurrency, self.settings.encode_concurrency
        )
        #: The ASR engines, made once for every job this worker runs.
        self.engines = Engines.from_settings(self.settings)
        self.stop = asyncio.Event()
        self.jobs_done = 0
        #: For the heartbeat row: jobs in hand, when a slot last asked for a job
        #: (monotonic) and whether that failed.
        self.busy = 0
        self.last_claim: float | None = None
        self.claim_failing = False

    async def run(self, *, burst: bool = False) -> None:
        """Runs until :attr:`stop` is set (or, in burst mode, until no job is due).

        No failure of the database, queue or storage ends a slot: a failed claim is
        retried with capped exponential backoff and jitter, logged once per outage."""
        beat = asyncio.ensure_future(self._beat())  # not healthy until it claims
        try:
            await asyncio.to_thread(self._warm_up)
            await asyncio.to_thread(self._sweep)
            slots = [self._slot(burst) for _ in range(self.settings.worker_concurrency)]
            await asyncio.gather(*slots)
        finally:
            beat.cancel()
            with contextlib.suppress(BaseException):
                await beat
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.hub.forget(self.worker_id), 2.0)
            self.engines.close()  # reopened if the worker runs again

    def _warm_up(self) -> None:
        # The model is loaded once per process; a broken model fails jobs, not the worker.
        with contextlib.suppress(ReelscribeError):
            load_model(EngineOptions.from_settings(self.settings))

    def _sweep(self) -> None:
        scratch.sweep(max_age=self.settings.scratch_max_age_seconds)

    async def _beat(self) -> None:
        """Publishes this worker's heartbeat row (for /readyz and /metrics) and sweeps
        orphaned scratch folders now and then; survives any outage."""
        retrier = Retrier(f"worker {self.worker_id}: heartbeat row", log)
        last_sweep = time.monotonic()
        while True:
            age = None if self.last_claim is None else time.monotonic() - self.last_claim
            beat = workers.WorkerBeat(
                id=self.worker_id, host=socket.gethostname(), pid=os.getpid(),
                slots=self.settings.worker_concurrency, busy=self.busy, claim_age=age,
                claim_failing=self.claim_failing,
            )  # fmt: skip
            try:
                await self.hub.publish(beat)
            except Exception as exc:
                await asyncio.sleep(min(retrier.failed(exc), self.settings.worker_beat_seconds))
                continue
            retrier.succeeded()
            if time.monotonic() - last_sweep >= self.settings.scratch_sweep_seconds:
                last_sweep = time.monotonic()
                await asyncio.to_thread(self._sweep)
            await asyncio.sleep(self.settings.worker_beat_seconds)

    async def _slot(self, burst: bool) -> None:
        retrier = Retrier(f"worker {self.worker_id}: claim", log,
                          cap=self.settings.backend_retry_max_seconds)  # fmt: skip
        while not self.stop.is_set():
            self.last_claim = time.monotonic()
            try:
                claim = await self.hub.claim(self.worker_id, self.settings.lease_seconds)
                if claim is None:
                    retrier.succeeded()
                    self.claim_failing = False
                    if burst:
                        return
                    await self._wait()
                    continue
            except Exception as exc:  # the database or queue is down: back off, never quit
                self.claim_failing = True
                await sleep_unless(self.stop, retrier.failed(exc))
                continue
            retrier.succeeded()
            self.claim_failing = False
            self.busy += 1
            try:
                await self.process(claim)
            except Exception as exc:  # the database went away mid-job, say: keep the slot
                # The lease runs out and the job is claimed again; pause before the
                # next claim so a broken backend is not hammered.
                log.error("job %s: could not finish the attempt: %s", claim.job_id,
                          describe(exc), exc_info=not is_transient(exc))  # fmt: skip
                await sleep_unless(self.stop, retrier.failed(exc))
                continue
            finally:
                self.busy -= 1
            self.jobs_done += 1

    async def _wait(self) -> None:
        waiter = asyncio.ensure_future(self.hub.wait(5.0))
        stopper = asyncio.ensure_future(self.stop.wait())
        try:
            await asyncio.wait({waiter, stopper}, timeout=5.0, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (waiter, stopper):
                task.cancel()
        if waiter.done() and not waiter.cancelled() and waiter.exception() is not None:
            # Waiting failed (the queue is down): the next claim finds out and backs off.
            await sleep_unless(self.stop, 0.2)

    async def process(self, claim: Claim) -> None:
        hub = self.hub
        log.info("job %s: attempt %d on %s", claim.job_id, claim.attempt, self.worker_id)
        try:
            spec = JobSpec.model_validate(claim.spec)
        except ValueError as exc:
            invalid = InvalidInputError(f"invalid job spec: {exc}")
            await self._settle(claim, "fail", lambda: hub.fail(claim, invalid, retryable=False))
            return
        live = _Live(weights={})
        # Removed only after the pipeline thread has ended (_run_pipeline waits for it).
        tmp = scratch.make()
        try:
            outcome = await self._run_pipeline(claim, spec, live, tmp)
            if outcome is None:
                return  # lease lost: another worker owns the job; write nothing
            if isinstance(outcome, PipelineResult):
                _note_engine(live, outcome)
                live.warnings(outcome)
                live.switch("upload")
                try:
                    result = await self._store(claim, outcome)
                except Exception as exc:  # storage unreachable, disk full...
                    await self._end(claim, exc)
                    return
                live.switch(None)
                await self._settle(claim, "report", lambda: self._report(claim, live))
                await self._settle(claim, "complete", lambda: hub.complete(claim, result))
                return
            if isinstance(outcome, ContentBlockedError):
                await self._blocked(claim, outcome, live)
                return
            await self._end(claim, outcome)
        except LeaseLost:
            log.warning("job %s: lease lost; leaving it to its new worker", claim.job_id)
        finally:
            await asyncio.to_thread(shutil.rmtree, tmp, True)

    async def _settle(self, claim: Claim, what: str, call: Callable[[], Awaitable[Any]]) -> Any:
        """Runs a write about the job, retrying transient faults (with backoff) for up
        to a lease: a completed job must not be run again because the database was
        restarting at the moment it finished. LeaseLost and other errors propagate."""
        retrier = Retrier(f"job {claim.job_id}: {what}", log,
                          cap=self.settings.backend_retry_max_seconds)  # fmt: skip
        deadline = time.monotonic() + max(self.settings.lease_seconds, 5.0)
        while True:
            try:
                result = await call()
            except LeaseLost:
                raise
            except Exception as exc:
                if not is_transient(exc) or time.monotonic() >= deadline:
                    raise
                await asyncio.sleep(retrier.failed(exc))
                continue
            retrier.succeeded()
            return result

    async def _run_pipeline(
        self, claim: Claim, spec: JobSpec, live: _Live, tmp: Path
    ) -> PipelineResult | BaseException | None:
        """Runs the pipeline while heartbeating; returns its result, the exception that
        ended it, or None when the lease was lost. Returns (or raises) only after the
        pipeline thread has ended, so the caller may delete ``tmp``."""
        try:
            source = await self._settle(claim, "source", lambda: self._source(claim, spec, tmp))
            plan = to_plan(spec, source, self.settings).then(*UPLOAD_STEP)
            live.plan(plan.stages)
        except LeaseLost:
            raise
        except Exception as exc:  # a missing upload, unreachable storage: ends the attempt
            return exc

        def check() -> None:  # also polled while ffmpeg runs: a cancel kills it
            if live.abort_reason is not None:
                raise JobAborted(live.abort_reason)

        def pipeline() -> PipelineResult:
            with abort_check(check):
                return run(plan.request, tmp / "out", tmp / "work", live, self.limits,
                           engines=self.engines)  # fmt: skip

        task = asyncio.ensure_future(asyncio.to_thread(pipeline))
        try:
            ended = await self._heartbeat_until_done(claim, live, task)
            if ended == "cancelled":
                # The job is cancelled now; the thread stops at its next report (ASR:
                # the next segment) and is waited for before its folder goes.
                await self._end(claim, JobAborted("cancelled"))
                return None
        finally:
            if not task.done():  # cancelled from outside: stop the thread, then wait for it
                live.abort("shutdown")
                with contextlib.suppress(BaseException):
                    await asyncio.shield(task)
        if ended == "lost":
            with contextlib.suppress(BaseException):
                await task
            return None
        try:
            return await task
        except Exception as exc:  # every failure ends the attempt
            return exc

    async def _heartbeat_until_done(
        self, claim: Claim, live: _Live, task: asyncio.Future[PipelineResult]
    ) -> str:
        """Heartbeats every ``heartbeat_seconds`` until ``task`` ends ("done"), the
        lease is lost ("lost") or a cancel did not stop the pipeline within
        :data:`CANCEL_GRACE` ("cancelled": a stage between two progress reports). An
        unreachable database or queue is retried at each beat; once the lease has
        surely expired the job is abandoned (another worker may have it) and the
        pipeline told to stop."""
        deadline: float | None = None
        lost = False
        retrier = Retrier(f"job {claim.job_id}: heartbeat", log)
        last_ok = time.monotonic()
        while not task.done():
            await asyncio.wait({task}, timeout=self.settings.heartbeat_seconds)
            if lost:
                continue
            try:
                if await self.hub.heartbeat(claim):
                    live.abort("cancelled")
                    await asyncio.wait({task}, timeout=CANCEL_GRACE)
                    if not task.done():
                        return "cancelled"
                retrier.succeeded()
                last_ok = time.monotonic()
                await self._report(claim, live)
            except LeaseLost:
                live.abort("lease lost")
                lost = True
            except Exception as exc:
                retrier.failed(exc)
                if time.monotonic() - last_ok > claim.lease_seconds:
                    log.warning("job %s: no heartbeat for a lease; abandoning it", claim.job_id)
                    live.abort("lease lost")
                    lost = True
            if self.stop.is_set():
                deadline = deadline or time.monotonic() + self.settings.shutdown_grace_seconds
                if time.monotonic() >= deadline:
                    live.abort("shutdown")
        return "lost" if lost else "done"

    async def _blocked(self, claim: Claim, blocked: ContentBlockedError, live: _Live) -> None:
        """Ends the job ``blocked``: only the moderation report is stored and published
        (the pipeline stopped before anything else was made, and removed the clip). The
        job keeps its report until it is deleted."""
        from reelscribe.pipeline.context import analysis_summary

        outputs: dict[str, Any] = {}
        if blocked.path is not None and blocked.path.is_file():
            stored = await self.hub.store_output(claim, "moderation", blocked.path)
            outputs["moderation"] = stored
        result = {"blocked": True, "outputs": outputs,
                  "analysis": analysis_summary(None, blocked.report)}  # fmt: skip
        live.switch(None)
        await self._settle(claim, "report", lambda: self._report(claim, live))
        log.info("job %s blocked by content moderation", claim.job_id)
        # "blocked" in the result ends the job blocked (see hub.local.finish).
        await self._settle(claim, "complete", lambda: self.hub.complete(claim, result))

    async def _report(self, claim: Claim, live: _Live) -> None:
        progress, stage, message, events = live.snapshot()
        await self.hub.report(claim, progress=progress, stage=stage, message=message,
                              events=events)  # fmt: skip

    async def _end(self, claim: Claim, exc: BaseException) -> None:
        queue = self.hub
        if isinstance(exc, JobAborted):
            if exc.message == "cancelled":
                await self._settle(claim, "cancelled", lambda: queue.cancelled(claim))
            else:  # shutdown: give the job back without counting the attempt
                await self._settle(claim, "release", lambda: queue.release(claim))
            return
        if isinstance(exc, ReelscribeError):
            log.info("job %s failed: %s (%s)", claim.job_id, exc, exc.code)
            await self._settle(claim, "fail", lambda: queue.fail(claim, exc))
            return
        if is_transient(exc):  # storage or database unreachable: a retryable attempt
            log.warning("job %s: attempt failed on an outage: %s", claim.job_id, describe(exc))
        else:
            log.exception("job %s: unexpected error", claim.job_id, exc_info=exc)
        error = ProcessingError(f"internal error: {type(exc).__name__}: {exc}")
        await self._settle(claim, "fail", lambda: queue.fail(claim, error, retryable=True))

    async def _source(self, claim: Claim, spec: JobSpec, tmp: Path) -> MediaSource:
        if spec.source.url is not None:
            return UrlSource(spec.source.url)  # fetched by the pipeline, wherever it runs
        if spec.source.upload_id is None:
            raise InvalidInputError("the job names no source")
        path = await self.hub.source(claim, spec.source.upload_id, tmp / "source")
        return UploadSource(Path(path), spec.source.upload_id)

    async def _store(self, claim: Claim, result: PipelineResult) -> dict[str, Any]:
        started = time.perf_counter()
        outputs: dict[str, Any] = {}
        for name, path in result.outputs.items():
            outputs[name] = await self.hub.store_output(claim, name, path)
        summary = result.summary()
        summary["outputs"] = outputs
        if result.transcript is not None:
            # The JSON transcript is what later edits (renaming speakers) re-render every
            # text output from, so it is kept even when the job did not ask for it.
            if "json" in outputs:
                summary["transcript_key"] = outputs["json"]["key"]
            else:
                # A transcript means some output was written; its folder is the job's.
                doc = next(iter(result.outputs.values())).parent / "transcript.json"
                doc.write_text(render(result.transcript, "json"), encoding="utf-8")
                stored = await self.hub.store_output(claim, "json", doc)
                summary["transcript_key"] = stored["key"]
        # The upload is a step like the pipeline's: estimates learn its speed too.
        summary["timings"] = {**summary.get("timings", {}),
                              UPLOAD_STEP[0]: time.perf_counter() - started}  # fmt: skip
        return summary


async def run_worker(
    runtime: Runtime,
    *,
    burst: bool = False,
    worker_id: str | None = None,
    stop: asyncio.Event | None = None,
) -> Worker:
    """Runs a worker over ``runtime`` (see :class:`Worker`); returns it when it ends."""
    worker = Worker(runtime, worker_id=worker_id)
    if stop is not None:
        worker.stop = stop
    await worker.run(burst=burst)
    return worker
