"""The HTTP API: ``create_app(runtime)`` over a :class:`Runtime` the caller opened.

The app holds no resources of its own: the caller (``reelscribe serve``, a test)
enters the runtime, builds the app, runs a server, and closes the runtime after.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from reelscribe import __version__
from reelscribe.api import (
    blobs,
    errors,
    estimates,
    events,
    health,
    jobs,
    keys,
    limits,
    models,
    openapi,
    ui,
    uploads,
    v1,
    worker,
)
from reelscribe.api.accesslog import AccessLog
from reelscribe.api.deps import Services
from reelscribe.service.runtime import Runtime


def create_app(runtime: Runtime) -> FastAPI:
    services = Services.build(runtime)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        admin = runtime.settings.admin_api_key
        if admin is not None:
            await services.keys.ensure(admin.get_secret_value())
        yield

    app = FastAPI(
        title="reelscribe",
        version=__version__,
        summary="Fetch, clip, transcribe and subtitle media, as a service.",
        lifespan=lifespan,
    )
    app.state.services = services
    for module in (jobs, estimates, events, uploads, keys, blobs, health, ui, models, v1, worker):
        app.include_router(module.router)
    errors.install(app)
    v1.errors.install(app)  # OpenAI's error shape on /v1, over the handlers above
    openapi.install(app)
    limits.install(app, max_json_bytes=runtime.settings.max_json_bytes)
    app.add_middleware(AccessLog)
    return app
