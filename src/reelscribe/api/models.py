"""``GET /api/models``: the Whisper models a job may name (``options.model``)."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel, Field

from reelscribe.api.deps import ReadKey, RuntimeDep
from reelscribe.api.errors import error_responses
from reelscribe.asr.catalog import allowed_models

router = APIRouter(prefix="/api/models", tags=["models"], responses=error_responses(401, 403, 429))


class ModelPublic(BaseModel):
    name: str = Field(description="What to put in options.model.")
    default: bool = Field(description="Used when a job names no model.")


class ModelList(BaseModel):
    models: list[ModelPublic]


@router.get("", summary="The models a job may use (REELSCRIBE_MODEL_ALLOWLIST)")
async def list_models(key: ReadKey, runtime: RuntimeDep) -> ModelList:
    del key  # the read scope is the check
    settings = runtime.settings
    return ModelList(
        models=[ModelPublic(name=n, default=n == settings.model) for n in allowed_models(settings)]
    )
