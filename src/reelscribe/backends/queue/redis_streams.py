"""``RedisStreamQueue``: Redis Streams deliver job ids; the jobs table keeps the truth.

Keys, under one prefix::

    {prefix}:fast / :normal / :bulk   a stream per priority, one consumer group
    {prefix}:delayed                  sorted set of retries waiting out their backoff

A claim reads the streams in priority order (stalled entries first, through
XAUTOCLAIM once an entry has been idle for the lease length; then new ones through
XREADGROUP COUNT 1) and leases the job in the database: only a job the table calls
claimable is handed out, so a duplicate or stale entry is dropped, never run twice
under two live leases. Heartbeats reset the entry's idle time (XCLAIM … JUSTID);
finished entries are XACKed and XDELed so streams do not grow.

If Redis loses its data (it often runs without persistence), the consumer group is
missing: at start-up, or at any later call that gets ``NOGROUP`` (Redis restarted under
a running worker), the groups are created again and every queued or processing job of
the table is re-enqueued (:meth:`RedisStreamQueue.resync`). After a call failed to reach
Redis (a delivery may have been lost between a commit and its XADD), the next claim or
submission resyncs too. Duplicates are harmless: the table decides who runs a job.
Redis being down at start-up does not fail ``__aenter__``: the groups are made later.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import replace
from types import TracebackType
from typing import Any, Self, TypeVar

from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from reelscribe.backends.db.engine import reader
from reelscribe.backends.db.enums import JobStatus, Priority
from reelscribe.backends.db.schema import JobRow
from reelscribe.backends.db.types import seconds_since
from reelscribe.backends.queue.base import Backoff, Claim, JobRules
from reelscribe.backends.queue.leases import LeaseTable, default_rules
from reelscribe.errors import LeaseLost, ReelscribeError

log = logging.getLogger("reelscribe.queue")
T = TypeVar("T")
_ORDER = (Priority.FAST, Priority.NORMAL, Priority.BULK)

# Moves due retries from the delayed set to their streams, atomically (a crash between
# ZREM and XADD would lose the delivery). Members are "<rank>:<job id>"; KEYS[2..4]
# are the streams in rank order. Redis's clock decides "due"; the table re-checks.
_PROMOTE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, tonumber(ARGV[1]))
for _, member in ipairs(due) do
  redis.call('ZREM', KEYS[1], member)
  local sep = string.find(member, ':', 1, true)
  local rank = tonumber(string.sub(member, 1, sep - 1))
  redis.call('XADD', KEYS[rank + 2], '*', 'job', string.sub(member, sep + 1))
end
return #due
"""


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


class RedisStreamQueue:
    """A :class:`~reelscribe.backends.queue.base.Queue` on Redis Streams + the jobs table.

    The caller owns ``engine`` and ``redis`` (either ``decode_responses`` works).
    """

    def __init__(
        self,
        engine: AsyncEngine,
        redis: Redis,
        *,
        prefix: str = "reelscribe",
        group: str = "workers",
        rules: JobRules | None = None,
        backoff: Backoff | None = None,
        poll_interval: float = 1.0,
        reap_interval: float = 5.0,
    ) -> None:
        self.engine = engine
        self.redis = redis
        self.group = group
        self.rules = rules or default_rules(backoff)
        self.leases = LeaseTable(engine)
        self.streams = {priority: f"{prefix}:{priority.value}" for priority in _ORDER}
        self.delayed_key = f"{prefix}:delayed"
        self.poll_interval = poll_interval
        self.reap_interval = reap_interval
        self._last_reap = float("-inf")
        self._cursors = dict.fromkeys(self.streams.values(), "0-0")
        self._promote = redis.register_script(_PROMOTE)
        #: Set when Redis could not be reached: the groups may be gone, or a delivery
        #: lost; the next claim or submission repairs both (see :meth:`_repair`).
        self._suspect = True
        self._needs_resync = False

    async def __aenter__(self) -> Self:
        try:
            await self._repair()
        except (RedisConnectionError, RedisTimeoutError, OSError) as exc:
            log.warning("Redis unreachable at start-up (%s); retrying at the first claim", exc)
        return self

    async def ensure_groups(self) -> bool:
        """Creates the consumer groups (and streams) that are missing; True if any was.
        When one was, Redis lost its data: every live job is delivered again."""
        created = False
        for stream in self.streams.values():
            try:
                await self.redis.xgroup_create(stream, self.group, id="0", mkstream=True)
                created = True
            except ResponseError as exc:
                if "BUSYGROUP" not in str(exc):
                    raise
        if created:
            count = await self.resync()
            log.warning("Redis consumer group %r was missing: recreated, %d jobs re-delivered",
                        self.group, count)  # fmt: skip
        return created

    async def _repair(self) -> None:
        """After an outage: recreate missing groups and re-deliver what may be lost."""
        if not await self.ensure_groups() and self._needs_resync:
            await self.resync()
        self._suspect = self._needs_resync = False

    async def _call(self, call: Callable[[], Awaitable[T]]) -> T:
        """One Redis call: a missing group (Redis restarted empty) is recreated and the
        call tried again once; an unreachable Redis marks the queue for repair."""
        try:
            return await call()
        except ResponseError as exc:
            if "NOGROUP" not in str(exc):
                raise
            await self.ensure_groups()
            return await call()
        except (RedisConnectionError, RedisTimeoutError, OSError):
            self._suspect = self._needs_resync = True
            raise

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        return None

    # --- producing ----------------------------------------------------------------

    async def enqueue(self, job_id: str, priority: Priority | None = None) -> JobStatus:
        state = await self.leases.request(job_id, lambda s: self.rules.enqueued(s, priority))
        if state.status is JobStatus.QUEUED:
            await self._call(lambda: self._deliver(job_id, state.priority, state.due_in))
        return state.status

    async def submitted(self, job_id: str, priority: Priority) -> None:
        if self._suspect:
            await self._call(self._repair)
        await self._call(lambda: self._deliver(job_id, priority, 0.0))

    async def resync(self) -> int:
        """Re-delivers every queued or processing job of the table (after Redis lost its
        data, or to repair a delivery lost between a commit and its XADD)."""
        stmt = (
            select(JobRow.id, JobRow.priority, JobRow.status, seconds_since(JobRow.run_after))
            .where(JobRow.status.in_((JobStatus.QUEUED, JobStatus.PROCESSING)))
            .order_by(JobRow.priority, JobRow.created_at, JobRow.id)
        )
        async with reader(self.engine).connect() as conn:
            rows = (await conn.execute(stmt)).all()
        for job_id, priority, status, since in rows:
            due_in = max(0.0, -since) if status is JobStatus.QUEUED else 0.0
            await self._deliver(job_id, priority, due_in)
        return len(rows)

    async def _deliver(self, job_id: str, priority: Priority, due_in: float) -> None:
        if due_in <= 0.0:
            await self.redis.xadd(self.streams[priority], {"job": job_id})
            return
        seconds, micros = await self.redis.time()
        score = seconds + micros / 1e6 + due_in
        await self.redis.zadd(self.delayed_key, {f"{priority.rank}:{job_id}": score})

    # --- claiming -------------------------------------------------------------------

    async def claim(self, worker_id: str, lease_seconds: float) -> Claim | None:
        if self._suspect:
            await self._call(self._repair)
        if time.monotonic() - self._last_reap >= self.reap_interval:
            await self.reap()
        keys = [self.delayed_key, *self.streams.values()]
        await self._call(lambda: self._promote(keys=keys, args=[100]))
        return await self._call(lambda: self._claim(worker_id, lease_seconds))

    async def _claim(self, worker_id: str, lease_seconds: float) -> Claim | None:
        for priority in _ORDER:
            stream = self.streams[priority]
            # Bounded: each entry that cannot be claimed is either dropped or set aside.
            for _ in range(100):
                entry = await self._stalled(stream, worker_id, lease_seconds)
                if entry is None:
                    entry = await self._new(stream, worker_id)
                if entry is None:
                    break
                claim = await self._take(stream, *entry, worker_id, lease_seconds)
                if claim is not None:
                    return claim
        return None

    async def _stalled(
        self, stream: str, worker_id: str, lease_seconds: float
    ) -> tuple[str, str] | None:
        """An entry pending longer than a lease (its worker stopped), now ours."""
        cursor, entries, *_ = await self.redis.xautoclaim(
            stream,
            self.group,
            worker_id,
            min_idle_time=max(1, int(lease_seconds * 1000)),
            start_id=self._cursors[stream],
            count=1,
        )
        self._cursors[stream] = _text(cursor)
        for entry_id, fields in entries:
            if fields:  # None: deleted from the stream while pending
                return _text(entry_id), _text(_field(fields, "job"))
        return None

    async def _new(self, stream: str, worker_id: str) -> tuple[str, str] | None:
        reply = await self.redis.xreadgroup(self.group, worker_id, {stream: ">"}, count=1)
        for _, entries in _stream_entries(reply):
            for entry_id, fields in entries:
                return _text(entry_id), _text(_field(fields, "job"))
        return None

    async def _take(
        self, stream: str, entry_id: str, job_id: str, worker_id: str, lease_seconds: float
    ) -> Claim | None:
        claim = await self.leases.claim_job(job_id, worker_id, lease_seconds)
        if claim is not None:
            return replace(claim, receipt=f"{stream} {entry_id}")
        state = await self.leases.state(job_id)
        if state is None or state.status.is_terminal:
            await self._drop(stream, entry_id)
        elif state.status is JobStatus.QUEUED and not state.due:  # delivered early
            await self._deliver(job_id, state.priority, state.due_in)
            await self._drop(stream, entry_id)
        elif state.status is JobStatus.PROCESSING and not state.leased:
            await self.reap()  # expired and must not run again: ends it
            await self._drop(stream, entry_id)
        # Otherwise another worker holds a live lease (a duplicate delivery, or its
        # heartbeat has yet to reset the entry): leave the entry pending; it comes back
        # through XAUTOCLAIM after a lease's idle time and is decided again.
        return None

    # --- the lease holder's calls ---------------------------------------------------

    async def heartbeat(self, claim: Claim) -> bool:
        cancel_requested = await self.leases.heartbeat(claim)
        stream, entry_id = self._receipt(claim)
        # Resets the entry's idle time, so XAUTOCLAIM leaves a live job alone. (After
        # Redis lost its data the entry is gone; the resync's new entry is left
        # pending while this lease lives, and dropped once the job has ended.)
        await self._call(lambda: self.redis.xclaim(
            stream, self.group, claim.worker_id, 0, [entry_id], justid=True
        ))  # fmt: skip
        return cancel_requested

    async def complete(
        self,
        claim: Claim,
        result: dict[str, Any],
        *,
        retain_seconds: float | None = None,
        status: JobStatus = JobStatus.DONE,
    ) -> None:
        await self.leases.complete(claim, result, retain_seconds, status)
        await self._drop(*self._receipt(claim))

    async def fail(
        self, claim: Claim, error: ReelscribeError, *, retryable: bool | None = None
    ) -> JobStatus:
        outcome = await self.leases.decide(claim, lambda s: self.rules.failed(s, error, retryable))
        status = outcome.status
        if status is JobStatus.QUEUED:
            delay = max(outcome.retry_in or 0.0, 0.001)
            await self._call(lambda: self._deliver(claim.job_id, claim.priority, delay))
        await self._drop(*self._receipt(claim))
        return status

    async def release(self, claim: Claim) -> None:
        outcome = await self.leases.decide(claim, self.rules.released)
        if outcome.status is JobStatus.QUEUED:
            await self._call(lambda: self._deliver(claim.job_id, claim.priority, 0.0))
        await self._drop(*self._receipt(claim))

    async def cancelled(self, claim: Claim) -> None:
        await self.leases.settle(claim, self.rules.stopped())
        await self._drop(*self._receipt(claim))

    # --- anyone's calls ---------------------------------------------------------------

    async def cancel(self, job_id: str) -> JobStatus:
        # A queued job's entry stays behind; the claim that reads it drops it.
        return (await self.leases.request(job_id, self.rules.cancelled)).status

    async def reap(self) -> int:
        self._last_reap = time.monotonic()
        return await self.leases.reap(self.rules.expired)

    async def wait(self, timeout: float) -> None:
        """Blocks on the streams for new entries (entries added between the last claim
        and this call are seen at the next poll), bounded by the next delayed retry."""
        limit = min(timeout, self.poll_interval)
        soonest = await self._call(
            lambda: self.redis.zrange(self.delayed_key, 0, 0, withscores=True)
        )
        if soonest:
            seconds, micros = await self.redis.time()
            limit = min(limit, float(soonest[0][1]) - (seconds + micros / 1e6))
        if limit <= 0.0:
            return
        await self.redis.xread(
            dict.fromkeys(self.streams.values(), "$"), count=1, block=max(1, int(limit * 1000))
        )

    # --- helpers ------------------------------------------------------------------------

    def _receipt(self, claim: Claim) -> tuple[str, str]:
        if claim.receipt is None:
            raise LeaseLost(f"job {claim.job_id}: the claim did not come from this queue")
        stream, entry_id = claim.receipt.split(" ", 1)
        return stream, entry_id

    async def _drop(self, stream: str, entry_id: str) -> None:
        async def drop() -> None:
            async with self.redis.pipeline(transaction=True) as pipe:
                pipe.xack(stream, self.group, entry_id)
                pipe.xdel(stream, entry_id)
                await pipe.execute()

        await self._call(drop)


def _field(fields: dict[Any, Any], name: str) -> Any:
    return fields.get(name, fields.get(name.encode()))


def _stream_entries(reply: Any) -> list[tuple[Any, list[tuple[Any, dict[Any, Any]]]]]:
    """XREADGROUP's reply as [(stream, [(id, fields)])] (RESP2 list or RESP3 dict)."""
    if not reply:
        return []
    if isinstance(reply, dict):
        return [(stream, entries[0] if entries else []) for stream, entries in reply.items()]
    return list(reply)
