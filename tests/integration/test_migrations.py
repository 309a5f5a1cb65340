"""The Alembic revisions build the schema the models describe, on SQLite and PostgreSQL,
and take it down again."""

from __future__ import annotations

import asyncio
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Connection, inspect, text
from sqlalchemy.exc import SAWarning

from reelscribe.backends.db import Base, create_engine
from reelscribe.migrations import downgrade, upgrade
from tests.integration.queue.services import temporary_postgres_database


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'jobs.db'}"
    else:
        with temporary_postgres_database("migrations") as url:
            yield url


_INDEX_NAMES = {
    # SQLAlchemy does not reflect SQLite's expression indexes, so ask the catalogues.
    "sqlite": "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = :t",
    "postgresql": "SELECT indexname FROM pg_indexes WHERE tablename = :t",
}


def _schema(connection: Connection) -> dict[str, Any]:
    tables = set(inspect(connection).get_table_names())
    indexes = {
        table: set(
            connection.execute(text(_INDEX_NAMES[connection.dialect.name]), {"t": table})
            .scalars()
            .all()
        )
        for table in tables & {"jobs", "job_events"}
    }
    context = MigrationContext.configure(connection, opts={"compare_type": True})
    with warnings.catch_warnings():
        # The one expression index (owner, idempotency key) cannot be reflected on
        # SQLite; SQLAlchemy says so with a warning. It is checked by name instead.
        warnings.filterwarnings(
            "ignore", "Skipped unsupported reflection of expression-based index", SAWarning
        )
        warnings.filterwarnings(
            "ignore", "autogenerate skipping metadata-specified expression-based index", UserWarning
        )
        diff = compare_metadata(context, Base.metadata)
    return {"tables": tables, "indexes": indexes, "diff": diff}


def schema(url: str) -> dict[str, Any]:
    async def read() -> dict[str, Any]:
        engine = create_engine(url)
        try:
            async with engine.connect() as conn:
                return await conn.run_sync(_schema)
        finally:
            await engine.dispose()

    return asyncio.run(read())


def test_upgrade_builds_the_models_schema_and_downgrade_removes_it(database_url: str) -> None:
    upgrade(database_url)
    built = schema(database_url)
    assert {"jobs", "job_events", "alembic_version"} <= built["tables"]
    assert built["indexes"]["jobs"] >= {
        "ix_jobs_status_created_at",
        "ix_jobs_expires_at",
        "ix_jobs_claim_order",
        "uq_jobs_owner_idempotency_key",
    }
    assert "ix_job_events_job_id_id" in built["indexes"]["job_events"]
    # The revision and the models agree (an expression index is beyond autogenerate's
    # comparison; the assertion above checks that one by name).
    assert built["diff"] == []

    upgrade(database_url)  # at head already: nothing to do
    downgrade(database_url)
    assert schema(database_url)["tables"] <= {"alembic_version"}

    upgrade(database_url)  # and back up again
    assert {"jobs", "job_events"} <= schema(database_url)["tables"]


def _sql(url: str, statement: str, **params: Any) -> list[tuple[Any, ...]]:
    async def go() -> list[tuple[Any, ...]]:
        engine = create_engine(url)
        try:
            async with engine.begin() as conn:
                result = await conn.execute(text(statement), params)
                return [tuple(r) for r in result.all()] if result.returns_rows else []
        finally:
            await engine.dispose()

    return asyncio.run(go())


_INSERT = (
    "INSERT INTO jobs (id, spec, status, priority, attempts, max_attempts, lease_token, "
    "run_after, cancel_requested, progress, processing_seconds, created_at, updated_at) "
    "VALUES (:id, '{}', :status, 1, 1, 3, 1, CURRENT_TIMESTAMP, false, 0, 0, "
    "CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"
)


def test_0007_adds_blocked_to_the_status_check_and_takes_it_back(database_url: str) -> None:
    """The CHECK on jobs.status accepts ``blocked`` after 0007 and refuses it before; a
    blocked job survives a downgrade as a failed one."""
    from sqlalchemy.exc import IntegrityError

    upgrade(database_url)
    _sql(database_url, _INSERT, id="b", status="blocked")
    with pytest.raises(IntegrityError):
        _sql(database_url, _INSERT, id="x", status="nonsense")
    downgrade(database_url, "0006")
    assert _sql(database_url, "SELECT status, error_code FROM jobs WHERE id = 'b'") == [
        ("failed", "content_blocked")
    ]
    with pytest.raises(IntegrityError):
        _sql(database_url, _INSERT, id="c", status="blocked")
    upgrade(database_url)
    _sql(database_url, _INSERT, id="d", status="blocked")
    assert schema(database_url)["diff"] == []
