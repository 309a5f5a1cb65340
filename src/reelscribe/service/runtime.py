"""Everything a service process holds open: the database engine, the queue and the
blob store, built from :class:`~reelscribe.config.Settings` once per process and
passed to the API and the workers (never created per request or per job).
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import secrets
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Self
from urllib.parse import urlsplit

from reelscribe.backends.db import AsyncEngine, JobStore
from reelscribe.backends.db.engine import migrate
from reelscribe.backends.open import open_database, open_queue, open_storage
from reelscribe.backends.queue import Queue
from reelscribe.backends.storage import BlobStore
from reelscribe.backends.storage.local import FILE_MODE, make_private_dirs
from reelscribe.config import Settings
from reelscribe.errors import UnsafeConfigError
from reelscribe.service.changes import JobChanges


def is_loopback(host: str) -> bool:
    if host in ("localhost", ""):
        return host == "localhost"
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_settings(settings: Settings, *, role: str) -> None:
    """Refuses unsafe combinations at start-up.

    ``role`` is "serve" (API + embedded workers, one machine), "api" or "worker"
    (scale-out processes, possibly on several hosts).
    """
    if settings.allow_anonymous and role in ("serve", "api") and not is_loopback(settings.host):
        raise UnsafeConfigError(
            f"refusing keyless access on {settings.host}: REELSCRIBE_ALLOW_ANONYMOUS is only "
            "allowed on a loopback address; create API keys instead"
        )
    if role in ("api", "worker"):
        shared = []
        if settings.database_url.startswith("sqlite"):
            shared.append("REELSCRIBE_DATABASE_URL is SQLite")
        if settings.storage_url.startswith("file:"):
            shared.append("REELSCRIBE_STORAGE_URL is a local directory")
        if shared and not is_loopback(settings.host) and role == "api":
            raise UnsafeConfigError(
                "a scale-out API needs state every host can reach: "
                + " and ".join(shared)
                + "; use PostgreSQL and S3 (or `reelscribe serve` on one machine)"
            )


def signing_secret(settings: Settings) -> str:
    """The configured secret, else one generated once and kept beside the database
    (fine on one machine; scale-out deployments must configure it)."""
    if settings.signing_key is not None:
        return settings.signing_key.get_secret_value()
    url = urlsplit(settings.database_url)
    base = Path(url.path).parent if url.scheme.startswith("sqlite") else Path.home() / ".reelscribe"
    path = base / "signing.key"
    if not path.exists():
        make_private_dirs(path.parent)
        path.write_text(secrets.token_urlsafe(48))
        path.chmod(0o600)
    return path.read_text().strip()


def _private_database(path: Path) -> None:
    """The SQLite file and its folder, private to this user (0600 in a 0700 folder);
    SQLite gives its -wal and -shm files the database file's mode."""
    if not path.name or path.name.startswith(":"):  # :memory: and the like
        return
    make_private_dirs(path.parent)
    os.close(os.open(path, os.O_WRONLY | os.O_CREAT, FILE_MODE))
    with contextlib.suppress(PermissionError):  # someone else's file: leave it be
        path.chmod(FILE_MODE)


@dataclass
class Runtime:
    settings: Settings
    engine: AsyncEngine = field(init=False)
    jobs: JobStore = field(init=False)
    queue: Queue = field(init=False)
    storage: BlobStore = field(init=False)
    secret: str = field(init=False)
    #: Live views in this process wake when a job here changes (see JobChanges).
    changes: JobChanges = field(init=False, default_factory=JobChanges)
    _stack: AsyncExitStack = field(init=False, default_factory=AsyncExitStack)

    def public_base_url(self) -> str:
        return self.settings.public_base_url or f"http://{self.settings.host}:{self.settings.port}"

    async def __aenter__(self) -> Self:
        try:
            return await self._open()
        except BaseException:  # a dependency is down, say: close what was opened
            await self._stack.aclose()
            self._stack = AsyncExitStack()
            raise

    async def _open(self) -> Self:
        from reelscribe.media.ffmpeg import MediaTools, configure
        from reelscribe.migrations import upgrade_async

        settings = self.settings
        configure(MediaTools.from_settings(settings))  # ffmpeg, encoder, VAAPI device
        if settings.database_url.startswith("sqlite:///"):
            _private_database(Path(settings.database_url.removeprefix("sqlite:///")))
        # Opened (lazily: no connection yet) before migrating, so a missing driver extra
        # is said as such.
        self.engine = open_database(settings.database_url)
        self._stack.push_async_callback(self.engine.dispose)
        await migrate(settings.database_url, upgrade_async)
        self.secret = signing_secret(settings)
        self.jobs = JobStore(self.engine)
        self.queue = await self._stack.enter_async_context(
            open_queue(settings.queue_url, self.engine)
        )
        self.storage = await self._stack.enter_async_context(
            open_storage(
                settings.storage_url,
                signing_key=self.secret,
                public_base_url=f"{self.public_base_url().rstrip('/')}/blobs",
            )
        )
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self._stack.aclose()
