"""The database: tables, engine, and one store module per thing stored (jobs,
events, uploads, keys, stats, workers). Layers above import ``AsyncEngine`` from here,
never from SQLAlchemy."""

from sqlalchemy.ext.asyncio import AsyncEngine

from reelscribe.backends.db.engine import async_url, create_engine, reader
from reelscribe.backends.db.enums import EventKind, JobStatus, Priority
from reelscribe.backends.db.schema import Base, JobEventRow, JobRow
from reelscribe.backends.db.store import JobStore, new_job_id

__all__ = [
    "AsyncEngine",
    "Base",
    "EventKind",
    "JobEventRow",
    "JobRow",
    "JobStatus",
    "JobStore",
    "Priority",
    "async_url",
    "create_engine",
    "new_job_id",
    "reader",
]
