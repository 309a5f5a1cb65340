"""``RemoteHub``: a worker that needs only HTTP (``reelscribe worker --remote URL``).

Every hub call is a request to the API's ``/api/worker/…`` routes with a key of the
``worker`` scope; the API runs the queue, database and storage calls on the worker's
behalf (:mod:`reelscribe.service.gateway`). The worker needs no database, Redis or
storage settings, and none of their credentials ever reach the machine it runs on.

Errors are translated at this boundary: the API unreachable, a 5xx or a 429 is a
:class:`~reelscribe.errors.NetworkError` (transient: the worker retries with its capped
backoff, as for a database outage), ``409 lease_lost`` is
:class:`~reelscribe.backends.queue.LeaseLost`, any other answer a
:class:`RemoteApiError`. The key is sent in a header and appears in no message or log.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from pathlib import Path
from types import TracebackType
from typing import Any, Self
from urllib.parse import quote

import httpx

from reelscribe import __version__
from reelscribe.backends.db.enums import Priority
from reelscribe.backends.db.workers import WorkerBeat
from reelscribe.backends.faults import describe
from reelscribe.backends.queue import Claim
from reelscribe.errors import (
    InvalidInputError,
    LeaseLost,
    NetworkError,
    ReelscribeError,
    RemoteApiError,
)
from reelscribe.files import sha256_file
from reelscribe.hub.base import StepEvent
from reelscribe.hub.local import content_type, source_name
from reelscribe.hub.wire import LEASE_HEADER, ClaimAnswer, OutputAnswer, SourceAnswer

log = logging.getLogger("reelscribe.worker")
_CHUNK = 1 << 20
#: Seconds between two claims that found no job, at the least.
MIN_CLAIM_INTERVAL = 1.0


class RemoteHub:
    """A :class:`~reelscribe.hub.base.Hub` over the API at ``base_url``.

    ``claim_wait``: how long one claim request waits on the server for a due job (a
    long poll: a new job starts within a round trip, without polling)."""

    def __init__(
        self,
        base_url: str,
        token: str,
        *,
        timeout: float = 30.0,
        claim_wait: float = 10.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.claim_wait = claim_wait
        self._token = token
        self._timeout = timeout
        self._transport = transport
        self._api: httpx.AsyncClient | None = None
        self._links: httpx.AsyncClient | None = None
        self._claim_started = float("-inf")

    async def __aenter__(self) -> Self:
        headers = {"Authorization": f"Bearer {self._token}",
                   "User-Agent": f"reelscribe-worker/{__version__}"}  # fmt: skip
        # A claim waits up to claim_wait on the server: the read timeout allows for it.
        timeout = httpx.Timeout(self._timeout, read=self._timeout + self.claim_wait)
        self._api = httpx.AsyncClient(base_url=self.base_url, headers=headers,
                                      timeout=timeout, transport=self._transport)  # fmt: skip
        # Signed links carry their own permission: no key is sent to them (a presigned
        # S3 URL would refuse an extra Authorization header, and the key stays ours).
        self._links = httpx.AsyncClient(timeout=self._timeout, transport=self._transport,
                                        follow_redirects=True)  # fmt: skip
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        for client in (self._api, self._links):
            if client is not None:
                await client.aclose()
        self._api = self._links = None

    def __repr__(self) -> str:  # never the token
        return f"RemoteHub({self.base_url!r})"

    # --- HTTP --------------------------------------------------------------------

    async def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        if self._api is None:
            raise RuntimeError("use the hub inside 'async with'")
        try:
            response = await self._api.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise NetworkError(f"cannot reach the API at {self.base_url}: {describe(exc)}") from exc
        return self._answer(response)

    def _answer(self, response: httpx.Response) -> Any:
        status = response.status_code
        if status < 400:
            return response.json() if response.content else None
        try:
            error = response.json()["error"]
            code, message = str(error["code"]), str(error["message"])
        except (ValueError, KeyError, TypeError):
            code, message = "http_error", response.text[:200]
        if code == "lease_lost":
            raise LeaseLost(message)
        if status >= 500 or status == 429:
            # The API is restarting, its database is down…: retried like an outage.
            raise NetworkError(f"the API answered {status} ({code}): {message}")
        raise RemoteApiError(status, code, message)

    # --- the hub ------------------------------------------------------------------

    async def claim(self, worker_id: str, lease_seconds: float) -> Claim | None:
        body = {"worker_id": worker_id, "lease_seconds": lease_seconds, "wait": self.claim_wait}
        self._claim_started = time.monotonic()
        job = ClaimAnswer.model_validate(
            await self._call("POST", "/api/worker/claim", json=body)
        ).job
        if job is None:
            return None
        return Claim(
            job_id=job.id, worker_id=worker_id, token=job.token, attempt=job.attempt,
            max_attempts=job.max_attempts, priority=Priority(job.priority),
            lease_seconds=job.lease_seconds, lease_expires_at=job.lease_expires_at,
            spec=job.spec, reclaimed=job.reclaimed, receipt=job.lease,
        )  # fmt: skip

    async def wait(self, timeout: float) -> None:
        # The claim itself waited on the server (a long poll): ask again at once, but
        # not more than once a second, should the API not hold claims at all.
        since = time.monotonic() - self._claim_started
        await asyncio.sleep(max(0.0, min(timeout, MIN_CLAIM_INTERVAL - since)))

    def _job(self, claim: Claim, what: str) -> str:
        return f"/api/worker/jobs/{quote(claim.job_id, safe='')}/{what}"

    @staticmethod
    def _lease(claim: Claim) -> str:
        if claim.receipt is None:
            raise LeaseLost(f"job {claim.job_id}: the claim did not come from the API")
        return claim.receipt

    async def _fenced(self, claim: Claim, what: str, **body: Any) -> Any:
        return await self._call("POST", self._job(claim, what),
                                json={"lease": self._lease(claim), **body})  # fmt: skip

    async def heartbeat(self, claim: Claim) -> bool:
        return bool((await self._fenced(claim, "heartbeat"))["cancel_requested"])

    async def report(
        self,
        claim: Claim,
        *,
        progress: float,
        stage: str | None,
        message: str,
        events: list[StepEvent],
    ) -> None:
        await self._fenced(
            claim, "progress", progress=max(0.0, min(100.0, progress)), stage=stage,
            message=message[:2000], events=[{"kind": k.value, "data": d} for k, d in events],
        )  # fmt: skip

    async def complete(self, claim: Claim, result: dict[str, Any]) -> None:
        await self._fenced(claim, "complete", result=result)

    async def fail(
        self, claim: Claim, error: ReelscribeError, *, retryable: bool | None = None
    ) -> None:
        retry = error.retryable if retryable is None else retryable
        await self._fenced(claim, "fail", code=error.code, message=error.message[:4000],
                           retryable=retry, user_fault=error.user_fault)  # fmt: skip

    async def release(self, claim: Claim) -> None:
        await self._fenced(claim, "release")

    async def cancelled(self, claim: Claim) -> None:
        await self._fenced(claim, "cancelled")

    async def source(self, claim: Claim, upload_id: str, folder: Path) -> Path:
        answer = SourceAnswer.model_validate(await self._fenced(claim, "source"))
        path = folder / source_name(answer.filename)
        path.parent.mkdir(parents=True, exist_ok=True)  # exists when this is a retry
        assert self._links is not None
        try:
            async with self._links.stream("GET", answer.url) as response:
                if response.status_code >= 500:
                    raise NetworkError(f"upload {upload_id}: storage answered "
                                       f"{response.status_code}")  # fmt: skip
                if response.status_code >= 400:
                    raise InvalidInputError(f"upload {upload_id} cannot be downloaded "
                                            f"(HTTP {response.status_code})")  # fmt: skip
                with path.open("wb") as fh:
                    async for chunk in response.aiter_bytes(_CHUNK):
                        await asyncio.to_thread(fh.write, chunk)
        except httpx.HTTPError as exc:
            raise NetworkError(f"upload {upload_id}: download failed: {describe(exc)}") from exc
        return path

    async def store_output(self, claim: Claim, name: str, path: Path) -> dict[str, Any]:
        digest = await asyncio.to_thread(sha256_file, path)
        media_type = content_type(name, path)
        size = path.stat().st_size
        offer = {"name": name, "filename": path.name, "sha256": digest, "size": size,
                 "content_type": media_type}  # fmt: skip
        answer = OutputAnswer.model_validate(await self._fenced(claim, "outputs", **offer))
        if not answer.stored and answer.upload_url is not None:
            headers = {LEASE_HEADER: self._lease(claim), "X-Filename": quote(path.name),
                       "Content-Type": media_type, "Content-Length": str(size)}  # fmt: skip
            await self._call("PUT", answer.upload_url, content=_read(path), headers=headers)
        path.unlink(missing_ok=True)  # as a local store moves it: the caller gives it up
        return {"key": answer.key, "filename": path.name, "size": size, "sha256": digest,
                "content_type": media_type}  # fmt: skip

    async def publish(self, beat: WorkerBeat) -> None:
        body = {"host": beat.host, "pid": beat.pid, "slots": beat.slots, "busy": beat.busy,
                "claim_age": beat.claim_age, "claim_failing": beat.claim_failing}  # fmt: skip
        await self._call("PUT", f"/api/worker/workers/{quote(beat.id, safe='')}", json=body)

    async def forget(self, worker_id: str) -> None:
        await self._call("DELETE", f"/api/worker/workers/{quote(worker_id, safe='')}")


async def _read(path: Path) -> AsyncIterator[bytes]:
    with path.open("rb") as fh:
        while block := await asyncio.to_thread(fh.read, _CHUNK):
            yield block
