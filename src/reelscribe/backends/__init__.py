"""Pluggable I/O behind small protocols, one module per implementation.

``db/``
    The job store: SQLAlchemy tables ``jobs`` and ``job_events`` and the async engine
    (SQLite through aiosqlite, PostgreSQL through asyncpg), chosen by URL.
``queue/``
    The :class:`~reelscribe.backends.queue.base.Queue` protocol and its implementations:
    ``DatabaseQueue`` (the default; the jobs table is the queue) and ``RedisStreamQueue``
    (Redis Streams deliver job ids; leases and state stay in the jobs table).
``storage/``
    Object storage for sources, clips and results (local disk or S3), by URL.

Backends execute named operations; the rules of a job's life (who may submit what,
what a retry means to a user) belong to the service layer above them.
"""
