"""The long-running processes: ``serve`` (API + embedded workers on one machine),
``api`` and ``worker`` (scale-out). Each opens one :class:`Runtime` and runs its parts
as tasks on one event loop until SIGINT/SIGTERM.

This is the composition root: it sits above ``api/``, ``worker.py`` and ``service/``
and wires them together, so none of those imports it (or each other upwards).

Start-up never gives up on a dependency that is down: see :func:`open_runtime`.
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

from reelscribe.backends.faults import Retrier, describe, is_transient, sleep_unless
from reelscribe.config import Settings
from reelscribe.service import retention
from reelscribe.service.runtime import Runtime, check_settings

log = logging.getLogger("reelscribe.service")


async def _dispatch(runtime: Runtime, stop: asyncio.Event) -> None:
    from reelscribe.webhooks import Dispatcher

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


class _Gate:
    """The API's ASGI app while the runtime cannot be opened yet (the database, Redis
    or storage is down at start-up): ``/healthz`` answers, ``/readyz`` says unready
    and every other path gets 503 + Retry-After in the API's error shape. Once the
    runtime is open, :attr:`app` is set and every request goes to it."""

    def __init__(self) -> None:
        self.app: Any = None
        self.reason = "starting"

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":  # the real app's lifespan is run by run_service
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        if self.app is not None:
            await self.app(scope, receive, send)
            return
        if scope["type"] != "http":
            return  # a websocket: closed without an answer
        from fastapi.responses import JSONResponse

        from reelscribe.api.errors import error_response

        path = scope.get("path", "")
        response: Any
        if path == "/healthz":
            response = JSONResponse({"status": "ok"})
        elif path == "/readyz":
            check = {"ok": False, "seconds": 0.0, "error": self.reason}
            body = {"status": "unready", "checks": {"startup": check}}
            response = JSONResponse(body, status_code=503, headers={"Retry-After": "5"})
        else:
            response = error_response(
                503, "unavailable", f"the service is starting: {self.reason}",
                headers={"Retry-After": "5"},
            )  # fmt: skip
        await response(scope, receive, send)


async def open_runtime(
    settings: Settings, stop: asyncio.Event, gate: _Gate | None = None
) -> Runtime | None:
    """Opens the runtime, retrying with backoff while a dependency is unreachable
    (logged once per outage); None if ``stop`` was set first. Errors that are not
    transient (a bad URL, a bad setting) are raised at once."""
    retrier = Retrier("start-up (database, queue, storage)", log,
                      cap=settings.backend_retry_max_seconds)  # fmt: skip
    while not stop.is_set():
        runtime = Runtime(settings)
        try:
            await runtime.__aenter__()
        except Exception as exc:
            if not is_transient(exc):
                raise
            if gate is not None:
                gate.reason = describe(exc)
            if await sleep_unless(stop, retrier.failed(exc)):
                return None
            continue
        retrier.succeeded()
        return runtime
    return None


async def _serve_app(runtime: Runtime, gate: _Gate, stop: asyncio.Event) -> None:
    """Builds the real app, runs its start-up (retried through outages) and hands it
    to the gate; runs its shutdown when ``stop`` is set."""
    from reelscribe.api.app import create_app

    app = create_app(runtime)
    retrier = Retrier("API start-up", log, cap=runtime.settings.backend_retry_max_seconds)
    while not stop.is_set():
        try:
            async with app.router.lifespan_context(app):
                retrier.succeeded()
                gate.app = app
                await stop.wait()
            return
        except Exception as exc:
            if gate.app is not None or not is_transient(exc):
                raise
            gate.reason = describe(exc)
            await sleep_unless(stop, retrier.failed(exc))


async def _supervise(
    runtime: Runtime, stop: asyncio.Event, worker_tasks: list[asyncio.Task[Any]]
) -> None:
    """Waits for ``stop``; a worker that ends before it (a bug: outages never end one)
    is logged and started again after a pause, so the process never sits there alive
    with no worker. ``worker_tasks`` is updated in place."""
    retrier = Retrier("worker task", log, cap=runtime.settings.backend_retry_max_seconds)
    stopper = asyncio.ensure_future(stop.wait())
    try:
        while not stop.is_set():
            await asyncio.wait([stopper, *worker_tasks], return_when=asyncio.FIRST_COMPLETED)
            for i, task in enumerate(worker_tasks):
                if not task.done() or stop.is_set():
                    continue
                error = None if task.cancelled() else task.exception()
                log.error("a worker ended unexpectedly; starting it again", exc_info=error)
                if await sleep_unless(stop, retrier.failed(error or RuntimeError("ended"))):
                    return
                from reelscribe.worker import Worker  # only where workers run

                worker = Worker(runtime)
                worker.stop = stop
                worker_tasks[i] = asyncio.create_task(worker.run())
    finally:
        stopper.cancel()


async def run_service(
    settings: Settings,
    *,
    role: str,
    api: bool,
    workers: int,
    burst: bool = False,
    on_ready: Callable[[str], Awaitable[None] | None] | None = None,
) -> None:
    """Runs the parts of one process (``role``: serve, api or worker).

    A database, queue or storage that is down at start-up does not stop it: the
    process retries (the API meanwhile answers ``/healthz``, and 503 elsewhere) until
    it is back. Then it runs until SIGINT/SIGTERM; each part rides out later outages
    on its own (see :mod:`reelscribe.backends.faults`)."""
    check_settings(settings, role=role)
    stop = asyncio.Event()
    _on_signals(stop)
    gate = _Gate()
    server = None
    server_task: asyncio.Task[Any] | None = None
    if api:
        import uvicorn

        config = uvicorn.Config(gate, host=settings.host, port=settings.port,
                                log_level="warning", access_log=False, interface="asgi3",
                                timeout_graceful_shutdown=5)  # fmt: skip
        server = uvicorn.Server(config)
        # uvicorn's own handlers would swallow the signal; ours stop everything.
        server.capture_signals = contextlib.nullcontext  # type: ignore[method-assign,assignment]
        server_task = asyncio.create_task(server.serve())
    try:
        runtime = await open_runtime(settings, stop, gate)
        if runtime is None:
            return
        try:
            await _run_parts(runtime, stop, api=api, workers=workers, burst=burst,
                             gate=gate, on_ready=on_ready)  # fmt: skip
        finally:
            await runtime.__aexit__(None, None, None)
    finally:
        if server is not None and server_task is not None:
            server.should_exit = True
            await asyncio.gather(server_task, return_exceptions=True)


async def _run_parts(
    runtime: Runtime,
    stop: asyncio.Event,
    *,
    api: bool,
    workers: int,
    burst: bool,
    gate: _Gate,
    on_ready: Callable[[str], Awaitable[None] | None] | None,
) -> None:
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
    if api:
        tasks.append(asyncio.create_task(_serve_app(runtime, gate, stop)))
        while gate.app is None and not stop.is_set() and not tasks[-1].done():
            await asyncio.sleep(0.02)
    if on_ready is not None:
        result = on_ready(runtime.public_base_url())
        if asyncio.iscoroutine(result):
            await result
    if burst and not api:
        await asyncio.gather(*worker_tasks)
        stop.set()
    else:
        await _supervise(runtime, stop, worker_tasks)
    log.info("shutting down")
    await asyncio.gather(*worker_tasks, return_exceptions=True)
    await asyncio.gather(*tasks, return_exceptions=True)


async def run_remote_worker(
    settings: Settings,
    *,
    burst: bool = False,
    on_ready: Callable[[str], Awaitable[None] | None] | None = None,
) -> None:
    """Runs a worker that reaches the service only through its HTTP API
    (``settings.remote_url``, with the ``worker``-scope key ``settings.remote_token``):
    no database, queue or storage is opened here. The model is loaded once; an API
    that is down is ridden out like any outage (see :mod:`reelscribe.hub.remote`)."""
    from reelscribe.errors import InvalidInputError
    from reelscribe.hub.remote import RemoteHub
    from reelscribe.media.ffmpeg import MediaTools, configure
    from reelscribe.worker import Worker

    if not settings.remote_url:
        raise InvalidInputError("a remote worker needs --remote URL (REELSCRIBE_REMOTE_URL)")
    if settings.remote_token is None:
        raise InvalidInputError(
            "a remote worker needs a 'worker' API key in REELSCRIBE_REMOTE_TOKEN"
        )
    stop = asyncio.Event()
    _on_signals(stop)
    configure(MediaTools.from_settings(settings))  # ffmpeg, encoder, VAAPI device
    hub = RemoteHub(settings.remote_url, settings.remote_token.get_secret_value(),
                    timeout=settings.http_timeout,
                    claim_wait=settings.remote_claim_wait_seconds)  # fmt: skip
    retrier = Retrier("remote worker", log, cap=settings.backend_retry_max_seconds)
    async with hub:
        if on_ready is not None:
            result = on_ready(hub.base_url)
            if asyncio.iscoroutine(result):
                await result
        while True:
            worker = Worker(hub, settings)
            worker.stop = stop
            try:
                await worker.run(burst=burst)
            except Exception as exc:  # a bug: outages never end a worker
                log.error("the worker ended unexpectedly; starting it again", exc_info=exc)
                if await sleep_unless(stop, retrier.failed(exc)):
                    return
                continue
            if burst or stop.is_set():
                return
