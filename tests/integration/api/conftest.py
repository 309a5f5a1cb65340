"""The HTTP API under a real uvicorn server on 127.0.0.1, talked to with httpx.

Each test gets its own server in a background thread, with its own event loop, over a
fresh :class:`Runtime`: SQLite + the database queue + local storage in a temp folder,
or (``backend`` = "postgresql") a database created for the test on the PostgreSQL
server (dropped after) + the Redis Streams queue (Redis database 5, its keys deleted
after) + local storage. Unreachable servers skip those tests with the reason.

The runtime lives on the server's loop (asyncpg connections belong to one loop), so
tests reach it through :meth:`Live.run`, e.g. to claim and complete a job as a worker
would.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import socket
import threading
from collections.abc import Callable, Coroutine, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

import httpx
import pytest
import uvicorn
from fastapi import FastAPI

from reelscribe.api import create_app
from reelscribe.backends.db import EventKind, JobEventRow
from reelscribe.backends.queue import Claim
from reelscribe.config import Settings
from reelscribe.service.runtime import Runtime
from tests.integration.queue.services import (
    delete_prefix,
    reachable_redis,
    temporary_postgres_database,
)

T = TypeVar("T")
ADMIN_SECRET = "rsk_test-admin-secret-0123456789"
SIGNING_KEY = "test-signing-key-0123456789abcdef"
#: Public-looking, but it does not resolve here (no DNS). The submit-time SSRF check
#: refuses names that do not resolve unless REELSCRIBE_ALLOWED_NETWORKS names them (they
#: may resolve only where workers run): the test servers list these two hosts.
MEDIA_URL = "https://media.example/talk.mp4"
UNRESOLVED_HOSTS = ["media.example", "hooks.example"]


@dataclass
class Live:
    base_url: str
    settings: Settings
    runtime: Runtime
    loop: asyncio.AbstractEventLoop
    app: FastAPI

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 30.0) -> T:
        """Runs ``coro`` on the server's loop and returns its result."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def client(self, secret: str | None = ADMIN_SECRET, **kwargs: Any) -> httpx.Client:
        headers = {"Authorization": f"Bearer {secret}"} if secret else {}
        return httpx.Client(base_url=self.base_url, headers=headers, timeout=15.0, **kwargs)

    def claim(self, worker: str = "test-worker") -> Claim:
        claim = self.run(self.runtime.queue.claim(worker, lease_seconds=60.0))
        assert claim is not None, "no job to claim"
        return claim

    def add_events(self, job_id: str, *events: tuple[EventKind, dict[str, Any]]) -> None:
        async def insert() -> None:
            async with self.runtime.engine.begin() as conn:
                for kind, data in events:
                    await conn.execute(
                        JobEventRow.__table__.insert().values(job_id=job_id, kind=kind, data=data)
                    )

        self.run(insert())


def settings_for(root: Path, port: int, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "database_url": f"sqlite:///{root / 'db.sqlite'}",
        "storage_url": f"file://{root / 'blobs'}",
        "signing_key": SIGNING_KEY,
        "admin_api_key": ADMIN_SECRET,
        "host": "127.0.0.1",
        "port": port,
        "cache_dir": root / "cache",
        "models_dir": root / "models",
        "rate_limit_per_minute": 100_000,
        "allowed_networks": UNRESOLVED_HOSTS,
    }
    values.update(overrides)
    return Settings(**values)


@contextlib.contextmanager
def serve(settings: Settings, sock: socket.socket) -> Iterator[Live]:
    ready = threading.Event()
    state: dict[str, Any] = {}

    async def main() -> None:
        async with Runtime(settings) as runtime:
            app = create_app(runtime)
            config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="on")
            server = uvicorn.Server(config)
            state.update(runtime=runtime, server=server, loop=asyncio.get_running_loop(), app=app)
            task = asyncio.create_task(server.serve(sockets=[sock]))
            while not server.started and not task.done():
                await asyncio.sleep(0.01)
            ready.set()
            try:
                await task
            finally:
                # Runtime does not close the Redis client it makes for the queue (yet):
                # closed here so no socket is left to a ResourceWarning.
                redis = getattr(runtime.queue, "redis", None)
                if redis is not None:
                    await redis.aclose()

    def thread_main() -> None:
        try:
            asyncio.run(main())
        except BaseException as exc:  # reported in the test's thread
            state["error"] = exc
        finally:
            ready.set()

    thread = threading.Thread(target=thread_main, name="api-server", daemon=True)
    thread.start()
    ready.wait(60)
    if "error" in state or "server" not in state or not state["server"].started:
        thread.join(5)
        raise RuntimeError("the API server did not start") from state.get("error")
    host, port = sock.getsockname()[:2]
    try:
        yield Live(f"http://{host}:{port}", settings, state["runtime"], state["loop"], state["app"])
    finally:
        state["server"].should_exit = True
        thread.join(30)
        if "error" in state:
            raise state["error"]


def _bound_socket() -> socket.socket:
    # Bound here, before the settings are made: signed links need the real port.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    return sock


def _redis_url() -> str:
    parts = urlsplit(reachable_redis())
    return urlunsplit(parts._replace(path="/5"))


@pytest.fixture(params=["sqlite"])
def backend(request: pytest.FixtureRequest) -> str:
    """Overridden per module: ``pytest.mark.parametrize("backend", [...], indirect=True)``."""
    return str(request.param)


StartApi = Callable[..., Live]


@pytest.fixture
def start_api(tmp_path: Path, backend: str) -> Iterator[StartApi]:
    """Starts a server with settings overrides; every server stops after the test."""
    servers = itertools.count()
    with contextlib.ExitStack() as stack:

        def start(**overrides: Any) -> Live:
            root = tmp_path / f"api{next(servers)}"  # one folder per server
            root.mkdir()
            if backend == "postgresql":
                db_url = stack.enter_context(temporary_postgres_database("api"))
                redis_url = _redis_url()
                stack.callback(lambda: asyncio.run(delete_prefix(redis_url, "reelscribe")))
                overrides = {"database_url": db_url, "queue_url": redis_url} | overrides
            sock = _bound_socket()
            stack.callback(sock.close)
            settings = settings_for(root, sock.getsockname()[1], **overrides)
            return stack.enter_context(serve(settings, sock))

        yield start


@pytest.fixture
def live(start_api: StartApi) -> Live:
    return start_api()


@pytest.fixture
def admin(live: Live) -> Iterator[httpx.Client]:
    with live.client() as client:
        yield client
