"""Transient faults of the backends, and how a long-running loop rides them out.

A restarted PostgreSQL, Redis or S3 endpoint shows up as a dozen exception types from
as many libraries (``OSError``, SQLAlchemy's ``OperationalError``, asyncpg's
``CannotConnectNowError``, redis-py's ``ConnectionError`` …). :func:`is_transient`
says whether an exception (or one it was raised from) is such a fault: try again
later, don't fail the job, answer 503 rather than 500.

:class:`Retrier` is the loop's side: a capped exponential backoff with jitter, and
one log line when an outage starts and one when it ends (never one per retry).
"""

from __future__ import annotations

import asyncio
import errno
import logging
import random
import socket
import time
from collections.abc import Iterator

from reelscribe.errors import ReelscribeError

#: Exception class names (of libraries imported lazily) that mean "unreachable now".
_TRANSIENT_NAMES = frozenset({
    # SQLAlchemy
    "OperationalError", "InterfaceError", "DisconnectionError",
    # asyncpg
    "PostgresConnectionError", "CannotConnectNowError", "ConnectionDoesNotExistError",
    "ConnectionFailureError", "AdminShutdownError", "CrashShutdownError",
    "TooManyConnectionsError", "InternalClientError",
    # redis-py
    "BusyLoadingError", "ReadOnlyError", "TryAgainError", "ClusterDownError",
    # botocore / aiohttp
    "EndpointConnectionError", "ConnectTimeoutError", "ReadTimeoutError",
    "ClientConnectionError", "ServerDisconnectedError", "ClientOSError",
})  # fmt: skip
#: Modules whose ConnectionError/TimeoutError are not builtins but mean the same.
_TRANSIENT_MODULE_NAMES = {("redis", "ConnectionError"), ("redis", "TimeoutError")}
_NETWORK_ERRNOS = frozenset({
    errno.ECONNREFUSED, errno.ECONNRESET, errno.ECONNABORTED, errno.EPIPE, errno.ETIMEDOUT,
    errno.EHOSTUNREACH, errno.ENETUNREACH, errno.ENETDOWN, errno.EHOSTDOWN, errno.ENOTCONN,
})  # fmt: skip


def _chain(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def is_transient(exc: BaseException) -> bool:
    """True when ``exc`` says a database, queue or storage server could not be reached
    (refused, reset, timed out, restarting), so the same call may succeed later."""
    for item in _chain(exc):
        if isinstance(item, ReelscribeError):
            return item.retryable
        if isinstance(item, ConnectionError | TimeoutError | EOFError | socket.gaierror):
            return True
        if isinstance(item, OSError) and (
            item.errno in _NETWORK_ERRNOS or (item.errno is None and "connect" in str(item).lower())
        ):
            return True
        if getattr(item, "connection_invalidated", False):  # sqlalchemy.exc.DBAPIError
            return True
        for cls in type(item).__mro__:
            if cls.__name__ in _TRANSIENT_NAMES:
                return True
            root = cls.__module__.split(".", 1)[0]
            if (root, cls.__name__) in _TRANSIENT_MODULE_NAMES:
                return True
    return False


def describe(exc: BaseException) -> str:
    """``ExceptionType: message`` of the exception, shortened for a log line."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {text[:200]}" if text else type(exc).__name__


class Retrier:
    """Backoff and outage logging for one loop (a worker slot, a heartbeat publisher).

    ``failed(exc)`` returns how long to sleep before the next try and logs the first
    failure of an outage (later ones at debug level); ``succeeded()`` logs the recovery
    once and resets the backoff. Delays: ``min(cap, base * 2 ** n)`` times a random
    factor in ``[1 - jitter, 1]``, so that many workers don't retry in step.
    """

    def __init__(
        self,
        what: str,
        logger: logging.Logger,
        *,
        base: float = 0.2,
        cap: float = 5.0,
        jitter: float = 0.5,
    ) -> None:
        self.what = what
        self.log = logger
        self.base, self.cap, self.jitter = base, cap, jitter
        self.failures = 0
        self.since: float | None = None

    @property
    def down(self) -> bool:
        return self.since is not None

    def delay(self) -> float:
        raw = min(self.cap, self.base * 2.0 ** max(0, self.failures - 1))
        return raw * (1.0 - self.jitter * random.random())  # noqa: S311 (not for security)

    def failed(self, exc: BaseException) -> float:
        self.failures += 1
        if self.since is None:
            self.since = time.monotonic()
            if is_transient(exc):
                self.log.warning("%s failed, retrying with backoff: %s", self.what, describe(exc))
            else:
                self.log.error("%s failed, retrying with backoff", self.what, exc_info=exc)
        else:
            self.log.debug("%s failed again (%d): %s", self.what, self.failures, describe(exc))
        return self.delay()

    def succeeded(self) -> None:
        if self.since is not None:
            self.log.warning(
                "%s recovered after %.1f s (%d failed tries)",
                self.what,
                time.monotonic() - self.since,
                self.failures,
            )
        self.failures = 0
        self.since = None


async def sleep_unless(stop: asyncio.Event, seconds: float) -> bool:
    """Sleeps ``seconds`` or until ``stop`` is set; True if stopped."""
    if stop.is_set():
        return True
    try:
        await asyncio.wait_for(stop.wait(), timeout=max(0.0, seconds))
    except TimeoutError:
        return False
    return True
