"""Group commit: many concurrent callers, one database round trip.

Under load the API receives many submissions at once; each as its own transaction
costs a ``BEGIN``, two inserts, a ``COMMIT`` (and on SQLite a trip through the driver's
thread) per job. :class:`GroupCommit` collects the calls that arrive while a batch is
being written and writes them together as the next batch. Nothing waits on a timer: a
lone caller is written at once, and batches only grow when the database is the
bottleneck, which is exactly when they help.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")

#: Writes one batch; returns one result per item, in order (an exception for an item
#: fails only that item's caller).
Flush = Callable[[Sequence[T]], Awaitable[Sequence[R | BaseException]]]


class GroupCommit(Generic[T, R]):
    """``await batcher(item)`` → the item's result, written together with whatever other
    items were waiting. The batch is written by a task of its own, so a caller that
    gives up (a client disconnecting) never interrupts a batch other callers wait on."""

    def __init__(self, flush: Flush[T, R], *, max_batch: int = 256) -> None:
        self._flush = flush
        self._max_batch = max_batch
        self._pending: list[tuple[T, asyncio.Future[R]]] = []
        self._writer: asyncio.Task[None] | None = None

    async def __call__(self, item: T) -> R:
        future: asyncio.Future[R] = asyncio.get_running_loop().create_future()
        self._pending.append((item, future))
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._write())
        return await future

    async def _write(self) -> None:
        while self._pending:
            batch = self._pending[: self._max_batch]
            del self._pending[: self._max_batch]
            try:
                results: Sequence[R | BaseException] = await self._flush([i for i, _ in batch])
                if len(results) != len(batch):
                    raise RuntimeError(f"flush returned {len(results)} results for {len(batch)}")
            except asyncio.CancelledError:  # the loop is shutting down: nobody is served
                for _, future in batch + self._pending:
                    future.cancel()
                self._pending.clear()
                raise
            except Exception as exc:  # handed to every caller of the batch
                results = [exc] * len(batch)
            for (_, future), result in zip(batch, results, strict=True):
                if future.done():  # the caller gave up
                    continue
                if isinstance(result, BaseException):
                    future.set_exception(result)
                else:
                    future.set_result(result)
