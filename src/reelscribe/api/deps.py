"""Typed dependencies: the runtime, the services and the calling key with its scope.

Routes declare what they need as ``Annotated`` aliases (``jobs: JobsDep``,
``key: SubmitKey``); authentication, the per-key rate limit and the scope check run
before the route body, in that order.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated, cast

from fastapi import Depends, Request
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from reelscribe.errors import ForbiddenError
from reelscribe.service.auth import ApiKey, KeyService, Scope
from reelscribe.service.direct_uploads import DirectUploadService
from reelscribe.service.gateway import WorkerGateway
from reelscribe.service.jobs import JobService
from reelscribe.service.runtime import Runtime
from reelscribe.service.uploads import UploadService


@dataclass(frozen=True, slots=True)
class Services:
    """Everything the routes use, built once per app from the runtime."""

    runtime: Runtime
    keys: KeyService
    uploads: UploadService
    jobs: JobService
    direct_uploads: DirectUploadService
    gateway: WorkerGateway

    @classmethod
    def build(cls, runtime: Runtime) -> Services:
        keys = KeyService(runtime.engine, runtime.settings)
        uploads = UploadService(runtime)
        jobs = JobService(runtime, keys, uploads)
        return cls(runtime, keys, uploads, jobs, DirectUploadService(runtime, uploads),
                   WorkerGateway(runtime))  # fmt: skip


# The dependencies are coroutines although they do not wait: FastAPI runs a plain
# function dependency in a worker thread, a round trip that costs more than the lookup.


def get_services(request: Request) -> Services:
    return cast(Services, request.app.state.services)


async def get_runtime(request: Request) -> Runtime:
    return get_services(request).runtime


async def get_jobs(request: Request) -> JobService:
    return get_services(request).jobs


async def get_uploads(request: Request) -> UploadService:
    return get_services(request).uploads


async def get_direct_uploads(request: Request) -> DirectUploadService:
    return get_services(request).direct_uploads


async def get_keys(request: Request) -> KeyService:
    return get_services(request).keys


async def get_gateway(request: Request) -> WorkerGateway:
    return get_services(request).gateway


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]
JobsDep = Annotated[JobService, Depends(get_jobs)]
UploadsDep = Annotated[UploadService, Depends(get_uploads)]
KeysDep = Annotated[KeyService, Depends(get_keys)]
DirectUploadsDep = Annotated[DirectUploadService, Depends(get_direct_uploads)]
GatewayDep = Annotated[WorkerGateway, Depends(get_gateway)]

# auto_error=False: a missing key is answered by KeyService (401 in our error shape,
# or anonymous access where allowed), not by FastAPI's own 403.
_bearer = HTTPBearer(auto_error=False, description="Authorization: Bearer <API key>")
_api_key = APIKeyHeader(name="X-API-Key", auto_error=False, description="The API key")


async def current_key(
    request: Request,
    keys: KeysDep,
    bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    header: Annotated[str | None, Depends(_api_key)],
) -> ApiKey:
    key = await keys.authenticate(bearer.credentials if bearer is not None else header)
    request.state.key_id = key.id  # for the access log: the key's id, never its secret
    keys.check_rate(key)
    return key


def require(scope: Scope) -> Callable[[ApiKey], Awaitable[ApiKey]]:
    async def check(key: Annotated[ApiKey, Depends(current_key)]) -> ApiKey:
        if not key.allows(scope):
            raise ForbiddenError(f"this API key lacks the {scope!r} scope")
        return key

    return check


async def worker_key(
    request: Request,
    keys: KeysDep,
    bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    header: Annotated[str | None, Depends(_api_key)],
) -> ApiKey:
    """The ``worker`` scope, without the request rate limit: a running job heartbeats
    and reports twice a second, and a worker key can do nothing else."""
    key = await keys.authenticate(bearer.credentials if bearer is not None else header)
    request.state.key_id = key.id
    if not key.allows("worker"):
        raise ForbiddenError("this API key lacks the 'worker' scope")
    return key


ReadKey = Annotated[ApiKey, Depends(require("read"))]
SubmitKey = Annotated[ApiKey, Depends(require("submit"))]
AdminKey = Annotated[ApiKey, Depends(require("admin"))]
WorkerKey = Annotated[ApiKey, Depends(worker_key)]
