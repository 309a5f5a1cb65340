"""The transcribe stage: audio in, :class:`~reelscribe.models.Transcript` out.

An engine (:mod:`reelscribe.asr`; faster-whisper by default) does the recognition;
this stage guards against the classic Whisper hallucinations, cuts long chunks at
sentences and turns the engine's segments into ours, whatever engine made them.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

import numpy as np

from reelscribe.asr.base import SAMPLE_RATE, AsrEngine, Audio
from reelscribe.asr.faster_whisper import (
    EngineOptions,
    FasterWhisperEngine,
    LoadedModel,
    temperature_schedule,
    window_bounds,
)
from reelscribe.asr.routing import ROUTES, Engines, falls_back
from reelscribe.config import Settings
from reelscribe.errors import InvalidInputError, ProcessingError
from reelscribe.models import EngineInfo, Segment, Transcript, TranscriptWarning, Word
from reelscribe.pipeline import coverage, languages
from reelscribe.progress import EtaTracker, ProgressCallback, report

STAGE = "transcribe"

log = logging.getLogger(__name__)

#: Moved to :mod:`reelscribe.asr.faster_whisper`; importable from here as before.
__all__ = ["STAGE", "TranscribeOptions", "temperature_schedule", "transcribe", "window_bounds"]


@dataclass(frozen=True, slots=True)
class TranscribeOptions:
    engine: EngineOptions = field(default_factory=EngineOptions)
    language: str | None = None  # None: detect
    task: Literal["transcribe", "translate"] = "transcribe"
    initial_prompt: str | None = None
    hotwords: str | None = None
    #: The first decoding temperature; Whisper's fallback raises it by 0.2 up to 1.0.
    temperature: float = 0.0
    word_timestamps: bool = True
    #: None: batched inference for audio at least ``batched_min_duration`` long.
    batched: bool | None = None
    batched_min_duration: float = 60.0
    #: 0: automatic — 4 on CPU (larger batches were no faster on CPU here but cost
    #: ~80 MB each in CTranslate2's working memory), 16 on a GPU.
    batch_size: int = 0
    #: Beam sizes: batched decoding is where the speed comes from, and greedy decoding
    #: there costs no accuracy on our measurements (docs/benchmarks.md); short clips
    #: keep beam search, where its cost is small.
    batched_beam_size: int = 1
    beam_size: int = 5
    #: Batched decoding of long audio runs in windows of about this many seconds, cut
    #: at the quietest moment near each boundary: faster-whisper copies the speech and
    #: computes every chunk's features up front, so its memory grows with the input.
    window_seconds: float = 300.0
    vad: bool = True
    # Hallucination guards (thresholds as in Whisper's reference implementation).
    compression_ratio_threshold: float = 2.4
    no_speech_threshold: float = 0.6
    log_prob_threshold: float = -1.0
    drop_hallucinations: bool = True
    #: Which engine runs (see :mod:`reelscribe.asr.routing`): local, hosted, or one
    #: then the other when the first fails.
    route: str = "local"
    # Languages and lost speech (pipeline/languages.py, pipeline/coverage.py).
    #: Without a forced language: re-check suspect stretches for another language.
    check_languages: bool = True
    suspect_logprob: float = -0.5
    #: One language spot check per this many seconds of speech; 0: none.
    spot_seconds: float = 600.0
    #: Speech at least this long (s) with no text becomes a warning.
    uncovered_speech_seconds: float = 4.0

    @classmethod
    def from_settings(
        cls, settings: Settings, model: str | None = None, **overrides: Any
    ) -> TranscribeOptions:
        """The configured engine and batching; ``overrides`` set per-request fields
        (language, task, prompts)."""
        values: dict[str, Any] = {
            "engine": EngineOptions.from_settings(settings, model),
            "batch_size": settings.batch_size,
            "batched_min_duration": settings.batched_min_duration,
            "route": settings.asr_engine,
            "check_languages": settings.language_check,
            "suspect_logprob": settings.language_suspect_logprob,
            "spot_seconds": settings.language_spot_seconds,
            "uncovered_speech_seconds": settings.uncovered_speech_seconds,
        }
        return cls(**(values | overrides))

    def __post_init__(self) -> None:
        if self.task not in ("transcribe", "translate"):
            raise InvalidInputError(f"task must be 'transcribe' or 'translate', not {self.task!r}")
        if self.route not in ROUTES:
            raise InvalidInputError(
                f"unknown engine {self.route!r}; choose from {', '.join(ROUTES)}"
            )
        if self.language is not None and not re.fullmatch(
            r"[a-z]{2,3}(-[A-Za-z]+)?", self.language
        ):
            raise InvalidInputError(
                f"invalid language code {self.language!r} (use e.g. 'en', 'de')"
            )


def transcribe(
    audio: Audio | Path,
    options: TranscribeOptions | None = None,
    progress: ProgressCallback | None = None,
    *,
    source_offset: float = 0.0,
    model: LoadedModel | None = None,
    engines: Engines | None = None,
) -> Transcript:
    """Transcribes 16 kHz mono float32 samples (or a file, decoded whole) with the
    engines ``options.route`` names (default engines: faster-whisper only, with
    ``model`` when given), then applies the transcript rules to what they return.
    When the first engine of a fallback route fails, the next one runs.

    Times in the result are relative to the start of ``audio``; ``source_offset`` only
    records where that audio began in the original source.
    """
    options = options or TranscribeOptions()
    samples = _as_samples(audio)
    order = (engines or Engines(local=FasterWhisperEngine(model))).order(options.route)
    failed: str | None = None
    for i, engine in enumerate(order):
        try:
            transcript = _transcribe_with(engine, samples, options, progress, source_offset)
        except Exception as exc:
            if i + 1 == len(order) or not falls_back(exc):
                raise
            log.warning("transcription with %s failed, trying %s: %s", engine.name,
                        order[i + 1].name, f"{type(exc).__name__}: {exc}")  # fmt: skip
            failed = engine.name
            continue
        info = EngineInfo(engine.name, transcript.model.name, fallback_from=failed)
        return replace(transcript, engine=None if info == transcript.made_by else info)
    raise AssertionError("unreachable: the last engine's failure is raised")


def _transcribe_with(
    engine: AsrEngine,
    samples: Audio,
    options: TranscribeOptions,
    progress: ProgressCallback | None,
    source_offset: float,
) -> Transcript:
    duration = len(samples) / SAMPLE_RATE
    try:
        result = engine.transcribe(samples, options, progress)
        # Speech as the VAD finds it: the sequential path's guard against text outside
        # speech, and (both paths) what the transcript's coverage is checked against.
        speech = _speech_spans(samples) if options.vad else []
        guard = speech if options.vad and not result.resegment else None
        segments, dropped = _convert(
            result.segments, options, duration, guard, progress, resegment=result.resegment
        )
        # --- languages hook (pipeline/languages.py): stretches in another language ---
        language, probability = result.language, result.language_probability
        extra = {"mode": result.mode}
        detector = result.detector
        if options.language is None and detector is not None and options.check_languages:

            def redo(
                start: float, end: float, lang: str
            ) -> tuple[list[Segment], list[TranscriptWarning]]:
                a, b = int(start * SAMPLE_RATE), int(end * SAMPLE_RATE)
                again = replace(options, language=lang)
                part = engine.transcribe(samples[a:b], again, None)
                shifted = ((start + offset, seg) for offset, seg in part.segments)
                return _convert(shifted, again, duration, guard, None, resegment=part.resegment)

            check = languages.LanguageCheck(
                suspect_logprob=options.suspect_logprob,
                spot_every=options.spot_seconds,
                uncovered_seconds=options.uncovered_speech_seconds,
            )
            segments, dropped, found = languages.recheck(
                detector, samples, segments, dropped, language, speech, redo, check
            )
            language, probability = languages.main_language(segments, language, probability, found)
            if found:
                extra["languages_rechecked"] = ",".join(
                    f"{d.language}@{d.start:.1f}-{d.end:.1f}" for d in found
                )
        else:
            segments = languages.tag(segments, options.language or language)
        # --- coverage hook (pipeline/coverage.py): nothing lost silently ---
        uncovered = coverage.uncovered_warnings(speech, segments, options.uncovered_speech_seconds)
    except (RuntimeError, ValueError) as exc:
        raise ProcessingError(f"transcription failed: {exc}") from exc

    report(progress, STAGE, 1.0, f"{len(segments)} segments")
    return Transcript(
        segments=tuple(segments),
        language=language,
        language_probability=probability,
        duration=duration,
        model=result.model,
        task=options.task,
        source_offset=source_offset,
        dropped_segments=len(dropped),
        extra=extra,
        warnings=tuple(sorted([*dropped, *uncovered], key=lambda w: (w.start, w.end))),
    )


def _as_samples(audio: Audio | Path) -> Audio:
    if isinstance(audio, Path):
        from faster_whisper import decode_audio

        try:
            return np.asarray(decode_audio(str(audio), sampling_rate=SAMPLE_RATE), np.float32)
        except Exception as exc:  # PyAV raises many kinds for unreadable files
            from reelscribe.errors import MediaError

            raise MediaError(f"cannot decode audio from {audio.name}: {exc}") from exc
    if audio.ndim != 1:
        raise InvalidInputError("audio must be mono (a 1-D array of 16 kHz samples)")
    return audio.astype(np.float32, copy=False)


def _speech_spans(samples: Audio) -> list[tuple[float, float]]:
    """Speech regions found by the Silero VAD that ships with faster-whisper."""
    from faster_whisper.vad import VadOptions, get_speech_timestamps

    spans = get_speech_timestamps(samples, VadOptions(min_silence_duration_ms=500))
    return [(s["start"] / SAMPLE_RATE, s["end"] / SAMPLE_RATE) for s in spans]


def _normalise(text: str) -> str:
    return re.sub(r"[^\w]+", " ", text.lower()).strip()


def _overlap(start: float, end: float, spans: list[tuple[float, float]]) -> float:
    return sum(max(0.0, min(end, b) - max(start, a)) for a, b in spans)


def _flags(
    raw: Any,
    options: TranscribeOptions,
    previous: str | None,
    speech: list[tuple[float, float]] | None,
) -> list[str]:
    flags: list[str] = []
    if raw.compression_ratio > options.compression_ratio_threshold:
        flags.append("high_compression_ratio")
    if (
        raw.no_speech_prob > options.no_speech_threshold
        and raw.avg_logprob < options.log_prob_threshold
    ):
        flags.append("no_speech")
    text = _normalise(raw.text)
    if not text:
        flags.append("empty")
    elif previous is not None and text == previous:
        flags.append("repetition")
    length = max(raw.end - raw.start, 1e-3)
    if speech is not None and _overlap(raw.start, raw.end, speech) / length < 0.1:
        flags.append("outside_speech")
    if raw.avg_logprob < options.log_prob_threshold:
        flags.append("low_confidence")
    return flags


# "low_confidence" alone is worth showing but not worth dropping text for.
_DROP = frozenset({"high_compression_ratio", "no_speech", "empty", "repetition", "outside_speech"})


def _convert(
    raw_segments: Iterable[tuple[float, Any]],
    options: TranscribeOptions,
    duration: float,
    speech: list[tuple[float, float]] | None,
    progress: ProgressCallback | None,
    *,
    resegment: bool = False,
) -> tuple[list[Segment], list[TranscriptWarning]]:
    """Our segments, and a warning for each segment the guards dropped."""
    eta = EtaTracker()
    segments: list[Segment] = []
    dropped: list[TranscriptWarning] = []
    previous: str | None = None
    for offset, raw in raw_segments:
        flags = _flags(raw, options, previous, speech)
        fraction = (offset + raw.end) / duration if duration else 1.0
        report(progress, STAGE, fraction, raw.text.strip()[:60], eta=eta.eta(fraction))
        start = max(0.0, offset + float(raw.start))
        end = max(start, min(duration, offset + float(raw.end)))
        if options.drop_hallucinations and _DROP.intersection(flags):
            dropped.append(coverage.dropped_warning(start, end, raw.text, flags))
            continue
        previous = _normalise(raw.text)
        words = _words(raw.words, start, end, raw.text, offset)
        pieces = _split_at_sentences(words) if resegment and words else [words]
        for piece in pieces:
            timed = bool(piece) and not all(w.interpolated for w in piece)
            segments.append(
                Segment(
                    id=len(segments),
                    start=piece[0].start if timed else start,
                    end=piece[-1].end if timed else end,
                    text=_join(piece) if len(pieces) > 1 else raw.text.strip(),
                    words=piece,
                    avg_logprob=float(raw.avg_logprob),
                    compression_ratio=float(raw.compression_ratio),
                    no_speech_prob=float(raw.no_speech_prob),
                    flags=tuple(flags),
                )
            )
    return segments, dropped


def _join(words: tuple[Word, ...]) -> str:
    return "".join(w.text for w in words).strip()


_SENTENCE_END = (".", "?", "!", "。", "？", "！")


def _split_at_sentences(
    words: tuple[Word, ...], *, pause: float = 1.0, max_duration: float = 12.0
) -> list[tuple[Word, ...]]:
    """Splits a ~30 s batched chunk into sentence-sized segments using word timings:
    after sentence-final punctuation, at a long pause, or at a comma once a piece is
    getting long."""
    pieces: list[tuple[Word, ...]] = []
    current: list[Word] = []
    for i, word in enumerate(words):
        current.append(word)
        nxt = words[i + 1] if i + 1 < len(words) else None
        if nxt is None:
            break
        length = word.end - current[0].start
        text = word.text.rstrip()
        if (
            text.endswith(_SENTENCE_END)
            or nxt.start - word.end >= pause
            or (length >= max_duration / 2 and text.endswith((",", ";", ":")))
            or length >= max_duration
        ):
            pieces.append(tuple(current))
            current = []
    if current:
        pieces.append(tuple(current))
    return pieces


def _words(
    raw_words: list[Any] | None, start: float, end: float, text: str, offset: float = 0.0
) -> tuple[Word, ...]:
    """Our words, each inside its segment; a word with no usable timing gets an even
    share of the segment and is flagged ``interpolated``."""
    if not raw_words:
        tokens = text.split()
        if not tokens:
            return ()
        step = (end - start) / len(tokens)
        return tuple(
            Word(start + i * step, start + (i + 1) * step, tok, 0.0, interpolated=True)
            for i, tok in enumerate(tokens)
        )
    words: list[Word] = []
    for w in raw_words:
        raw_start, raw_end = offset + float(w.start), offset + float(w.end)
        w_start = min(max(raw_start, start), end)
        w_end = min(max(raw_end, w_start), end)
        clamped = (w_start, w_end) != (raw_start, raw_end)
        words.append(
            Word(
                start=w_start,
                end=w_end,
                text=str(w.word),
                probability=float(w.probability),
                interpolated=clamped or w_end <= w_start,
            )
        )
    return tuple(words)
