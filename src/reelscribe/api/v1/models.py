"""``GET /v1/models``: the models this server can run, in OpenAI's list shape.

``whisper-1`` comes first: it is what OpenAI clients ask for, and it runs the server's
default model.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from reelscribe.api.deps import get_services
from reelscribe.api.v1.audio import ReaderKey
from reelscribe.asr.catalog import allowed_models
from reelscribe.errors import ModelNotFoundError
from reelscribe.service.transcriptions import OPENAI_MODEL

router = APIRouter(prefix="/v1", tags=["openai"], include_in_schema=False)


def _model(name: str) -> dict[str, Any]:
    # "created" is a Unix time in OpenAI's schema; these models have no such date.
    return {"id": name, "object": "model", "created": 0, "owned_by": "reelscribe"}


def _names(request: Request) -> list[str]:
    settings = get_services(request).runtime.settings
    return list(dict.fromkeys([OPENAI_MODEL, *allowed_models(settings)]))


@router.get("/models", summary="List models (OpenAI-compatible)")
async def list_models(request: Request, key: ReaderKey) -> dict[str, Any]:
    return {"object": "list", "data": [_model(name) for name in _names(request)]}


@router.get("/models/{model:path}", summary="Read a model (OpenAI-compatible)")
async def get_model(model: str, request: Request, key: ReaderKey) -> dict[str, Any]:
    if model not in _names(request):
        raise ModelNotFoundError(
            f"The model '{model}' does not exist or you do not have access to it."
        )
    return _model(model)
