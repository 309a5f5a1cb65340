"""``KeyStore``: the ``api_keys`` table, and the job rows a key's quota counts."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Select, and_, insert, select, update
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from reelscribe.backends.db.engine import reader
from reelscribe.backends.db.enums import JobStatus
from reelscribe.backends.db.schema import ApiKeyRow, JobRow
from reelscribe.backends.db.types import utcnow

K = ApiKeyRow


class KeyStore:
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self._reader = reader(engine)

    async def insert(self, values: dict[str, Any]) -> None:
        async with self.engine.begin() as conn:
            await conn.execute(insert(K).values(values))

    async def by_id(self, key_id: str) -> ApiKeyRow | None:
        return next(iter(await self._rows(select(K).where(K.id == key_id))), None)

    async def by_hash(self, key_hash: str) -> ApiKeyRow | None:
        # Looked up by hash: the index compares digests, never the secret itself.
        return next(iter(await self._rows(select(K).where(K.key_hash == key_hash))), None)

    async def all(self) -> Sequence[ApiKeyRow]:
        return await self._rows(select(K).order_by(K.created_at, K.id))

    async def revoke(self, key_id: str) -> None:
        """Stamps ``revoked_at`` unless the key was revoked before."""
        stmt = update(K).where(K.id == key_id, K.revoked_at.is_(None)).values(revoked_at=utcnow())
        async with self.engine.begin() as conn:
            await conn.execute(stmt)

    async def jobs_since(
        self, key_id: str | None, since: datetime
    ) -> list[tuple[Any, Any, JobStatus, float | None]]:
        """``(spec, result, status, audio_reserved_seconds)`` of the key's jobs created
        since ``since``, jobs cancelled before a worker took them excepted."""
        never_ran = and_(JobRow.status == JobStatus.CANCELLED, JobRow.started_at.is_(None))
        stmt = select(
            JobRow.spec, JobRow.result, JobRow.status, JobRow.audio_reserved_seconds
        ).where(JobRow.owner_key_id == key_id, JobRow.created_at >= since, ~never_ran)
        async with self._reader.connect() as conn:
            return [tuple(row) for row in (await conn.execute(stmt)).all()]

    async def _rows(self, stmt: Select[ApiKeyRow]) -> Sequence[ApiKeyRow]:
        async with AsyncSession(bind=self._reader) as session:
            return (await session.scalars(stmt)).all()
