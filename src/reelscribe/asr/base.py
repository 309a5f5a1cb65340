"""The engine seam: what every speech recognition engine gives the transcribe stage.

An engine turns 16 kHz mono samples into timed segments and words; the transcript rules
(hallucination guards, resegmentation, word flags) live in
:mod:`reelscribe.pipeline.transcribe` and run on what any engine returns. One file per
engine: :mod:`.faster_whisper` (local) and :mod:`.openai_compatible` (hosted).

Engines are created once per process (a worker, a CLI run) and passed in: they hold what
is costly to make (loaded models, HTTP connection pools, concurrency caps).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
import numpy.typing as npt

from reelscribe.models import ModelInfo
from reelscribe.progress import ProgressCallback

if TYPE_CHECKING:
    from reelscribe.pipeline.transcribe import TranscribeOptions

SAMPLE_RATE = 16_000

Audio = npt.NDArray[np.float32]


@dataclass(frozen=True, slots=True)
class AsrWord:
    """A word with its timing, relative to the segment's offset. The field names are
    faster-whisper's (its own ``Word`` objects pass through unchanged)."""

    start: float
    end: float
    #: As the model wrote it: leading space and attached punctuation included.
    word: str
    probability: float


@dataclass(frozen=True, slots=True)
class AsrSegment:
    """A decoded stretch of speech (faster-whisper's ``Segment`` fields)."""

    start: float
    end: float
    text: str
    #: None: the engine gave no word timings (the stage spreads the words evenly and
    #: flags them ``interpolated``).
    words: tuple[AsrWord, ...] | None
    avg_logprob: float
    compression_ratio: float
    no_speech_prob: float


@dataclass(frozen=True, slots=True)
class EngineResult:
    """What an engine returns: segments (lazily, as decoded: progress is reported per
    segment) and what it found about the audio."""

    #: ``(offset, segment)`` pairs: the segment's times are relative to ``offset``
    #: seconds into the audio (a window or an uploaded piece).
    segments: Iterable[tuple[float, AsrSegment]]
    language: str
    language_probability: float
    model: ModelInfo
    #: The engine's name, as the transcript records it (``faster-whisper``, ...).
    engine: str
    #: The segments are long chunks (batched decoding) to be cut at sentences; the
    #: engine already dropped non-speech with a VAD.
    resegment: bool = False
    #: How it ran, for the transcript's ``extra`` (e.g. ``batched``, ``sequential``).
    mode: str = ""
    #: What can tell the language of a stretch of samples (``detect_language(audio=...)``,
    #: a multilingual Whisper model), for the per-stretch language check; None: the
    #: engine cannot (a hosted API, an English-only model), and the check is skipped.
    detector: Any = None


class AsrEngine(Protocol):
    """A speech recognition engine (see the module docstring)."""

    #: Short name recorded in the transcript and the job's events.
    name: str

    def transcribe(
        self, samples: Audio, options: TranscribeOptions, progress: ProgressCallback | None
    ) -> EngineResult:
        """Starts recognising ``samples``; raises a :class:`~reelscribe.errors.ReelscribeError`
        (or lets a RuntimeError through while segments are iterated: CUDA out of memory)."""
        ...
