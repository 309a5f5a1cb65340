"""Nothing lost silently: speech the transcript does not cover becomes a warning.

The audio is real speech that the real model and guards lose: JFK's sentence said six
times with a second's pause (73 s, so the default batched path). Whisper decodes each
30 s chunk as one highly repetitive text, and the compression-ratio guard (Whisper's
own hallucination check) drops it: five of the six sentences of clear speech disappear.
The batched path decodes at one temperature, so this is deterministic; the sequential
path falls back to sampling at higher temperatures, which sometimes keeps the text.
(A hummed or sung-vowel signal was tried first: Silero VAD does not call synthetic
voicing speech, so it makes no test.)
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import wave
from pathlib import Path

import numpy as np
import pytest

from reelscribe.asr.engine import EngineOptions, LoadedModel, load_model
from reelscribe.models import Transcript
from reelscribe.pipeline.coverage import DROPPED, UNCOVERED
from reelscribe.pipeline.transcribe import TranscribeOptions, transcribe
from tests.conftest import REPO_ROOT, decode_channel

pytestmark = pytest.mark.media

RATE = 16_000
#: Copies of the sentence (1 s of silence before each).
COPIES = 6


@pytest.fixture(scope="module")
def model(engine_options: EngineOptions) -> LoadedModel:
    return load_model(engine_options)


@pytest.fixture(scope="module")
def repeated(shared_media: Path) -> tuple[np.ndarray, list[tuple[float, float]]]:
    """JFK six times, each after 1 s of silence; and where each copy is."""
    jfk = decode_channel(shared_media / "jfk.flac")
    pause = np.zeros(RATE, np.float32)
    parts, spans, t = [], [], 0.0
    for _ in range(COPIES):
        parts += [pause, jfk]
        t += 1.0
        spans.append((t, t + len(jfk) / RATE))
        t += len(jfk) / RATE
    return np.concatenate([*parts, pause]).astype(np.float32), spans


def _check_times(
    uncovered: list[tuple[float, float]],
    copies: list[tuple[float, float]],
    segments: list[tuple[float, float]],
) -> None:
    """Each warning lies inside one copy of the sentence (the pauses split them) and
    overlaps no segment with text; at least one runs from its copy's start to its end."""
    for a, b in uncovered:
        assert b - a >= TranscribeOptions().uncovered_speech_seconds
        assert any(s - 0.5 <= a and b <= e + 0.5 for s, e in copies), (a, b)
        assert not any(start < b - 0.6 and end > a + 0.6 for start, end in segments), (a, b)
    assert any(abs(a - s) < 1.0 and abs(b - e) < 1.0 for a, b in uncovered for s, e in copies), (
        uncovered
    )


def _uncovered(t: Transcript) -> list[tuple[float, float]]:
    return [(w.start, w.end) for w in t.warnings if w.reason == UNCOVERED]


def test_speech_the_guards_drop_is_a_warning_with_its_times(
    repeated: tuple[np.ndarray, list[tuple[float, float]]],
    model: LoadedModel,
    engine_options: EngineOptions,
) -> None:
    audio, copies = repeated
    t = transcribe(audio, TranscribeOptions(engine=engine_options), model=model)
    assert t.extra["mode"] == "batched"
    dropped = [w for w in t.warnings if w.reason == DROPPED]
    assert dropped, t.warnings
    assert t.dropped_segments == len(dropped)
    assert all("country" in w.detail for w in dropped)  # the dropped text is listed
    uncovered = _uncovered(t)
    assert uncovered
    _check_times(uncovered, copies, [(x.start, x.end) for x in t.segments if x.text.strip()])
    assert sum(b - a for a, b in uncovered) > 30  # most of the 66 s of speech
    assert t.warnings == tuple(sorted(t.warnings, key=lambda w: (w.start, w.end)))


def test_clean_speech_has_no_warnings(
    shared_media: Path, model: LoadedModel, engine_options: EngineOptions
) -> None:
    t = transcribe(shared_media / "jfk.flac", TranscribeOptions(engine=engine_options), model=model)
    assert t.warnings == ()
    assert t.dropped_segments == 0


def test_a_higher_threshold_silences_the_shorter_gaps(
    repeated: tuple[np.ndarray, list[tuple[float, float]]],
    model: LoadedModel,
    engine_options: EngineOptions,
) -> None:
    audio, _ = repeated
    options = TranscribeOptions(engine=engine_options, uncovered_speech_seconds=60.0)
    t = transcribe(audio, options, model=model)
    assert _uncovered(t) == []
    assert any(w.reason == DROPPED for w in t.warnings)  # drops are listed regardless


@pytest.mark.timeout(600)
def test_cli_prints_each_warning_on_stderr_and_writes_them_to_json(
    repeated: tuple[np.ndarray, list[tuple[float, float]]], tmp_path: Path, models_dir: Path
) -> None:
    audio, copies = repeated
    source = tmp_path / "repeated.wav"
    with wave.open(str(source), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(RATE)
        out.writeframes((np.clip(audio, -1, 1) * 32767).astype("<i2").tobytes())
    env = os.environ | {
        "REELSCRIBE_MODELS_DIR": str(models_dir),
        "PYTHONPATH": str(REPO_ROOT / "src"),
    }
    run = subprocess.run(
        [sys.executable, "-m", "reelscribe.cli", "transcribe", str(source), "-f", "json",
         "--out", str(tmp_path / "out"), "--quiet"],
        capture_output=True, text=True, env=env, timeout=550, check=False,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    lines = [x for x in run.stderr.splitlines() if x.startswith("reelscribe: warning: ")]
    document = json.loads((tmp_path / "out" / "repeated.json").read_text(encoding="utf-8"))
    warnings = document["warnings"]
    assert warnings
    assert len(lines) == len(warnings)
    assert {w["reason"] for w in warnings} == {UNCOVERED, DROPPED}
    assert any(UNCOVERED in x for x in lines)
    assert any(DROPPED in x for x in lines)
    spans = [(w["start"], w["end"]) for w in warnings if w["reason"] == UNCOVERED]
    texts = [(x["start"], x["end"]) for x in document["segments"] if x["text"].strip()]
    _check_times(spans, copies, texts)
    assert document["dropped_segments"] == sum(w["reason"] == DROPPED for w in warnings)
