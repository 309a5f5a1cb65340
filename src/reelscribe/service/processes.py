"""The long-running processes: ``serve`` (API + embedded workers on one machine),
``api`` and ``worker`` (scale-out). Each opens one :class:`Runtime` and runs its parts
as tasks on one event loop until SIGINT/SIGTERM.

Shutdown: the API stops accepting connections, workers stop claiming and get
``shutdown_grace_seconds`` to finish the job in hand (then release it to the queue).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Awaitable, Callable
from typing import Any

from reelscribe.config import Settings
from reelscribe.service import retention
from reelscribe.service.runtime import Runtime, check_settings

log = logging.getLogger("reelscribe.service")


async def _dispatch(runtime: Runtime, stop: asyncio.Event) -> None:
    from reelscribe.service.webhooks import Dispatcher

    allowed = tuple(runtime.settings.allowed_networks)
    async with Dispatcher(runtime.engine, runtime.secret, allowed_networks=allowed) as dispatcher:
        await dispatcher.run(stop)


async def _background(runtime: Runtime, stop: asyncio.Event) -> list[asyncio.Task[Any]]:
    """The webhook dispatcher and the retention sweeper: idempotent loops, safe to run
    in every process."""
    return [
        asyncio.create_task(_dispatch(runtime, stop)),
        asyncio.create_task(retention.run(runtime, stop)),
    ]


def _on_signals(stop: asyncio.Event) -> None:
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)


async def run_service(
    settings: Settings,
    *,
    role: str,
    api: bool,
    workers: int,
    burst: bool = False,
    on_ready: Callable[[str], Awaitable[None] | None] | None = None,
) -> None:
    """Runs the parts of one process (``role``: serve, api or worker)."""
    check_settings(settings, role=role)
    stop = asyncio.Event()
    async with Runtime(settings) as runtime:
        tasks: list[asyncio.Task[Any]] = [*await _background(runtime, stop)]
        worker_objs = []
        if workers:
            # Imported only here: the pipeline (yt-dlp, PyAV, NumPy) is ~60 MB an
            # API-only process never needs.
            from reelscribe.worker import Worker

            worker_objs = [Worker(runtime) for _ in range(workers)]
        for w in worker_objs:
            w.stop = stop
        worker_tasks = [asyncio.create_task(w.run(burst=burst)) for w in worker_objs]
        server = None
        if api:
            import uvicorn

            from reelscribe.api.app import create_app

            config = uvicorn.Config(create_app(runtime), host=settings.host, port=settings.port,
                                    log_level="warning", access_log=False,
                                    timeout_graceful_shutdown=5)  # fmt: skip
            server = uvicorn.Server(config)
            # uvicorn's own handlers would swallow the signal; ours stop everything.
            server.capture_signals = contextlib.nullcontext  # type: ignore[method-assign,assignment]
            tasks.append(asyncio.create_task(server.serve()))
        _on_signals(stop)
        if on_ready is not None:
            result = on_ready(runtime.public_base_url())
            if asyncio.iscoroutine(result):
                await result
        if burst and not api:
            await asyncio.gather(*worker_tasks)
            stop.set()
        else:
            await stop.wait()
        log.info("shutting down")
        if server is not None:
            server.should_exit = True
        await asyncio.gather(*worker_tasks, return_exceptions=True)
        await asyncio.gather(*tasks, return_exceptions=True)
