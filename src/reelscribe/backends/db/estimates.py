"""The statements behind estimates: finished jobs' results (their step timings, from
which step speeds are learnt) and a job's stored estimate."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import make_url, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from reelscribe.backends.db.engine import create_engine, reader
from reelscribe.backends.db.enums import JobStatus
from reelscribe.backends.db.schema import JobRow


async def recent_results(engine: AsyncEngine, history: int) -> list[dict[str, Any]]:
    """The results of the ``history`` latest done jobs, newest first."""
    stmt = (
        select(JobRow.result)
        .where(JobRow.status == JobStatus.DONE, JobRow.result.is_not(None))
        .order_by(JobRow.finished_at.desc())
        .limit(history)
    )
    async with reader(engine).connect() as conn:
        results = (await conn.execute(stmt)).scalars().all()
    return [r for r in results if isinstance(r, dict)]


async def results_at(database_url: str, history: int) -> tuple[list[dict[str, Any]], str | None]:
    """:func:`recent_results` of the database at ``database_url``, opened for this read
    only (the CLI), and why there are none when there are none: no database yet (a SQLite
    file that does not exist is not created), or one that cannot be read."""
    url = make_url(database_url)
    if url.get_backend_name() == "sqlite":
        path = url.database or ""
        if not path or path == ":memory:" or not Path(path).is_file():
            return [], f"no job database at {path or database_url}"
    engine = create_engine(url)
    try:
        return await recent_results(engine, history), None
    except Exception as exc:  # unreachable, no tables yet: the defaults still answer
        return [], f"the job database cannot be read ({type(exc).__name__})"
    finally:
        await engine.dispose()


async def set_estimate(engine: AsyncEngine, job_id: str, estimate: dict[str, Any]) -> None:
    async with engine.begin() as conn:
        await conn.execute(update(JobRow).where(JobRow.id == job_id).values(estimate=estimate))
