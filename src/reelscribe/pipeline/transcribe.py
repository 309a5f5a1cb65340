"""The transcribe stage: audio in, :class:`~reelscribe.models.Transcript` out.

faster-whisper does the recognition; this stage chooses how (batched inference with
VAD for long audio, sequential decoding for short clips), guards against the
classic Whisper hallucinations, and turns the library's objects into ours.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from reelscribe.asr.engine import EngineOptions, LoadedModel, load_model
from reelscribe.asr.reuse_detection import batched_model
from reelscribe.config import Settings
from reelscribe.errors import InvalidInputError, ProcessingError
from reelscribe.models import Segment, Transcript, Word
from reelscribe.progress import EtaTracker, ProgressCallback, report

SAMPLE_RATE = 16_000
STAGE = "transcribe"

Audio = npt.NDArray[np.float32]


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
        }
        return cls(**(values | overrides))

    def __post_init__(self) -> None:
        if self.task not in ("transcribe", "translate"):
            raise InvalidInputError(f"task must be 'transcribe' or 'translate', not {self.task!r}")
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
) -> Transcript:
    """Transcribes 16 kHz mono float32 samples (or a file, decoded whole).

    Times in the result are relative to the start of ``audio``; ``source_offset`` only
    records where that audio began in the original source.
    """
    options = options or TranscribeOptions()
    samples = _as_samples(audio)
    duration = len(samples) / SAMPLE_RATE
    loaded = model or load_model(options.engine)
    report(progress, STAGE, 0.0, f"model {loaded.info.name} on {loaded.info.device}")

    batched = (
        options.batched
        if options.batched is not None
        else (duration >= options.batched_min_duration)
    )
    multilingual = bool(getattr(loaded.whisper.model, "is_multilingual", True))
    if not multilingual and options.language not in (None, "en"):
        raise InvalidInputError(
            f"model {loaded.info.name} is English-only; it cannot transcribe {options.language!r}"
        )
    try:
        raw_segments, info = _run(loaded, samples, options, batched)
        speech = _speech_spans(samples) if options.vad and not batched else None
        segments, dropped = _convert(
            raw_segments, options, duration, speech, progress, resegment=batched
        )
    except (RuntimeError, ValueError) as exc:
        raise ProcessingError(f"transcription failed: {exc}") from exc

    report(progress, STAGE, 1.0, f"{len(segments)} segments")
    return Transcript(
        segments=tuple(segments),
        language=str(info.language),
        language_probability=float(info.language_probability),
        duration=duration,
        model=loaded.info,
        task=options.task,
        source_offset=source_offset,
        dropped_segments=dropped,
        extra={"mode": "batched" if batched else "sequential"},
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


def _run(
    loaded: LoadedModel, samples: Audio, options: TranscribeOptions, batched: bool
) -> tuple[Iterable[tuple[float, Any]], Any]:
    """Starts decoding; returns (lazy (offset, segment) pairs, faster-whisper's info)."""
    if not batched:
        segments, info = _decode(loaded, samples, options, batched=False)
        return ((0.0, seg) for seg in segments), info
    bounds = window_bounds(samples, options.window_seconds)
    first, info = _decode(loaded, samples[bounds[0][0] : bounds[0][1]], options, batched=True)
    # Later windows keep the language found (or given) for the first one.
    rest = replace(options, language=options.language or str(info.language))

    def windows() -> Iterator[tuple[float, Any]]:
        yield from ((bounds[0][0] / SAMPLE_RATE, seg) for seg in first)
        for start, end in bounds[1:]:
            segments, _ = _decode(loaded, samples[start:end], rest, batched=True)
            yield from ((start / SAMPLE_RATE, seg) for seg in segments)

    return windows(), info


def window_bounds(samples: Audio, window: float) -> list[tuple[int, int]]:
    """Sample ranges of about ``window`` seconds, each cut in the quietest 0.2 s found
    within 15 s of the nominal boundary (a cut mid-word would garble that word)."""
    total = len(samples)
    size = int(window * SAMPLE_RATE)
    if total <= size * 1.5:
        return [(0, total)]
    frame, search = SAMPLE_RATE // 5, 15 * SAMPLE_RATE
    cuts = [0]
    nominal = size
    while total - nominal > size // 2:
        lo = max(cuts[-1] + frame, nominal - search)
        hi = min(total - frame, nominal + search)
        frames = (hi - lo) // frame
        region = samples[lo : lo + frames * frame].reshape(frames, frame)
        cut = lo + int(np.argmin(np.square(region).mean(axis=1))) * frame + frame // 2
        cuts.append(cut)
        nominal = cut + size
    cuts.append(total)
    return list(itertools.pairwise(cuts))


def temperature_schedule(first: float) -> tuple[float, ...]:
    """``first`` and the fallback temperatures above it, 0.2 apart, up to 1.0."""
    steps = int((1.0 - first) / 0.2 + 1e-9)  # whole steps that stay within 1.0
    return tuple(round(first + 0.2 * i, 2) for i in range(steps + 1))


def _decode(
    loaded: LoadedModel, samples: Audio, options: TranscribeOptions, *, batched: bool
) -> tuple[Iterable[Any], Any]:
    common: dict[str, Any] = {
        "language": options.language,
        "task": options.task,
        "initial_prompt": options.initial_prompt,
        "hotwords": options.hotwords,
        # faster-whisper's own default is this schedule from 0.0.
        "temperature": temperature_schedule(options.temperature),
        "word_timestamps": options.word_timestamps,
        "vad_filter": options.vad,
        "compression_ratio_threshold": options.compression_ratio_threshold,
        "no_speech_threshold": options.no_speech_threshold,
        "log_prob_threshold": options.log_prob_threshold,
    }
    if batched:
        from faster_whisper import BatchedInferencePipeline

        # On CPU, language detection shares its encoder pass with the first chunk.
        pipeline = BatchedInferencePipeline(batched_model(loaded, options.language))
        return pipeline.transcribe(  # type: ignore[no-any-return]
            samples,
            batch_size=options.batch_size or (16 if loaded.info.device == "cuda" else 4),
            beam_size=options.batched_beam_size,
            # Decoding timestamp tokens with greedy search in batches cost accuracy in
            # our measurements (WER 6.2 % vs 0.8 %); segments are rebuilt from the word
            # timings instead (see _split_at_sentences).
            without_timestamps=True,
            **common,
        )
    return loaded.whisper.transcribe(  # type: ignore[no-any-return]
        samples,
        beam_size=options.beam_size,
        # Whisper skips silence itself when told to; long silences are where it invents text.
        hallucination_silence_threshold=2.0 if options.word_timestamps else None,
        **common,
    )


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
) -> tuple[list[Segment], int]:
    eta = EtaTracker()
    segments: list[Segment] = []
    dropped = 0
    previous: str | None = None
    for offset, raw in raw_segments:
        flags = _flags(raw, options, previous, speech)
        fraction = (offset + raw.end) / duration if duration else 1.0
        report(progress, STAGE, fraction, raw.text.strip()[:60], eta=eta.eta(fraction))
        if options.drop_hallucinations and _DROP.intersection(flags):
            dropped += 1
            continue
        previous = _normalise(raw.text)
        start = max(0.0, offset + float(raw.start))
        end = max(start, min(duration, offset + float(raw.end)))
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
