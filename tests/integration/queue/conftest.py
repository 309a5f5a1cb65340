"""One queue contract, three backends: SQLite (a migrated temp file per test),
PostgreSQL (a database created for the session, emptied before each test, dropped
after) and Redis Streams over SQLite (a fresh key prefix per test). A backend whose
server cannot be reached is skipped with the reason (see services.py).
"""

from __future__ import annotations

import asyncio
import shutil
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from sqlalchemy import text

from reelscribe.backends.db import create_engine
from reelscribe.migrations import upgrade
from tests.integration.queue.harness import Env, Target, open_env
from tests.integration.queue.services import (
    delete_prefix,
    reachable_redis,
    temporary_postgres_database,
)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A fresh, migrated database on the test server for this session."""
    with temporary_postgres_database("queue") as url:
        upgrade(url)
        yield url


@pytest.fixture
def empty_postgres_url(postgres_url: str) -> str:
    """The session's database, with no jobs left from earlier tests."""
    asyncio.run(_truncate(postgres_url))
    return postgres_url


@pytest.fixture(scope="session")
def redis_url() -> str:
    return reachable_redis()


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Migrated once; each test copies it (a copy is ~100x faster than migrating)."""
    path = tmp_path_factory.mktemp("template") / "jobs.db"
    upgrade(f"sqlite:///{path}")
    return path


@pytest.fixture
def sqlite_url(sqlite_template: Path, tmp_path: Path) -> str:
    path = tmp_path / "jobs.db"
    shutil.copy(sqlite_template, path)
    return f"sqlite:///{path}"


@pytest.fixture(params=["sqlite", "postgresql", "redis"])
def target(request: pytest.FixtureRequest) -> Iterator[Target]:
    kind: str = request.param
    if kind == "sqlite":
        yield Target(kind, request.getfixturevalue("sqlite_url"))
    elif kind == "postgresql":
        yield Target(kind, request.getfixturevalue("empty_postgres_url"))
    else:
        redis = request.getfixturevalue("redis_url")
        prefix = f"reelscribe-test-{uuid.uuid4().hex[:12]}"
        yield Target(kind, request.getfixturevalue("sqlite_url"), redis, prefix)
        asyncio.run(delete_prefix(redis, prefix))


async def _truncate(url: str) -> None:
    engine = create_engine(url)
    try:
        async with engine.begin() as conn:
            await conn.execute(text("TRUNCATE jobs, job_events CASCADE"))
    finally:
        await engine.dispose()


@pytest.fixture
async def env(target: Target) -> AsyncIterator[Env]:
    async with open_env(target) as opened:
        yield opened
