"""Loaded Whisper models live in a bounded, least-recently-used cache: a worker that
has loaded more models than it may keep drops the one used longest ago. Real loads of
the packaged model, made distinct by their compute type."""

from __future__ import annotations

from dataclasses import replace

from reelscribe.asr import faster_whisper as engine
from reelscribe.asr.faster_whisper import EngineOptions


def test_loading_past_the_limit_evicts_the_least_recently_used(
    engine_options: EngineOptions,
) -> None:
    base = replace(engine_options, device="cpu", cache_size=2)
    engine.clear_cache()
    try:
        a = engine.load_model(replace(base, compute_type="int8"))
        b = engine.load_model(replace(base, compute_type="float32"))
        assert engine.load_model(replace(base, compute_type="int8")) is a  # a: used last
        engine.load_model(replace(base, compute_type="int16"))  # evicts b, not a
        assert [m.compute_type for m in engine.loaded_models()] == ["int8", "int16"]
        assert engine.load_model(replace(base, compute_type="int8")) is a
        again = engine.load_model(replace(base, compute_type="float32"))
        assert again is not b  # b had gone: loaded anew
        assert len(engine.loaded_models()) == 2
    finally:
        engine.clear_cache()
