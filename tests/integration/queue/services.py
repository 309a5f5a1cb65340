"""The PostgreSQL and Redis servers the integration tests use, found through
``REELSCRIBE_TEST_POSTGRES_URL`` (default ``postgresql://postgres@127.0.0.1:5432/test``:
the server that hosts the throwaway databases) and ``REELSCRIBE_TEST_REDIS_URL``
(default ``redis://127.0.0.1:6379/0``)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import uuid
from collections.abc import Iterator

from sqlalchemy import make_url, text

from reelscribe.backends.db import create_engine
from tests.services import missing_service

POSTGRES_URL = os.environ.get(
    "REELSCRIBE_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
)
REDIS_URL = os.environ.get("REELSCRIBE_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


async def _admin(sql: str) -> None:
    engine = create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT", connect_args={"timeout": 3})
    try:
        async with engine.connect() as conn:
            await conn.execute(text(sql))
    finally:
        await engine.dispose()


@contextlib.contextmanager
def temporary_postgres_database(label: str) -> Iterator[str]:
    """Creates an empty database on the test server, yields its URL, drops it.
    Skips the calling test (with the reason) when the server cannot be reached
    (fails it in CI: see tests/services.py)."""
    name = f"reelscribe_{label}_{uuid.uuid4().hex[:12]}"
    try:
        asyncio.run(_admin(f'CREATE DATABASE "{name}"'))
    except Exception as exc:
        missing_service(f"PostgreSQL not reachable at {POSTGRES_URL}: {exc}")
    try:
        yield make_url(POSTGRES_URL).set(database=name).render_as_string(hide_password=False)
    finally:
        asyncio.run(_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


async def _ping_redis() -> None:
    from redis.asyncio import Redis

    client = Redis.from_url(REDIS_URL, socket_connect_timeout=2)
    try:
        await client.ping()
    finally:
        await client.aclose()


def reachable_redis() -> str:
    """The Redis URL; skips the calling test when Redis cannot be reached."""
    try:
        asyncio.run(_ping_redis())
    except Exception as exc:
        missing_service(f"Redis not reachable at {REDIS_URL}: {exc}")
    return REDIS_URL


async def delete_prefix(url: str, prefix: str) -> None:
    from redis.asyncio import Redis

    client = Redis.from_url(url)
    try:
        keys = [key async for key in client.scan_iter(match=f"{prefix}:*")]
        if keys:
            await client.delete(*keys)
    finally:
        await client.aclose()
