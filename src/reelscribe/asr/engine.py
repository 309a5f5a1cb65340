"""Moved to :mod:`reelscribe.asr.faster_whisper` (the local engine); kept so that
``from reelscribe.asr.engine import ...`` goes on working."""

from reelscribe.asr.faster_whisper import (
    EngineOptions,
    LoadedModel,
    clear_cache,
    cuda_available,
    load_model,
    loaded_models,
    pick_compute_type,
    pick_device,
)

__all__ = [
    "EngineOptions",
    "LoadedModel",
    "clear_cache",
    "cuda_available",
    "load_model",
    "loaded_models",
    "pick_compute_type",
    "pick_device",
]
