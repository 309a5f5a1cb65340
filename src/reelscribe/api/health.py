"""``/healthz`` (the process answers), ``/readyz`` (its database, queue and storage
answer too, and the workers take jobs) and ``/metrics`` (Prometheus text; needs an
admin key, which Prometheus sends with ``authorization: {credentials: …}``).

The ``workers`` check reads the workers' heartbeat rows (:mod:`reelscribe.backends.db.workers`):
a worker is healthy when it heartbeated and asked the queue for a job (successfully)
within ``worker_stale_seconds``, or is busy in every slot. The check fails when jobs
have been due for longer than that and no worker is healthy: workers that are stuck,
dead or absent while work waits. An idle service with no worker is still ready.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any

import anyio
from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse

from reelscribe.api import metrics
from reelscribe.api.deps import AdminKey, RuntimeDep
from reelscribe.api.errors import error_responses
from reelscribe.api.schemas import Check, Health, Readiness
from reelscribe.backends.db import stats, workers
from reelscribe.service.runtime import Runtime

router = APIRouter(tags=["health"])
CHECK_TIMEOUT = 3.0


@router.get("/healthz", summary="Liveness")
async def healthz() -> Health:
    return Health(status="ok")


async def _database(runtime: Runtime) -> None:
    await stats.ping(runtime.engine)


async def _queue(runtime: Runtime) -> None:
    redis = getattr(runtime.queue, "redis", None)
    if redis is not None:  # RedisStreamQueue; a DatabaseQueue is the database
        await redis.ping()
    else:
        await _database(runtime)


async def _storage(runtime: Runtime) -> None:
    await runtime.storage.exists("readyz/probe")  # a lookup: reaches the bucket or folder


class _Unready(Exception):
    def __init__(self, reason: str, details: dict[str, Any]) -> None:
        super().__init__(reason)
        self.details = details


async def _workers(runtime: Runtime) -> dict[str, Any]:
    stale = runtime.settings.worker_stale_seconds
    live = await workers.live_workers(runtime.engine, within=stale)
    healthy = [w for w in live if w.healthy(stale)]
    waiting = await stats.overdue(runtime.engine, stale)
    details: dict[str, Any] = {
        "live": len(live),
        "healthy": len(healthy),
        "jobs_waiting_too_long": waiting,
        "workers": [
            {"id": w.id, "healthy": w.healthy(stale), "busy": w.busy, "slots": w.slots,
             "seen_age": round(w.seen_age, 3),
             "claim_age": None if w.claim_age is None else round(w.claim_age, 3),
             "claim_failing": w.claim_failing}
            for w in live
        ],
    }  # fmt: skip
    if waiting and not healthy:
        raise _Unready(f"{waiting} jobs due for over {stale:g} s and no healthy worker", details)
    return details


async def _check(
    probe: Callable[[Runtime], Awaitable[dict[str, Any] | None]], runtime: Runtime
) -> Check:
    started = time.perf_counter()
    try:
        with anyio.fail_after(CHECK_TIMEOUT):
            details = await probe(runtime)
    except _Unready as exc:
        return Check(ok=False, seconds=round(time.perf_counter() - started, 4),
                     error=str(exc), details=exc.details)  # fmt: skip
    except Exception as exc:  # any failure means "not ready"; the reason is reported
        return Check(ok=False, seconds=time.perf_counter() - started, error=type(exc).__name__)
    return Check(ok=True, seconds=round(time.perf_counter() - started, 4), details=details)


@router.get(
    "/readyz",
    summary="Readiness: database, queue and storage reachable; workers taking jobs",
    response_model=Readiness,
    responses={503: {"model": Readiness, "description": "Something is unreachable"}},
)
async def readyz(runtime: RuntimeDep) -> Response:
    checks = {
        name: await _check(probe, runtime)
        for name, probe in (
            ("database", _database), ("queue", _queue), ("storage", _storage),
            ("workers", _workers),
        )
    }  # fmt: skip
    ready = all(check.ok for check in checks.values())
    body = Readiness(status="ready" if ready else "unready", checks=checks)
    return JSONResponse(body.model_dump(mode="json"), status_code=200 if ready else 503)


@router.get(
    "/metrics",
    summary="Prometheus metrics",
    response_class=Response,
    responses={
        200: {"content": {metrics.CONTENT_TYPE: {"schema": {"type": "string"}}}},
        **error_responses(401, 403, 429),
    },
)
async def prometheus(runtime: RuntimeDep, admin: AdminKey) -> Response:
    families = await metrics.collect(runtime)
    return Response(metrics.render(families), media_type=metrics.CONTENT_TYPE)
