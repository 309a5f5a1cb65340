"""Queues: the :class:`Queue` protocol and its backends.

``DatabaseQueue`` needs only the database; ``RedisStreamQueue`` also needs the
``redis`` package, imported on first use so that installs without Redis still work.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from reelscribe.backends.queue.base import Backoff, Claim, Queue
from reelscribe.backends.queue.database import DatabaseQueue

if TYPE_CHECKING:
    from reelscribe.backends.queue.redis_streams import RedisStreamQueue

__all__ = [
    "Backoff",
    "Claim",
    "DatabaseQueue",
    "Queue",
    "RedisStreamQueue",
]


def __getattr__(name: str) -> Any:
    if name == "RedisStreamQueue":
        from reelscribe.backends.queue.redis_streams import RedisStreamQueue

        return RedisStreamQueue
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
