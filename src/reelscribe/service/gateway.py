"""The API's side of remote workers (``reelscribe worker --remote``): the queue, job
and storage calls a local worker makes itself, made here on a remote worker's behalf.

**Leases.** A claim is handed to the worker as a *lease*: the claim's fields (job,
fencing token, attempt, Redis receipt …) and the id of the key that claimed it,
signed with HMAC-SHA256 under the service's secret. The worker sends it back with each
call; a lease that does not verify, names another job or came to another key is
refused (``lease_invalid``, 403). Signing keeps the API stateless (any API process
can serve any call) and the worker from editing its lease (a longer lease, another
token). Fencing is still the database's: every write names the token, and a token
that is no longer the job's current one raises
:class:`~reelscribe.backends.queue.LeaseLost` (409) and changes nothing, so the late
writes of a worker that was killed and replaced do nothing.

**Outputs** go to the same content-addressed keys as a local worker's
(:func:`reelscribe.hub.result_key`). The worker offers each one (name, file name,
SHA-256, size); an output an earlier attempt already stored is not sent again, others
are streamed to ``PUT /api/worker/jobs/{id}/outputs/{sha256}``, hashed on the way in
and dropped if the digest differs. ``complete`` accepts only results whose keys lie
under the job's prefix and exist.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
from collections.abc import AsyncIterable
from dataclasses import replace
from datetime import datetime
from typing import Any

from reelscribe.backends.db import workers
from reelscribe.backends.db.enums import EventKind, JobStatus, Priority
from reelscribe.backends.db.schema import JobRow
from reelscribe.backends.db.uploads import UploadStore
from reelscribe.backends.queue import Claim
from reelscribe.backends.storage.base import clean_filename, validate_content_type
from reelscribe.errors import (
    InvalidInputError,
    LeaseInvalidError,
    LeaseLost,
    OutputMismatchError,
    RemoteFailure,
)
from reelscribe.hub.base import StepEvent, result_key
from reelscribe.hub.local import LocalHub
from reelscribe.service.auth import ApiKey
from reelscribe.service.runtime import Runtime
from reelscribe.service.uploads import COMPLETE

#: Worker liveness rows written here carry this prefix (``/readyz`` tells them apart).
REMOTE_PREFIX = "remote:"
_DOMAIN = b"reelscribe-lease-v1:"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class WorkerGateway:
    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        # Once a lease is checked, a remote worker's calls are a local worker's.
        self.local = LocalHub(runtime)
        self._mac_key = hashlib.sha256(_DOMAIN + runtime.secret.encode()).digest()

    # --- leases -------------------------------------------------------------------

    def sign(self, claim: Claim, key: ApiKey) -> str:
        payload = {
            "j": claim.job_id, "w": claim.worker_id, "t": claim.token, "a": claim.attempt,
            "m": claim.max_attempts, "p": claim.priority.value, "s": claim.lease_seconds,
            "e": claim.lease_expires_at.isoformat(), "r": claim.receipt, "k": key.id,
        }  # fmt: skip
        body = _b64(json.dumps(payload, separators=(",", ":")).encode())
        return f"{body}.{_b64(self._mac(body))}"

    def _mac(self, body: str) -> bytes:
        return hmac.new(self._mac_key, body.encode(), hashlib.sha256).digest()

    def lease(self, lease: str, job_id: str, key: ApiKey) -> Claim:
        """The claim inside ``lease``, after checking its signature, job and key."""
        body, _, sig = lease.partition(".")
        try:
            valid = hmac.compare_digest(_unb64(sig), self._mac(body))
            data = json.loads(_unb64(body)) if valid else None
        except ValueError:
            data = None
        if not isinstance(data, dict) or data.get("j") != job_id or data.get("k") != key.id:
            raise LeaseInvalidError(f"not a lease on job {job_id} for this key")
        return Claim(
            job_id=data["j"], worker_id=data["w"], token=int(data["t"]), attempt=int(data["a"]),
            max_attempts=int(data["m"]), priority=Priority(data["p"]),
            lease_seconds=float(data["s"]), lease_expires_at=datetime.fromisoformat(data["e"]),
            spec={}, receipt=data["r"],
        )  # fmt: skip

    async def _fence(self, claim: Claim) -> JobRow:
        """The job's row while ``claim`` is its current lease; else raises LeaseLost."""
        row = await self.runtime.jobs.leased(claim.job_id, claim.token)
        if row is None:
            raise LeaseLost(f"job {claim.job_id}: lease token {claim.token} is no longer current")
        return row

    # --- the queue, on the worker's behalf ------------------------------------------

    async def claim(
        self, worker_id: str, lease_seconds: float, wait: float, key: ApiKey
    ) -> tuple[Claim, str] | None:
        """Leases the next due job, waiting up to ``wait`` seconds for one.

        A claim whose answer never reaches the worker (it went away mid-wait) costs
        that job one lease and one attempt, as a crashed worker would."""
        queue = self.runtime.queue
        loop = asyncio.get_running_loop()
        # Capped by this API's setting: a held request is a connection the API keeps open.
        deadline = loop.time() + min(wait, self.runtime.settings.remote_claim_wait_seconds)
        while True:
            claim = await queue.claim(REMOTE_PREFIX + worker_id, lease_seconds)
            if claim is not None:
                self.runtime.changes.notify(claim.job_id)
                return claim, self.sign(claim, key)
            left = deadline - loop.time()
            if left <= 0:
                return None
            await queue.wait(left)

    async def heartbeat(self, claim: Claim) -> bool:
        return await self.local.heartbeat(claim)

    async def report(
        self,
        claim: Claim,
        *,
        progress: float,
        stage: str | None,
        message: str,
        events: list[StepEvent],
    ) -> None:
        await self.local.report(claim, progress=progress, stage=stage, message=message,
                                events=events)  # fmt: skip

    async def complete(self, claim: Claim, result: dict[str, Any]) -> None:
        await self._check_result(claim.job_id, result)
        await self.local.complete(claim, result)

    async def fail(self, claim: Claim, error: RemoteFailure) -> JobStatus:
        status = await self.runtime.queue.fail(claim, error, retryable=error.retryable)
        self.runtime.changes.notify(claim.job_id)
        return status

    async def release(self, claim: Claim) -> None:
        await self.local.release(claim)

    async def cancelled(self, claim: Claim) -> None:
        await self.local.cancelled(claim)

    # --- media in and out -------------------------------------------------------------

    async def source(self, claim: Claim) -> tuple[str, str, int | None]:
        """A signed link to the job's uploaded source, its file name and size."""
        job = await self._fence(claim)
        upload_id = (job.spec.get("source") or {}).get("upload_id")
        if not upload_id:
            raise InvalidInputError(f"job {claim.job_id} has no uploaded source")
        upload = await UploadStore(self.runtime.engine).find(upload_id)
        if upload is None or upload.storage_key is None or upload.state != COMPLETE:
            raise InvalidInputError(f"upload {upload_id} is missing or incomplete")
        ttl = self.runtime.settings.link_ttl_seconds
        url = await self.runtime.storage.signed_url(upload.storage_key, ttl)
        return url, upload.filename, upload.size

    async def offer_output(self, claim: Claim, sha256: str, filename: str) -> tuple[str, bool]:
        """The output's key, and whether it is stored already."""
        await self._fence(claim)
        key = self._output_key(claim.job_id, sha256, filename)
        return key, await self.runtime.storage.exists(key)

    async def receive_output(
        self,
        claim: Claim,
        sha256: str,
        filename: str,
        content_type: str,
        chunks: AsyncIterable[bytes],
    ) -> dict[str, Any]:
        """Stores the streamed output (only while the lease holds) and describes it."""
        await self._fence(claim)
        key = self._output_key(claim.job_id, sha256, filename)
        validate_content_type(content_type)
        storage = self.runtime.storage
        if not await storage.exists(key):
            put = await storage.put_stream(key, chunks, content_type)
            if put.sha256 != sha256:
                await storage.delete(key)
                raise OutputMismatchError(f"{filename}: its bytes hash to {put.sha256}")
        info = await storage.stat(key)
        return {"key": key, "filename": filename, "size": info.size, "sha256": sha256,
                "content_type": content_type}  # fmt: skip

    @staticmethod
    def _output_key(job_id: str, sha256: str, filename: str) -> str:
        if clean_filename(filename) != filename:
            raise InvalidInputError(f"invalid output file name {filename!r}")
        return result_key(job_id, sha256, filename)

    async def _check_result(self, job_id: str, result: dict[str, Any]) -> None:
        """A result may only name this job's stored outputs: never another job's blobs."""
        outputs = result.get("outputs", {})
        if not isinstance(outputs, dict):
            raise InvalidInputError("result.outputs must be an object")
        keys = [o.get("key") if isinstance(o, dict) else None for o in outputs.values()]
        if "transcript_key" in result:
            keys.append(result["transcript_key"])
        prefix = f"results/{job_id}/"
        for key in keys:
            if not isinstance(key, str) or not key.startswith(prefix):
                raise InvalidInputError(f"result names a key outside {prefix}: {key!r}")
            if not await self.runtime.storage.exists(key):
                raise InvalidInputError(f"result names {key}, which was not stored")

    # --- liveness rows ------------------------------------------------------------------

    async def publish(self, beat: workers.WorkerBeat) -> None:
        """Writes a remote worker's liveness row, under :data:`REMOTE_PREFIX`."""
        await workers.publish(self.runtime.engine, replace(beat, id=REMOTE_PREFIX + beat.id))

    async def forget(self, worker_id: str) -> None:
        await workers.forget(self.runtime.engine, REMOTE_PREFIX + worker_id)


def step_events(events: list[tuple[str, dict[str, Any]]]) -> list[StepEvent]:
    return [(EventKind(kind), data) for kind, data in events]
