"""Runs a plan's stages in order for one request (see :mod:`.stages` for the stages
and :mod:`.plan` for how a request is built).

It knows nothing about terminals, HTTP or queues: the CLI calls it directly and the
service's workers call it per job, each with its own progress callback.
"""

from __future__ import annotations

import time
from pathlib import Path

from reelscribe.asr.routing import Engines
from reelscribe.pipeline.context import PipelineResult, RunContext, StageLimits
from reelscribe.pipeline.plan import PipelineRequest
from reelscribe.pipeline.stages import STAGES, output_stem
from reelscribe.progress import ProgressCallback, report

__all__ = ["PipelineRequest", "PipelineResult", "StageLimits", "output_stem", "run"]


def run(
    request: PipelineRequest,
    out_dir: Path,
    work_dir: Path,
    progress: ProgressCallback | None = None,
    limits: StageLimits | None = None,
    *,
    engines: Engines | None = None,
) -> PipelineResult:
    out_dir.mkdir(parents=True, exist_ok=True)
    work_dir.mkdir(parents=True, exist_ok=True)
    ctx = RunContext(request, out_dir, work_dir, progress, limits or StageLimits(),
                     engines=engines)  # fmt: skip
    timings: dict[str, float] = {}
    for stage in STAGES:
        if not stage.wanted(request):
            continue
        report(progress, stage.name, None)
        started = time.perf_counter()
        stage.run(ctx)
        timings[stage.name] = timings.get(stage.name, 0.0) + time.perf_counter() - started
    fetched, media = ctx.need_media()
    return PipelineResult(
        outputs=ctx.outputs,
        fetched=fetched,
        media=media,
        transcript=ctx.transcript,
        clip=ctx.clip,
        burned=ctx.burned,
        start=ctx.start,
        end=ctx.end,
        timings=timings,
        moderation=ctx.moderation,
    )
