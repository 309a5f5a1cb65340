"""``reelscribe estimate``: a transcribe run's time and cost, without running it.

It takes exactly ``transcribe``'s flags (less ``--out``/``--quiet``): the signature is
copied from ``transcribe``, so the two cannot drift.
"""

from __future__ import annotations

import inspect
import json
import typing
from collections.abc import Callable
from typing import Any

import typer

from reelscribe.cli.app import app
from reelscribe.cli.local import transcribe, transcribe_plan


def estimate(**values: Any) -> None:
    """Estimate a transcribe run's time and cost without running it (the flags of
    transcribe). Speeds come from the job database's finished jobs (REELSCRIBE_DATABASE_URL),
    else built-in defaults."""
    import asyncio

    from reelscribe.pipeline.estimate import Prices, engine_of_route, estimate_run
    from reelscribe.pipeline.remote_probe import probe_source
    from reelscribe.service.estimates import deployment_speeds, device_of

    plan, settings = transcribe_plan(values)
    request = plan.request
    media = probe_source(str(request.source), request.fetch,
                         max_bytes=settings.estimate_probe_max_bytes,
                         deadline=settings.estimate_probe_timeout)  # fmt: skip
    speeds, note = asyncio.run(deployment_speeds(settings))
    result = estimate_run(
        [s.name for s in plan.stages], media.duration, request.time_range,
        max_seconds=settings.max_duration, speeds=speeds,
        prices=Prices.from_settings(settings), model=values["model"] or settings.model,
        device=device_of(settings.device), probe=media.method,
        engine=engine_of_route(request.transcribe.route),
    )  # fmt: skip
    if note:
        typer.echo(f"reelscribe: default speeds: {note}", err=True)
    if values["as_json"]:
        typer.echo(json.dumps(result.to_dict() | {"note": note}, indent=2))
        return
    typer.echo(f"{request.source}: {result.media_seconds:g} s of media "
               f"(the source lasts {result.source_duration:g} s)")  # fmt: skip
    for step in result.steps:
        basis = f"measured ({step.samples} jobs)" if step.basis == "measured" else "default"
        typer.echo(f"  {step.name:<14}{step.seconds:>9.2f} s  {basis}")
    cost = result.cost
    typer.echo(f"  {'total':<14}{result.seconds:>9.2f} s  on {result.device}, model {result.model}")
    typer.echo(f"  {'cost':<14}{cost.total:>9.4f} {cost.currency} "
               f"(compute {cost.compute:g}, audio {cost.audio:g})")  # fmt: skip


def _share_flags(
    command: Callable[..., None], like: Callable[..., None], *, without: tuple[str, ...]
) -> None:
    """Gives ``command`` the flags of ``like`` (less ``without``), so the two cannot drift."""
    signature = inspect.signature(like, eval_str=True)
    params = [p for name, p in signature.parameters.items() if name not in without]
    command.__signature__ = signature.replace(parameters=params)  # type: ignore[attr-defined]
    hints = typing.get_type_hints(like, include_extras=True)
    command.__annotations__ = {p.name: hints[p.name] for p in params}


_share_flags(estimate, transcribe, without=("out", "quiet"))
app.command(name="estimate")(estimate)
