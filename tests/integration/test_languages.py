"""Speech in more than one language: multilingual.mp3 is the MIT licence read in
English (0-30 s), then in German (30-60 s). Without a forced language each half comes
out in its own language, with each segment's language set; a forced language and
``translate`` still work over the mix."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from reelscribe.asr.engine import EngineOptions, LoadedModel, load_model
from reelscribe.formats import render
from reelscribe.models import Transcript
from reelscribe.pipeline.transcribe import TranscribeOptions, transcribe
from tests.conftest import decode_channel, normalise_words

pytestmark = pytest.mark.media

#: The German half; a segment starting later is German speech.
SWITCH = 29.5
GERMAN_ONLY = {"der", "die", "und", "zu", "recht", "diese", "das", "mit", "unter"}
ENGLISH = {"the", "software", "permission", "to", "and", "of", "copy"}


@pytest.fixture(scope="module")
def model(engine_options: EngineOptions) -> LoadedModel:
    return load_model(engine_options)


def _halves(t: Transcript) -> tuple[list[str], list[str]]:
    english = [w for s in t.segments if s.end <= SWITCH + 1 for w in normalise_words(s.text)]
    german = [w for s in t.segments if s.start >= SWITCH for w in normalise_words(s.text)]
    return english, german


@pytest.mark.parametrize("batched", [False, True], ids=["sequential", "batched"])
def test_each_half_in_its_own_language(
    shared_media: Path, model: LoadedModel, engine_options: EngineOptions, batched: bool
) -> None:
    options = TranscribeOptions(engine=engine_options, batched=batched)
    t = transcribe(shared_media / "multilingual.mp3", options, model=model)
    assert t.languages == ("en", "de")
    for segment in t.segments:
        assert segment.language == ("en" if segment.start < SWITCH else "de"), segment
    english, german = _halves(t)
    assert len(set(english) & ENGLISH) >= 5, english
    assert len(set(german) & GERMAN_ONLY) >= 5, german
    # The German half is covered: its speech is not lost.
    assert sum(s.end - s.start for s in t.segments if s.start >= SWITCH) > 20
    assert not [w for w in t.warnings if w.start >= SWITCH and w.reason == "uncovered_speech"]
    assert t.segments == tuple(sorted(t.segments, key=lambda s: s.start))
    assert [s.id for s in t.segments] == list(range(len(t.segments)))

    document = json.loads(render(t, "json"))
    assert document["languages"] == ["en", "de"]
    assert {s["language"] for s in document["segments"]} == {"en", "de"}
    markdown = render(t, "md")
    assert markdown.index("*Language: en*") < markdown.index("*Language: de*")


def test_translate_gives_english_for_the_german_half(
    shared_media: Path, model: LoadedModel, engine_options: EngineOptions
) -> None:
    options = TranscribeOptions(engine=engine_options, task="translate")
    t = transcribe(shared_media / "multilingual.mp3", options, model=model)
    english, german = _halves(t)
    assert len(set(german) & ENGLISH) >= 3, german  # English text ...
    assert len(set(german) & GERMAN_ONLY) <= 1, german  # ... not German
    assert sum(s.end - s.start for s in t.segments if s.start >= SWITCH) > 15
    # The segments still say what was spoken.
    assert {s.language for s in t.segments if s.start >= SWITCH} == {"de"}
    assert len(set(english) & ENGLISH) >= 5


def test_a_forced_language_is_kept_and_lost_speech_is_reported(
    shared_media: Path, model: LoadedModel, engine_options: EngineOptions
) -> None:
    options = TranscribeOptions(engine=engine_options, language="en")
    t = transcribe(shared_media / "multilingual.mp3", options, model=model)
    assert t.language == "en"
    assert {s.language for s in t.segments} == {"en"}
    english, german = _halves(t)
    assert len(set(english) & ENGLISH) >= 5
    # Forced English over German speech: Whisper writes no German; whatever it does
    # (an English paraphrase, or nothing), German speech left without text is reported.
    assert len(set(german) & GERMAN_ONLY) <= 1, german
    covered = sum(s.end - s.start for s in t.segments if s.start >= SWITCH)
    reported = sum(w.end - w.start for w in t.warnings if w.start >= SWITCH - 1)
    assert covered + reported > 15


def test_german_then_english_is_caught_by_the_spot_checks(
    shared_media: Path, model: LoadedModel, engine_options: EngineOptions
) -> None:
    """The other direction: under a German language token Whisper writes the English
    half as good English, so no segment looks suspect; a spot check finds it."""
    audio = decode_channel(shared_media / "multilingual.mp3")
    half = 30 * 16_000
    reordered = np.concatenate([audio[half:], audio[:half]])
    options = TranscribeOptions(engine=engine_options, batched=True)
    t = transcribe(reordered, options, model=model)
    assert t.languages == ("de", "en")
    for segment in t.segments:
        assert segment.language == ("de" if segment.start < SWITCH else "en"), segment
    german = [w for s in t.segments if s.end <= SWITCH + 1 for w in normalise_words(s.text)]
    english = [w for s in t.segments if s.start >= SWITCH for w in normalise_words(s.text)]
    assert len(set(german) & GERMAN_ONLY) >= 5, german
    assert len(set(english) & ENGLISH) >= 5, english
