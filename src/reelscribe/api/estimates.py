"""``POST /api/estimates``: what a job would take and cost, before submitting it.

The body is the body of ``POST /api/jobs``; nothing is queued or downloaded.
"""

from __future__ import annotations

from typing import cast

from fastapi import APIRouter, Request

from reelscribe.api.deps import SubmitKey, get_services
from reelscribe.api.errors import error_responses
from reelscribe.api.estimate_schemas import EstimatePublic
from reelscribe.api.schemas import JobCreate
from reelscribe.service.estimates import EstimateService

router = APIRouter(
    prefix="/api/estimates",
    tags=["jobs"],
    responses=error_responses(400, 401, 403, 404, 422, 429, 503),
)


def estimates_of(request: Request) -> EstimateService:
    """The app's estimate service, made on first use."""
    state = request.app.state
    if getattr(state, "estimates", None) is None:
        services = get_services(request)
        state.estimates = EstimateService(services.runtime, services.uploads)
    return cast(EstimateService, state.estimates)


@router.post(
    "",
    summary="Estimate a job's time and cost without running it",
    description="The same body as POST /api/jobs. The source's duration is probed without "
    "downloading it; each step's time comes from the speeds this deployment measured on "
    "finished jobs (or a built-in default, labelled so); the cost from the configured prices.",
)
async def create_estimate(spec: JobCreate, request: Request, key: SubmitKey) -> EstimatePublic:
    estimate = await estimates_of(request).estimate(spec, key)
    return EstimatePublic.model_validate(estimate.to_dict())
