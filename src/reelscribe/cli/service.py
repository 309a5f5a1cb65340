"""Commands that start the service's long-running processes: serve, api and worker
(the processes themselves are in :mod:`reelscribe.launch`)."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from reelscribe.cli.app import app
from reelscribe.cli.options import HostOpt, PortOpt
from reelscribe.config import Settings, get_settings


def _service_settings(**overrides: Any) -> Settings:
    values = {k: v for k, v in overrides.items() if v is not None}
    return get_settings().model_copy(update=values)


def _access_line(settings: Settings) -> str:
    """How callers get in, said at start-up: a new user's first question."""
    if settings.allow_anonymous:
        return ("access: keyless (loopback only; every local caller is admin). To require "
                "API keys: --no-anonymous or REELSCRIBE_ALLOW_ANONYMOUS=false")  # fmt: skip
    if settings.admin_api_key is not None:
        return ("access: API keys required (Authorization: Bearer <key>); the admin key is "
                "REELSCRIBE_ADMIN_API_KEY; create more with POST /api/keys")  # fmt: skip
    return ("access: API keys required (Authorization: Bearer <key>). To get one, start with "
            "REELSCRIBE_ADMIN_API_KEY=<a secret> (an admin key; POST /api/keys makes more), "
            "or on loopback use keyless access (--anonymous)")  # fmt: skip


def _run_service(
    settings: Settings, *, role: str, api: bool, workers: int, burst: bool = False
) -> None:
    import asyncio

    from reelscribe.launch import run_service
    from reelscribe.logs import configure

    configure()

    def ready(url: str) -> None:
        if api:
            typer.echo(f"reelscribe {role} on {url}  (web UI: {url}/, API docs: {url}/docs)")
            typer.echo(_access_line(settings))
        else:
            typer.echo(
                f"reelscribe worker started ({workers} x {settings.worker_concurrency} slots)"
            )

    try:
        import uvloop  # a faster event loop (uvicorn[standard]); asyncio's own otherwise
    except ImportError:
        run = asyncio.run
    else:
        run = uvloop.run
    run(run_service(settings, role=role, api=api, workers=workers, burst=burst,
                    on_ready=ready))  # fmt: skip


@app.command()
def serve(
    host: HostOpt = None,
    port: PortOpt = None,
    workers: Annotated[
        int | None, typer.Option(help="Embedded workers (REELSCRIBE_EMBEDDED_WORKERS).")
    ] = None,
    anonymous: Annotated[
        bool | None,
        typer.Option(
            "--anonymous/--no-anonymous",
            help="Allow requests without an API key (loopback only). Default: on when "
            "bound to loopback, unless REELSCRIBE_ALLOW_ANONYMOUS says otherwise.",
        ),
    ] = None,
) -> None:
    """Run the API, the web UI and embedded workers in one process (one machine)."""
    from reelscribe.service.runtime import is_loopback

    settings = _service_settings(host=host, port=port, embedded_workers=workers,
                                 allow_anonymous=anonymous)  # fmt: skip
    if anonymous is None and "allow_anonymous" not in settings.model_fields_set:
        # One machine, one user: the README's quick start works with no key to make.
        # Only where nobody else can connect; elsewhere keys stay required.
        settings = settings.model_copy(update={"allow_anonymous": is_loopback(settings.host)})
    _run_service(settings, role="serve", api=True, workers=settings.embedded_workers)


@app.command()
def api(host: HostOpt = None, port: PortOpt = None) -> None:
    """Run only the HTTP API (scale-out: workers run elsewhere)."""
    settings = _service_settings(host=host, port=port)
    _run_service(settings, role="api", api=True, workers=0)


@app.command()
def worker(
    concurrency: Annotated[
        int | None, typer.Option(help="Jobs at once (REELSCRIBE_WORKER_CONCURRENCY).")
    ] = None,
    burst: Annotated[bool, typer.Option(help="Drain the queue, then exit.")] = False,
    remote: Annotated[
        str | None,
        typer.Option(
            help="Work for the API at this URL over HTTP only (REELSCRIBE_REMOTE_URL), with "
            "a 'worker' key in REELSCRIBE_REMOTE_TOKEN; no database, queue or storage "
            "settings needed."
        ),
    ] = None,
) -> None:
    """Run a worker: claim jobs from the queue and process them."""
    settings = _service_settings(worker_concurrency=concurrency, remote_url=remote)
    if settings.remote_url:
        _run_remote_worker(settings, burst=burst)
        return
    _run_service(settings, role="worker", api=False, workers=1, burst=burst)


def _run_remote_worker(settings: Settings, *, burst: bool) -> None:
    import asyncio

    from reelscribe.launch import run_remote_worker
    from reelscribe.logs import configure

    configure()

    def ready(url: str) -> None:
        typer.echo(f"reelscribe worker for {url} started "
                   f"({settings.worker_concurrency} slots, HTTP only)")  # fmt: skip

    asyncio.run(run_remote_worker(settings, burst=burst, on_ready=ready))
