"""Real transcripts for the analysis tests: the packaged Whisper model on the shared
speech, transcribed once per session (ASR is the slow part; the analysis is not)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from reelscribe.asr.faster_whisper import EngineOptions, LoadedModel, load_model
from reelscribe.models import Transcript
from reelscribe.pipeline.transcribe import TranscribeOptions, transcribe
from tests.conftest import decode_channel

RATE = 16000


@pytest.fixture(scope="session")
def whisper(engine_options: EngineOptions) -> LoadedModel:
    return load_model(engine_options)


def _transcribe(
    audio: np.ndarray, whisper: LoadedModel, engine_options: EngineOptions
) -> Transcript:
    options = TranscribeOptions(engine=engine_options, language="en")
    return transcribe(audio.astype(np.float32), options, model=whisper)


@pytest.fixture(scope="session")
def licence(shared_media: Path, whisper: LoadedModel, engine_options: EngineOptions) -> Transcript:
    """The MIT licence read in English (the first 30 s of multilingual.mp3)."""
    audio = decode_channel(shared_media / "multilingual.mp3")[: 30 * RATE]
    return _transcribe(audio, whisper, engine_options)


@pytest.fixture(scope="session")
def meeting(shared_media: Path, whisper: LoadedModel, engine_options: EngineOptions) -> Transcript:
    """30 s of a real AMI meeting: finding the project documents, a username, a password."""
    return _transcribe(decode_channel(shared_media / "ami_dev01.wav"), whisper, engine_options)


@pytest.fixture(scope="session")
def joined(
    shared_media: Path, whisper: LoadedModel, engine_options: EngineOptions
) -> tuple[Transcript, list[float]]:
    """Three recordings on different topics one after the other, as an editor would join
    them (levelled to one loudness, half a second apart): the licence text, JFK's speech,
    a meeting. Returns the transcript and the times the second and third recordings
    start."""
    parts = [
        decode_channel(shared_media / "multilingual.mp3")[: 30 * RATE],
        decode_channel(shared_media / "jfk.flac"),
        decode_channel(shared_media / "ami_dev01.wav"),
    ]
    # The AMI excerpt is ~27 dB quieter than JFK; unlevelled, Whisper drops it.
    levelled = [p * (0.05 / float(np.sqrt(np.mean(p**2)))) for p in parts]
    gap = np.zeros(RATE // 2, dtype=np.float32)
    audio = np.concatenate([levelled[0], gap, levelled[1], gap, levelled[2]])
    first = len(parts[0]) / RATE + 0.5
    joins = [first, first + len(parts[1]) / RATE + 0.5]
    return _transcribe(audio, whisper, engine_options), joins
