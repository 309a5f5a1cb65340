"""Vocal separation: the voice of a song or a music-heavy video, for ASR to hear.

:mod:`~reelscribe.separation.base` is the contract and the loader; one module per
backend: :mod:`~reelscribe.separation.spleeter` (offline, in its own virtualenv built
by :mod:`~reelscribe.separation.spleeter_env`) and :mod:`~reelscribe.separation.demucs`.
"""

from reelscribe.separation.base import (
    SAMPLE_RATE,
    SeparateOptions,
    Separator,
    load_separator,
)

__all__ = ["SAMPLE_RATE", "SeparateOptions", "Separator", "load_separator"]
