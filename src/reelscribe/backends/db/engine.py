"""An async engine from a plain URL: ``sqlite:///path`` or ``postgresql://…``.

Settings name databases the way people write them; the async driver is picked here:
aiosqlite for SQLite, asyncpg for PostgreSQL (``postgresql+psycopg://`` is passed
through for psycopg 3's async mode).

SQLite is tuned for several worker processes on one file: WAL (readers never block
the writer), a busy timeout (writers wait instead of failing), and ``BEGIN IMMEDIATE``
for write transactions, so a transaction takes the write lock before it reads: a
deferred transaction that reads first and writes later can fail with "database is
locked" without waiting at all.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from sqlalchemy import URL, event, make_url, text
from sqlalchemy.engine import Connection
from sqlalchemy.exc import ArgumentError, DBAPIError, SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import ConnectionPoolEntry, NullPool

from reelscribe.errors import InvalidInputError

_DRIVERS = {
    "sqlite": "sqlite+aiosqlite",
    "sqlite+aiosqlite": "sqlite+aiosqlite",
    "postgres": "postgresql+asyncpg",
    "postgresql": "postgresql+asyncpg",
    "postgresql+asyncpg": "postgresql+asyncpg",
    "postgresql+psycopg": "postgresql+psycopg",
}

#: Execution option that marks a connection as read-only: on SQLite it begins a
#: deferred transaction, so readers do not queue behind the write lock.
READ_ONLY = "reelscribe_read_only"


def async_url(url: str | URL) -> URL:
    """Maps ``sqlite:///…`` / ``postgresql://…`` to the async driver's URL."""
    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise InvalidInputError(f"invalid database URL: {exc}") from exc
    driver = _DRIVERS.get(parsed.drivername)
    if driver is None:
        raise InvalidInputError(
            f"unsupported database {parsed.drivername!r}: use sqlite:///path or postgresql://…"
        )
    return parsed.set(drivername=driver)


def create_engine(url: str | URL, *, busy_timeout_ms: int = 30_000, **kwargs: Any) -> AsyncEngine:
    """Creates the process's engine (create it once, share it, ``await dispose()`` it).

    ``kwargs`` go to :func:`sqlalchemy.ext.asyncio.create_async_engine` (pool sizes…).
    """
    target = async_url(url)
    if target.get_backend_name() == "postgresql":
        # After a server restart every pooled connection is dead: test each one as it
        # is checked out instead of failing the first statement on each.
        kwargs.setdefault("pool_pre_ping", True)
        if target.get_driver_name() == "asyncpg":
            kwargs.setdefault("connect_args", {}).setdefault("timeout", 10)
    engine = create_async_engine(target, **kwargs)
    if target.get_backend_name() == "sqlite":
        _tune_sqlite(engine, busy_timeout_ms)
    return engine


def reader(engine: AsyncEngine) -> AsyncEngine:
    """The same engine and pool, with connections marked :data:`READ_ONLY` from the
    start (the mark must be there before the transaction begins)."""
    return engine.execution_options(**{READ_ONLY: True})


def _tune_sqlite(engine: AsyncEngine, busy_timeout_ms: int) -> None:
    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, record: ConnectionPoolEntry) -> None:
        # Take BEGIN away from the sqlite3 module; _on_begin emits our own.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
            # WAL + NORMAL: durable against process crashes, fsyncs only at checkpoints.
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA foreign_keys=ON")
        finally:
            cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(conn: Connection) -> None:
        read = conn.get_execution_options().get(READ_ONLY, False)
        conn.exec_driver_sql("BEGIN" if read else "BEGIN IMMEDIATE")


#: What a database that is down or restarting raises (the API answers 503).
DATABASE_ERRORS: tuple[type[Exception], ...] = (DBAPIError, SQLAlchemyError)


#: PostgreSQL advisory lock held while migrating ("reelscribe" in ASCII).
MIGRATION_LOCK = 0x7265656C73637269


async def migrate(url: str, upgrade: Callable[[str], Awaitable[None]]) -> None:
    """Runs ``upgrade(url)``; on PostgreSQL under an advisory lock, so processes that
    start together (an API and a worker waiting for the same database to come back)
    migrate one after the other instead of colliding on the first CREATE TABLE."""
    if not url.startswith(("postgres", "postgresql")):
        await upgrade(url)
        return
    engine = create_engine(url, poolclass=NullPool)
    try:
        async with engine.connect() as conn:
            await conn.execute(text("SELECT pg_advisory_lock(:key)"), {"key": MIGRATION_LOCK})
            try:
                await upgrade(url)
            finally:
                await conn.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": MIGRATION_LOCK})
    finally:
        await engine.dispose()
