"""Database migrations (Alembic), run from code rather than an ``alembic.ini``::

    from reelscribe.migrations import upgrade
    upgrade("sqlite:///jobs.db")            # or "postgresql://user@host/db"

Inside a running event loop use ``await upgrade_async(url)``. The same revisions run
on SQLite and PostgreSQL; ``env.py`` turns on batch mode so that later revisions can
alter SQLite tables (which SQLite only allows by rebuilding them).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection

from reelscribe.backends.db.engine import create_engine

SCRIPT_LOCATION = Path(__file__).resolve().parent


def alembic_config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(SCRIPT_LOCATION))
    return config


async def upgrade_async(database_url: str, revision: str = "head") -> None:
    await _run(database_url, lambda config: command.upgrade(config, revision))


async def downgrade_async(database_url: str, revision: str = "base") -> None:
    await _run(database_url, lambda config: command.downgrade(config, revision))


def upgrade(database_url: str, revision: str = "head") -> None:
    """Migrates the database to ``revision`` (default: the newest)."""
    asyncio.run(upgrade_async(database_url, revision))


def downgrade(database_url: str, revision: str = "base") -> None:
    """Migrates the database down to ``revision`` (default: empty)."""
    asyncio.run(downgrade_async(database_url, revision))


async def _run(database_url: str, action: Callable[[Config], None]) -> None:
    # Alembic is synchronous; run_sync hands it a sync Connection over the async
    # driver, and env.py picks that connection up from the config's attributes.
    engine = create_engine(database_url)
    try:
        async with engine.begin() as conn:
            await conn.run_sync(_with_connection, action)
    finally:
        await engine.dispose()


def _with_connection(connection: Connection, action: Callable[[Config], None]) -> None:
    config = alembic_config()
    config.attributes["connection"] = connection
    action(config)
