"""The estimate and actual objects of ``POST /api/estimates`` and of a job
(see :mod:`reelscribe.pipeline.estimate`)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field


class CostPublic(BaseModel):
    compute: float = Field(description="Worker time at the hourly price of its device.")
    audio: float = Field(description="Audio minutes at the engine's per-minute price.")
    total: float
    currency: str


class StepEstimatePublic(BaseModel):
    name: str = Field(description="The step, as /api/jobs/{id}/steps names it.")
    seconds: float
    seconds_per_media_second: float
    basis: Literal["measured", "default"] = Field(
        description="measured: the median of this deployment's finished jobs; default: a "
        "built-in figure, until this step has been measured."
    )
    samples: int = Field(description="Finished steps the speed is the median of.")


class EstimatePublic(BaseModel):
    source_duration: float = Field(description="The whole source's duration (seconds).")
    media_seconds: float = Field(description="The part the job covers (its range).")
    steps: list[StepEstimatePublic]
    seconds: float = Field(description="Processing time, all steps together.")
    cost: CostPublic
    model: str
    device: str
    engine: str
    probe: str = Field(description="How the duration was learnt: upload, range, ytdlp, storage.")
    basis: Literal["measured", "default"] = Field(
        description="measured when every step's speed is measured."
    )


class ActualPublic(BaseModel):
    media_seconds: float
    steps: dict[str, float] = Field(description="Seconds each step took.")
    seconds: float = Field(description="Processing time, all steps together.")
    cost: CostPublic
    model: str
    device: str
    engine: str


def estimate_public(data: Any) -> EstimatePublic | None:
    """A stored estimate, or None (none stored, or one of an older shape)."""
    if not isinstance(data, dict):
        return None
    try:
        return EstimatePublic.model_validate(data)
    except ValueError:
        return None
