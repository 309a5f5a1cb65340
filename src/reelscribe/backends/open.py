"""Backends opened from the URLs in the settings, all in one place.

======================  ================================  ==========================
URL                     backend                           extra
======================  ================================  ==========================
``sqlite:///path``      the job database on SQLite        (core)
``postgresql://…``      the job database on PostgreSQL    ``postgres`` (asyncpg)
``db``                  a queue in the job database       (core)
``redis://…``           Redis Streams queue               ``redis``
``file:///dir``         local blob storage                (core)
``s3://bucket/…``       S3-compatible blob storage        ``s3``
======================  ================================  ==========================

An optional extra that is missing is an :class:`~reelscribe.errors.ExtraNotInstalledError`
naming the command that installs it (``pip install 'reelscribe[redis]'``), not an
ImportError deep inside a driver; an unknown scheme is an ``InvalidInputError``.
"""

from __future__ import annotations

import importlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from urllib.parse import urlsplit

from sqlalchemy.ext.asyncio import AsyncEngine

from reelscribe.backends.db.engine import async_url, create_engine
from reelscribe.backends.queue import DatabaseQueue, Queue
from reelscribe.backends.storage import BlobStore, LinkSigner, LocalStorage
from reelscribe.errors import ExtraNotInstalledError, InvalidInputError

__all__ = ["need_extra", "open_database", "open_queue", "open_storage"]


def need_extra(module: str, extra: str, what: str) -> None:
    """Refuse, with the command that installs it, when ``extra`` (which provides
    ``module``) is not installed."""
    try:
        importlib.import_module(module)
    except ImportError as exc:
        raise ExtraNotInstalledError(
            f"{what} needs the {extra} extra: pip install 'reelscribe[{extra}]'"
        ) from exc


def open_database(url: str) -> AsyncEngine:
    """The process's engine for ``url`` (create it once; ``await dispose()`` it)."""
    if async_url(url).get_driver_name() == "asyncpg":
        need_extra("asyncpg", "postgres", "a postgresql:// database")
    return create_engine(url)


@asynccontextmanager
async def open_queue(url: str, engine: AsyncEngine) -> AsyncIterator[Queue]:
    """The queue ``url`` names, open for the block: ``db`` or ``redis[s]://…``."""
    if url == "db":
        async with DatabaseQueue(engine) as queue:
            yield queue
        return
    if urlsplit(url).scheme not in ("redis", "rediss"):
        raise InvalidInputError(f"unsupported REELSCRIBE_QUEUE_URL {url!r}: use 'db' or redis://")
    need_extra("redis", "redis", "a redis:// queue")
    from redis.asyncio import Redis

    from reelscribe.backends.queue.redis_streams import RedisStreamQueue

    client = Redis.from_url(url)
    try:
        async with RedisStreamQueue(engine, client) as queue:
            yield queue
    finally:
        await client.aclose()  # the queue does not own its client


def open_storage(
    url: str, *, signing_key: str | bytes | None = None, public_base_url: str | None = None
) -> BlobStore:
    """A store for ``url``, not yet opened: use it as ``async with open_storage(…) as store``.

    ``signing_key`` and ``public_base_url`` (where the HTTP API serves blobs) let a local
    store make download links; S3 presigns with its own credentials and ignores them.
    """
    scheme = urlsplit(url).scheme
    if scheme == "file":
        signer = None if signing_key is None else LinkSigner.from_key(signing_key)
        return LocalStorage.from_url(url, signer=signer, public_base_url=public_base_url)
    if scheme == "s3":
        need_extra("aiobotocore", "s3", "s3:// storage")
        from reelscribe.backends.storage.s3 import S3Storage

        return S3Storage.from_url(url)
    raise InvalidInputError(f"unsupported storage URL {scheme!r}: use file:// or s3://")
