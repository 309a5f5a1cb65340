"""The /v1 response formats, model names and error shape, without a server."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pysrt
import pytest
import webvtt
from fastapi.responses import JSONResponse

from reelscribe.api.v1.errors import translate
from reelscribe.asr.catalog import available_models
from reelscribe.config import Settings
from reelscribe.errors import ModelNotFoundError, RateLimitedError
from reelscribe.models import ModelInfo, Segment, Transcript, Word
from reelscribe.service import openai_formats
from reelscribe.service.transcriptions import _user_fault, resolve_model


def _words(start: float, *texts: str) -> tuple[Word, ...]:
    return tuple(Word(start + i * 0.5, start + i * 0.5 + 0.4, f" {t}", 0.9)
                 for i, t in enumerate(texts))  # fmt: skip


TRANSCRIPT = Transcript(
    segments=(
        Segment(0, 0.0, 1.9, " Hello there.", _words(0.0, "Hello", "there.")),
        Segment(
            1,
            2.0,
            3.9,
            " General Kenobi.",
            _words(2.0, "General", "Kenobi."),
            avg_logprob=-0.2,
            compression_ratio=1.1,
            no_speech_prob=0.01,
        ),
    ),
    language="de",
    language_probability=0.97,
    duration=4.0,
    model=ModelInfo("base", "packaged", "/m", "cpu", "int8"),
)


def test_json_text_and_subtitles() -> None:
    assert openai_formats.as_json(TRANSCRIPT) == {
        "text": "Hello there. General Kenobi.", "usage": {"type": "duration", "seconds": 4.0}
    }  # fmt: skip
    assert openai_formats.as_text(TRANSCRIPT, "text") == "Hello there. General Kenobi.\n"
    subs = pysrt.from_string(openai_formats.as_text(TRANSCRIPT, "srt"))
    assert " ".join(s.text for s in subs).split() == ["Hello", "there.", "General", "Kenobi."]
    captions = webvtt.from_string(openai_formats.as_text(TRANSCRIPT, "vtt")).captions
    assert captions[0].start == "00:00:00.000"


def test_verbose_json_granularities() -> None:
    both = openai_formats.as_verbose_json(TRANSCRIPT, {"word", "segment"})
    assert both["language"] == "german"
    assert [s["text"] for s in both["segments"]] == [" Hello there.", " General Kenobi."]
    assert both["segments"][1]["avg_logprob"] == -0.2
    assert [w["word"] for w in both["words"]] == ["Hello", "there.", "General", "Kenobi."]
    assert both["words"][2] == {"word": "General", "start": 2.0, "end": 2.4}
    assert "words" not in openai_formats.as_verbose_json(TRANSCRIPT)  # segments by default
    assert "segments" not in openai_formats.as_verbose_json(TRANSCRIPT, {"word"})
    translated = openai_formats.as_verbose_json(replace(TRANSCRIPT, task="translate"), {"word"})
    assert translated["language"] == "english"
    assert "words" not in translated


def test_stream_events_add_up_to_the_text() -> None:
    events = list(openai_formats.stream_events(TRANSCRIPT))
    assert [e["type"] for e in events] == ["transcript.text.delta"] * 2 + ["transcript.text.done"]
    assert "".join(e["delta"] for e in events[:-1]) == events[-1]["text"] == TRANSCRIPT.text
    empty = list(openai_formats.stream_events(replace(TRANSCRIPT, segments=())))
    assert empty == [{"type": "transcript.text.done", "text": ""}]


def test_model_names(tmp_path: Path) -> None:
    settings = Settings(models_dir=tmp_path)
    assert resolve_model(settings, "whisper-1") is None
    assert resolve_model(settings, settings.model) is None
    with pytest.raises(ModelNotFoundError, match="'small' does not exist"):
        resolve_model(settings, "small")
    (tmp_path / "hub" / "models--Systran--faster-whisper-small").mkdir(parents=True)
    assert resolve_model(settings, "small") == "small"
    assert available_models(settings)[0] == settings.model
    assert "small" in available_models(settings)


def test_job_error_codes_keep_their_fault() -> None:
    assert _user_fault("media_error")
    assert _user_fault("blocked_url")
    assert not _user_fault("processing_error")
    assert not _user_fault("no-such-code")


def test_errors_translate_to_openai_shape() -> None:
    ours = JSONResponse({"error": {"code": "quota_exceeded", "message": "daily quota",
                                   "details": None}}, status_code=429,
                        headers={"Retry-After": "60"})  # fmt: skip
    exc = RateLimitedError("daily quota", retry_after=60, code="quota_exceeded")
    theirs = translate(ours, exc)
    assert theirs.status_code == 429
    assert theirs.headers["retry-after"] == "60"
    assert json.loads(bytes(theirs.body)) == {"error": {
        "message": "daily quota", "type": "insufficient_quota", "param": None,
        "code": "insufficient_quota"}}  # fmt: skip


def test_the_api_process_stays_light() -> None:
    # /v1 lives in API processes, which must not load the pipeline's heavy imports.
    code = ("import sys, reelscribe.api.app; "
            "print(sorted(m for m in ('yt_dlp', 'av', 'numpy', 'faster_whisper') "
            "if m in sys.modules))")  # fmt: skip
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout  # fmt: skip
    assert out.strip() == "[]"
