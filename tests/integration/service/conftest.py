"""A service runtime on SQLite and local storage in a temporary folder."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from reelscribe.config import Settings
from reelscribe.service.runtime import Runtime


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def service_settings(root: Path, models_dir: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "database_url": f"sqlite:///{root / 'db.sqlite'}",
        "storage_url": f"file://{root / 'blobs'}",
        "signing_key": "test-signing-key-0123456789",
        "models_dir": models_dir,
        "cache_dir": root / "cache",
        "lease_seconds": 3.0,
        "heartbeat_seconds": 0.3,
        "worker_concurrency": 1,
    }
    values.update(overrides)
    return Settings(**values)


@pytest.fixture
async def runtime(tmp_path: Path, models_dir: Path) -> AsyncIterator[Runtime]:
    async with Runtime(service_settings(tmp_path, models_dir)) as rt:
        yield rt
