"""Language detection in batched transcription shares the first chunk's encoder pass."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from reelscribe.asr.engine import EngineOptions, LoadedModel, load_model
from reelscribe.pipeline.transcribe import TranscribeOptions, transcribe
from tests.conftest import decode_channel


class CountingEncoder:
    """CTranslate2's Whisper model, counting the 30 s windows its encoder runs on."""

    def __init__(self, ct2: Any) -> None:
        self.ct2 = ct2
        self.windows = 0

    def encode(self, features: Any, *args: Any, **kwargs: Any) -> Any:
        self.windows += int(features.shape[0])
        return self.ct2.encode(features, *args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.ct2, name)


@pytest.fixture(scope="module")
def model(engine_options: EngineOptions) -> LoadedModel:
    return load_model(engine_options)


def test_detection_costs_no_extra_encoder_pass(
    shared_media: Path, model: LoadedModel, engine_options: EngineOptions, monkeypatch: Any
) -> None:
    if model.info.device != "cpu":
        pytest.skip("the shared pass is a CPU optimisation")
    # ~60 s of English then German: VAD makes two chunks, so the first batch holds the
    # reused window and one freshly encoded one.
    audio = decode_channel(shared_media / "multilingual.mp3")
    counter = CountingEncoder(model.whisper.model)
    monkeypatch.setattr(model.whisper, "model", counter)

    def run(language: str | None) -> tuple[int, Any]:
        counter.windows = 0
        # The per-stretch language check (pipeline/languages.py) is off: it re-detects
        # and re-transcribes the German half on purpose, which is not what is measured.
        options = TranscribeOptions(
            engine=engine_options, batched=True, language=language, check_languages=False
        )
        transcript = transcribe(audio, options, model=model)
        return counter.windows, transcript

    detected_windows, detected = run(None)
    forced_windows, forced = run("en")
    assert detected.language == "en"
    assert detected_windows == forced_windows >= 2
    assert [s.text for s in detected.segments] == [s.text for s in forced.segments]
    assert [s.start for s in detected.segments] == [s.start for s in forced.segments]

    # The library's own pipeline pays one more window for the same detection.
    from faster_whisper import BatchedInferencePipeline

    counter.windows = 0
    segments, info = BatchedInferencePipeline(model.whisper).transcribe(
        audio, batch_size=4, beam_size=1, word_timestamps=True, without_timestamps=True
    )
    list(segments)
    assert info.language == "en"
    assert counter.windows == forced_windows + 1
