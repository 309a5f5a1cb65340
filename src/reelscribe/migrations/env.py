"""Alembic's entry point; reelscribe.migrations hands it an open connection."""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection

from reelscribe.backends.db.schema import Base

connection = context.config.attributes.get("connection")
if not isinstance(connection, Connection):
    raise RuntimeError("run migrations through reelscribe.migrations.upgrade(database_url)")

context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    # SQLite alters a table by copying it; batch mode does that for later revisions.
    render_as_batch=True,
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
