"""API keys: who may call the service, what they may do and how much.

A key is shown once, at creation (``rsk_…``); the table keeps only its SHA-256, so a
leaked database does not leak keys. A key holds scopes::

    read     GET jobs, steps, events, results, uploads
    submit   create, cancel, retry and delete jobs; upload media
    worker   run jobs: the /api/worker endpoints of remote workers, nothing else
    admin    everything, every caller's jobs, and managing keys

Limits are per key: requests per minute (a sliding window kept **in this process**,
so N API processes let a key through N times as often; a shared limiter would need
Redis) and audio minutes per UTC day (summed from the key's jobs, so every process
agrees). A job with an end is charged its range. A job without one is charged, at
submit, the most it may turn out to be (the key's remaining minutes, at most the
longest source a job may have): that reservation is settled to the probed duration
when the job is done, and dropped if it fails or is cancelled without a probe. So the
last job admitted may overshoot the quota, by at most its own length, and never more.
Keyless access exists only with ``Settings.allow_anonymous``, where every caller is an
admin (``serve`` on loopback).
"""

from __future__ import annotations

import collections
import hashlib
import secrets
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, get_args

from reelscribe.backends.db import AsyncEngine, JobStatus, new_job_id
from reelscribe.backends.db.keys import KeyStore
from reelscribe.backends.db.schema import ApiKeyRow
from reelscribe.config import Settings
from reelscribe.errors import (
    InvalidInputError,
    KeyNotFoundError,
    QuotaExceededError,
    RateLimitedError,
    UnauthorizedError,
)

Scope = Literal["read", "submit", "worker", "admin"]
SCOPES: tuple[Scope, ...] = get_args(Scope)
SECRET_PREFIX = "rsk_"  # noqa: S105 (a marker that makes keys recognisable, no secret)


@dataclass(frozen=True, slots=True)
class ApiKey:
    """An authenticated caller. ``id`` is None for the anonymous caller."""

    id: str | None
    name: str
    scopes: frozenset[str]
    rate_limit_per_minute: int | None = None
    quota_audio_minutes_per_day: float | None = None
    created_at: datetime | None = None
    revoked_at: datetime | None = None

    @property
    def is_admin(self) -> bool:
        return "admin" in self.scopes

    def allows(self, scope: Scope) -> bool:
        return self.is_admin or scope in self.scopes

    @classmethod
    def from_row(cls, row: ApiKeyRow) -> ApiKey:
        return cls(
            id=row.id,
            name=row.name,
            scopes=frozenset(row.scopes),
            rate_limit_per_minute=row.rate_limit_per_minute,
            quota_audio_minutes_per_day=row.quota_audio_minutes_per_day,
            created_at=row.created_at,
            revoked_at=row.revoked_at,
        )


ANONYMOUS = ApiKey(id=None, name="anonymous", scopes=frozenset(SCOPES))


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8", "surrogatepass")).hexdigest()


def new_secret() -> str:
    return SECRET_PREFIX + secrets.token_urlsafe(32)


class SlidingWindow:
    """At most ``limit`` hits per ``window`` seconds per name, in this process."""

    def __init__(self, window: float = 60.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.window = window
        self._clock = clock
        self._hits: dict[str, collections.deque[float]] = {}

    def hit(self, name: str, limit: int) -> float | None:
        """Counts one hit; returns None when allowed, else seconds until one is."""
        now = self._clock()
        hits = self._hits.setdefault(name, collections.deque())
        while hits and hits[0] <= now - self.window:
            hits.popleft()
        if len(hits) >= limit:
            return hits[0] + self.window - now
        hits.append(now)
        return None


def job_audio_seconds(
    spec: dict[str, Any],
    result: dict[str, Any] | None,
    status: JobStatus | None = None,
    reserved: float | None = None,
) -> float:
    """Audio a job is charged: its time range when it has an end, else the probed
    duration the worker recorded (``result.media.duration``) less the start, else, while
    it is queued or running, what was reserved at submit; else 0 (it ended unprobed)."""
    start = float(spec.get("start") or 0.0)
    end = spec.get("end")
    if end is not None:
        return max(0.0, float(end) - start)
    media = (result or {}).get("media")
    duration = media.get("duration") if isinstance(media, dict) else None
    if isinstance(duration, int | float):
        return max(0.0, float(duration) - start)
    if status in (JobStatus.QUEUED, JobStatus.PROCESSING) and reserved is not None:
        return reserved
    return 0.0


def _start_of_day(now: datetime) -> datetime:
    return now.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)


class KeyService:
    def __init__(self, engine: AsyncEngine, settings: Settings) -> None:
        self.engine = engine
        self.store = KeyStore(engine)
        self.settings = settings
        self.limiter = SlidingWindow()

    # --- managing keys -----------------------------------------------------------

    async def create(
        self,
        name: str,
        scopes: Iterable[str],
        *,
        rate_limit_per_minute: int | None = None,
        quota_audio_minutes_per_day: float | None = None,
        secret: str | None = None,
    ) -> tuple[ApiKey, str]:
        """Stores a new key; returns it with its secret (the only time it is seen)."""
        wanted = sorted(set(scopes))
        unknown = [s for s in wanted if s not in SCOPES]
        if not wanted or unknown:
            raise InvalidInputError(f"scopes must be some of {', '.join(SCOPES)}")
        secret = secret or new_secret()
        key_id = new_job_id()
        values = {
            "id": key_id,
            "name": name,
            "key_hash": hash_secret(secret),
            "scopes": wanted,
            "rate_limit_per_minute": rate_limit_per_minute,
            "quota_audio_minutes_per_day": quota_audio_minutes_per_day,
        }
        await self.store.insert(values)
        return await self.get(key_id), secret

    async def ensure(self, secret: str, *, name: str = "admin") -> ApiKey:
        """The admin key of ``Settings.admin_api_key``: created once, found afterwards."""
        found = await self._by_hash(hash_secret(secret))
        if found is not None:
            return found
        key, _ = await self.create(name, ["admin"], secret=secret)
        return key

    async def get(self, key_id: str) -> ApiKey:
        row = await self.store.by_id(key_id)
        if row is None:
            raise KeyNotFoundError(f"no API key {key_id}")
        return ApiKey.from_row(row)

    async def list_keys(self) -> Sequence[ApiKey]:
        return [ApiKey.from_row(row) for row in await self.store.all()]

    async def revoke(self, key_id: str) -> ApiKey:
        await self.store.revoke(key_id)
        return await self.get(key_id)  # revoking twice is not an error

    # --- checking callers --------------------------------------------------------------

    async def authenticate(self, secret: str | None) -> ApiKey:
        """The caller behind ``secret``; without one, anonymous if allowed."""
        if not secret:
            if self.settings.allow_anonymous:
                return ANONYMOUS
            raise UnauthorizedError("an API key is required (Authorization: Bearer <key>)")
        key = await self._by_hash(hash_secret(secret))
        if key is None or key.revoked_at is not None:
            raise UnauthorizedError("unknown or revoked API key")
        return key

    async def _by_hash(self, key_hash: str) -> ApiKey | None:
        row = await self.store.by_hash(key_hash)
        return None if row is None else ApiKey.from_row(row)

    def check_rate(self, key: ApiKey) -> None:
        if key.id is None:
            return  # anonymous use is loopback-only, one user: nothing to share fairly
        limit = key.rate_limit_per_minute or self.settings.rate_limit_per_minute
        wait = self.limiter.hit(key.id, limit)
        if wait is not None:
            raise RateLimitedError(f"rate limit of {limit} requests/minute", retry_after=wait)

    async def audio_seconds_today(self, key: ApiKey, now: datetime | None = None) -> float:
        """Audio seconds of the key's jobs created today (UTC), jobs cancelled before a
        worker took them excepted."""
        rows = await self.store.jobs_since(key.id, _start_of_day(now or datetime.now(UTC)))
        return sum(job_audio_seconds(*row) for row in rows)

    async def check_quota(self, key: ApiKey, requested_seconds: float | None) -> float | None:
        """Refuses a job that would take the key past its audio minutes for today.
        ``requested_seconds`` is None for a job of unknown length (no end): it is
        admitted while the key has minutes left, and the seconds to reserve for it are
        returned (what is left, at most :attr:`max_job_seconds`)."""
        if key.id is None:
            return None
        minutes = key.quota_audio_minutes_per_day or self.settings.quota_audio_minutes_per_day
        now = datetime.now(UTC)
        used = await self.audio_seconds_today(key, now)
        left = minutes * 60.0 - used
        if left <= 0 or (requested_seconds is not None and requested_seconds > left):
            tomorrow = _start_of_day(now) + timedelta(days=1)
            raise QuotaExceededError(
                f"daily quota of {minutes:g} audio minutes reached ({used / 60:.2f} used"
                + (", the rest reserved for jobs not yet probed)" if left <= 0 else ")"),
                retry_after=(tomorrow - now).total_seconds(),
            )
        return min(left, self.max_job_seconds) if requested_seconds is None else None

    @property
    def max_job_seconds(self) -> float:
        """The longest audio one job may have (see ``spec.to_request``)."""
        return min(self.settings.max_duration, self.settings.max_clip_seconds)
