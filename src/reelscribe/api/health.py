"""``/healthz`` (the process answers), ``/readyz`` (its database, queue and storage
answer too) and ``/metrics`` (Prometheus text; needs an admin key, which Prometheus
sends with ``authorization: {credentials: …}``)."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

import anyio
from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse
from sqlalchemy import text

from reelscribe.api import metrics
from reelscribe.api.deps import AdminKey, RuntimeDep
from reelscribe.api.errors import error_responses
from reelscribe.api.schemas import Check, Health, Readiness
from reelscribe.service.runtime import Runtime

router = APIRouter(tags=["health"])
CHECK_TIMEOUT = 3.0


@router.get("/healthz", summary="Liveness")
async def healthz() -> Health:
    return Health(status="ok")


async def _database(runtime: Runtime) -> None:
    async with runtime.engine.connect() as conn:
        await conn.execute(text("SELECT 1"))


async def _queue(runtime: Runtime) -> None:
    redis = getattr(runtime.queue, "redis", None)
    if redis is not None:  # RedisStreamQueue; a DatabaseQueue is the database
        await redis.ping()
    else:
        await _database(runtime)


async def _storage(runtime: Runtime) -> None:
    await runtime.storage.exists("readyz/probe")  # a lookup: reaches the bucket or folder


async def _check(probe: Callable[[Runtime], Awaitable[None]], runtime: Runtime) -> Check:
    started = time.perf_counter()
    try:
        with anyio.fail_after(CHECK_TIMEOUT):
            await probe(runtime)
    except Exception as exc:  # any failure means "not ready"; the reason is reported
        return Check(ok=False, seconds=time.perf_counter() - started, error=type(exc).__name__)
    return Check(ok=True, seconds=round(time.perf_counter() - started, 4))


@router.get(
    "/readyz",
    summary="Readiness: database, queue and storage reachable",
    response_model=Readiness,
    responses={503: {"model": Readiness, "description": "Something is unreachable"}},
)
async def readyz(runtime: RuntimeDep) -> Response:
    checks = {
        name: await _check(probe, runtime)
        for name, probe in (("database", _database), ("queue", _queue), ("storage", _storage))
    }
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
