"""The OpenAI-compatible API under ``/v1``: audio transcriptions and translations, and
the model list. Its errors have OpenAI's shape (:mod:`.errors`); everything else
(keys, scopes, limits, the queue, the workers) is the service's own."""

from __future__ import annotations

from fastapi import APIRouter

from reelscribe.api.v1 import audio, errors, models

router = APIRouter()
router.include_router(audio.router)
router.include_router(models.router)

__all__ = ["errors", "router"]
