"""``UploadStore``: the ``uploads`` table, one named operation per statement.

The rules (who may see an upload, when it is complete, what may be deleted) are the
upload services'; this module only reads and writes rows.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from reelscribe.backends.db.engine import reader
from reelscribe.backends.db.enums import JobStatus
from reelscribe.backends.db.schema import JobRow, UploadRow
from reelscribe.backends.db.types import utcnow

U = UploadRow


class UploadStore:
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self._reader = reader(engine)

    async def insert(self, values: dict[str, Any]) -> None:
        async with self.engine.begin() as conn:
            await conn.execute(insert(U).values(values))

    async def find(self, upload_id: str) -> UploadRow | None:
        async with AsyncSession(bind=self._reader, expire_on_commit=False) as session:
            found: UploadRow | None = (
                await session.scalars(select(U).where(U.id == upload_id))
            ).one_or_none()
        return found

    async def set_received(self, upload_id: str, old: int, new: int) -> bool:
        """Sets ``received`` from ``old`` to ``new``; False if it was not ``old``."""
        stmt = (
            update(U)
            .where(U.id == upload_id, U.received == old)
            .values(received=new, updated_at=utcnow())
        )
        async with self.engine.begin() as conn:
            return (await conn.execute(stmt)).rowcount == 1

    async def update(self, upload_id: str, *, when_state: str | None = None, **values: Any) -> bool:
        """Writes ``values`` (and marks the row used now) if the row is in ``when_state``
        (any state when None); False when no row was."""
        stmt = update(U).where(U.id == upload_id).values(values | {"updated_at": utcnow()})
        if when_state is not None:
            stmt = stmt.where(U.state == when_state)
        async with self.engine.begin() as conn:
            return (await conn.execute(stmt)).rowcount == 1

    async def remove(self, upload_id: str, storage_key: str | None) -> bool:
        """Deletes the row; True when another upload still names ``storage_key`` (the
        same bytes uploaded twice share one blob)."""
        async with self.engine.begin() as conn:
            await conn.execute(delete(U).where(U.id == upload_id))
            if storage_key is None:
                return False
            shared = await conn.execute(select(U.id).where(U.storage_key == storage_key).limit(1))
            return shared.scalar() is not None

    async def unused_since(
        self, states: list[str], cutoff: datetime, limit: int
    ) -> list[UploadRow]:
        """Up to ``limit`` uploads in one of ``states`` unused since ``cutoff``, oldest first."""
        stmt = (
            select(U)
            .where(U.state.in_(states), U.updated_at < cutoff)
            .order_by(U.updated_at)
            .limit(limit)
        )
        async with AsyncSession(bind=self._reader, expire_on_commit=False) as session:
            return list((await session.scalars(stmt)).all())

    async def in_use(self, upload_ids: list[str]) -> set[str]:
        """Which of these uploads a queued or running job names as its source."""
        named = JobRow.spec[("source", "upload_id")].as_string()
        stmt = select(named).where(
            JobRow.status.in_([JobStatus.QUEUED, JobStatus.PROCESSING]), named.in_(upload_ids)
        )
        async with self._reader.connect() as conn:
            return {str(v) for v in (await conn.execute(stmt)).scalars().all()}
