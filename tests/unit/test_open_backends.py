"""Backends come from URLs in one place, and a missing optional extra says which one
to install instead of failing deep inside an import (or as an "internal error")."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import pytest

from reelscribe.backends.db import create_engine
from reelscribe.backends.open import open_database, open_queue, open_storage
from reelscribe.backends.queue import DatabaseQueue
from reelscribe.backends.storage import LocalStorage
from reelscribe.errors import ExtraNotInstalledError, InvalidInputError


def _missing(monkeypatch: pytest.MonkeyPatch, *modules: str) -> None:
    # None in sys.modules is Python's own "this module cannot be imported".
    for name in modules:
        monkeypatch.setitem(sys.modules, name, None)


def test_a_redis_queue_without_the_redis_extra_names_the_extra(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _missing(monkeypatch, "redis", "redis.asyncio")
    engine = create_engine(f"sqlite:///{tmp_path / 'jobs.db'}")

    async def main() -> None:
        async with open_queue("redis://127.0.0.1:6379/0", engine):
            pass  # pragma: no cover - never reached

    with pytest.raises(ExtraNotInstalledError) as caught:
        asyncio.run(main())
    assert "pip install 'reelscribe[redis]'" in str(caught.value)
    assert caught.value.code == "extra_not_installed"
    assert caught.value.user_fault
    assert caught.value.status == 400


def test_s3_storage_without_the_s3_extra_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    _missing(monkeypatch, "aiobotocore")
    with pytest.raises(ExtraNotInstalledError, match=r"pip install 'reelscribe\[s3\]'"):
        open_storage("s3://bucket/prefix?endpoint=http://127.0.0.1:9")


def test_postgres_without_asyncpg_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    _missing(monkeypatch, "asyncpg")
    with pytest.raises(ExtraNotInstalledError, match=r"pip install 'reelscribe\[postgres\]'"):
        open_database("postgresql://127.0.0.1/test")


def test_urls_pick_their_backend(tmp_path: Path) -> None:
    engine = open_database(f"sqlite:///{tmp_path / 'jobs.db'}")

    async def main() -> object:
        async with open_queue("db", engine) as queue:
            return queue

    try:
        assert isinstance(asyncio.run(main()), DatabaseQueue)
    finally:
        asyncio.run(engine.dispose())
    assert isinstance(open_storage((tmp_path / "blobs").as_uri()), LocalStorage)


@pytest.mark.parametrize("url", ["ftp://host/dir", "memory://"])
def test_unknown_storage_schemes_are_refused(url: str) -> None:
    with pytest.raises(InvalidInputError, match="unsupported storage URL"):
        open_storage(url)


def test_unknown_queue_urls_are_refused(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite:///{tmp_path / 'jobs.db'}")

    async def main() -> None:
        async with open_queue("amqp://127.0.0.1/", engine):
            pass  # pragma: no cover - never reached

    with pytest.raises(InvalidInputError, match="REELSCRIBE_QUEUE_URL"):
        asyncio.run(main())
