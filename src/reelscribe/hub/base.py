"""What a worker needs from the service, as one small protocol: the :class:`Hub`.

A worker (:class:`reelscribe.worker.Worker`) runs the pipeline; everything it asks of
the outside world goes through a hub::

    claim → heartbeat / report … → source / store_output … → complete | fail | release | cancelled

Two implementations:

* :class:`~reelscribe.hub.local.LocalHub`: the worker holds the runtime itself (the
  queue, the job database, the blob store), as ``reelscribe worker`` and ``serve`` do.
* :class:`~reelscribe.hub.remote.RemoteHub`: the worker holds only an API URL and a
  worker-scope key (``reelscribe worker --remote``); every call is an HTTP request to
  ``/api/worker/…`` and the API runs the same queue calls on its behalf.

Both keep the queue's contract (:mod:`reelscribe.backends.queue.base`): every write
about a job carries the claim, and a claim that is no longer the job's current lease
raises :class:`~reelscribe.backends.queue.LeaseLost` and changes nothing.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol

from reelscribe.backends.db.enums import EventKind
from reelscribe.backends.db.workers import WorkerBeat
from reelscribe.backends.queue import Claim
from reelscribe.errors import ReelscribeError

#: A step event as the worker reports it (``step_start``/``step_finish`` and its data).
StepEvent = tuple[EventKind, dict[str, Any]]


def result_key(job_id: str, sha256: str, filename: str) -> str:
    """Where an output is stored: ``results/<job id>/<sha256[:16]>/<file name>``.

    Content-addressed within the job, so an attempt that produces what a crashed
    attempt already stored reuses it, and deleting a job deletes one prefix."""
    return f"results/{job_id}/{sha256[:16]}/{filename}"


class Hub(Protocol):
    """The worker's side of the service (see the module docstring)."""

    async def claim(self, worker_id: str, lease_seconds: float) -> Claim | None:
        """Leases the next due job, or None when none is (a remote hub long-polls)."""
        ...

    async def wait(self, timeout: float) -> None:
        """Sleeps up to ``timeout`` seconds, returning early when work may be ready."""
        ...

    async def heartbeat(self, claim: Claim) -> bool:
        """Extends the lease; True when the job's cancellation was asked for."""
        ...

    async def report(
        self,
        claim: Claim,
        *,
        progress: float,
        stage: str | None,
        message: str,
        events: list[StepEvent],
    ) -> None:
        """Writes the job's progress and appends ``events``, fenced by the lease."""
        ...

    async def source(self, claim: Claim, upload_id: str, folder: Path) -> Path:
        """Puts the job's uploaded source into ``folder`` (under the user's file name,
        which names the outputs) and returns its path."""
        ...

    async def store_output(self, claim: Claim, name: str, path: Path) -> dict[str, Any]:
        """Stores one output under :func:`result_key` (the file may be moved away) and
        describes it for the result: key, filename, size, sha256, content_type."""
        ...

    async def complete(self, claim: Claim, result: dict[str, Any]) -> None: ...

    async def fail(
        self, claim: Claim, error: ReelscribeError, *, retryable: bool | None = None
    ) -> None: ...

    async def release(self, claim: Claim) -> None: ...

    async def cancelled(self, claim: Claim) -> None: ...

    async def publish(self, beat: WorkerBeat) -> None:
        """Writes the worker's liveness row (for ``/readyz`` and ``/metrics``)."""
        ...

    async def forget(self, worker_id: str) -> None:
        """Removes the worker's liveness row (clean shutdown)."""
        ...
