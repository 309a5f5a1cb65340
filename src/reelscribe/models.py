"""Plain data shared by the stages: time ranges, media facts and transcripts.

These are frozen dataclasses (as in faster-whisper) rather than dicts, so every
stage's inputs and outputs are typed. Timestamps are seconds as floats.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

from reelscribe.analysis.results import Analysis
from reelscribe.errors import InvalidInputError


class ClipMode(StrEnum):
    """How a time range is cut (see :mod:`reelscribe.pipeline.clip`)."""

    FAST = "fast"
    EXACT = "exact"


_TIMESTAMP = re.compile(r"^(?:(?:(\d+):)?(\d{1,2}):)?(\d+(?:\.\d+)?)$")


def parse_timestamp(value: str | float | int) -> float:
    """Parses seconds (``"75.5"``) or ``[HH:]MM:SS[.mmm]`` (``"01:15.5"``, ``"00:01:15.500"``)."""
    if isinstance(value, int | float):
        seconds = float(value)
    else:
        match = _TIMESTAMP.match(value.strip())
        if match is None:
            raise InvalidInputError(
                f"invalid time {value!r}: use seconds (75.5) or HH:MM:SS.mmm (00:01:15.500)"
            )
        hours, minutes, secs = match.groups()
        too_big = float(secs) >= 60 or (hours is not None and int(minutes or 0) >= 60)
        if (hours is not None or minutes is not None) and too_big:
            raise InvalidInputError(f"invalid time {value!r}: minutes and seconds must be < 60")
        seconds = int(hours or 0) * 3600 + int(minutes or 0) * 60 + float(secs)
    if seconds < 0 or seconds != seconds:  # NaN check
        raise InvalidInputError(f"invalid time {value!r}: must be a non-negative number")
    return seconds


def format_timestamp(seconds: float, *, sep: str = ".", always_hours: bool = True) -> str:
    """``3725.5`` -> ``01:02:05.500`` (``sep=","`` gives SRT's form)."""
    millis = round(max(0.0, seconds) * 1000)
    hours, millis = divmod(millis, 3_600_000)
    minutes, millis = divmod(millis, 60_000)
    secs, millis = divmod(millis, 1000)
    if hours or always_hours:
        return f"{hours:02d}:{minutes:02d}:{secs:02d}{sep}{millis:03d}"
    return f"{minutes:02d}:{secs:02d}{sep}{millis:03d}"


@dataclass(frozen=True, slots=True)
class TimeRange:
    """A section of a source, in seconds from its start. ``end=None`` means to the end."""

    start: float = 0.0
    end: float | None = None

    def __post_init__(self) -> None:
        if self.start < 0:
            raise InvalidInputError("start must be >= 0")
        if self.end is not None and self.end <= self.start:
            raise InvalidInputError(f"end ({self.end:g}s) must be after start ({self.start:g}s)")

    @classmethod
    def parse(cls, start: str | float | None, end: str | float | None) -> TimeRange | None:
        """Builds a range from CLI/API values; ``None`` when neither is given."""
        if start is None and end is None:
            return None
        return cls(
            start=parse_timestamp(start) if start is not None else 0.0,
            end=parse_timestamp(end) if end is not None else None,
        )

    @property
    def duration(self) -> float | None:
        return None if self.end is None else self.end - self.start

    @property
    def is_whole(self) -> bool:
        return self.start == 0.0 and self.end is None


# --- media facts (the probe stage) -------------------------------------------------


@dataclass(frozen=True, slots=True)
class StreamInfo:
    index: int
    kind: str  # "video", "audio", "subtitle", "data"
    codec: str
    duration: float | None = None
    start_time: float | None = None
    bit_rate: int | None = None
    # video
    width: int | None = None
    height: int | None = None
    fps: float | None = None
    rotation: int = 0
    pix_fmt: str | None = None
    profile: str | None = None
    # audio
    sample_rate: int | None = None
    channels: int | None = None
    language: str | None = None


@dataclass(frozen=True, slots=True)
class MediaInfo:
    path: Path
    format_name: str
    duration: float
    start_time: float
    bit_rate: int | None
    size: int
    streams: tuple[StreamInfo, ...]
    #: Keyframe times (seconds, source timeline) of the first video stream; empty
    #: unless the probe was asked for them.
    keyframes: tuple[float, ...] = ()

    @property
    def video(self) -> StreamInfo | None:
        return next((s for s in self.streams if s.kind == "video"), None)

    @property
    def audio(self) -> StreamInfo | None:
        return next((s for s in self.streams if s.kind == "audio"), None)

    @property
    def has_video(self) -> bool:
        return self.video is not None

    @property
    def has_audio(self) -> bool:
        return self.audio is not None


# --- transcripts (the transcribe stage) --------------------------------------------


@dataclass(frozen=True, slots=True)
class Word:
    start: float
    end: float
    text: str
    probability: float
    #: The timing was not measured by the aligner but spread evenly across the
    #: segment (e.g. a word the model emitted without a timestamp).
    interpolated: bool = False
    speaker: str | None = None


@dataclass(frozen=True, slots=True)
class Segment:
    id: int
    start: float
    end: float
    text: str
    words: tuple[Word, ...] = ()
    speaker: str | None = None
    avg_logprob: float | None = None
    compression_ratio: float | None = None
    no_speech_prob: float | None = None
    #: Quality flags, e.g. ``"possible_hallucination"``, ``"repetition"``,
    #: ``"low_confidence"``. Empty for a clean segment.
    flags: tuple[str, ...] = ()
    #: The spoken language this segment was decoded as (ISO 639-1, e.g. ``"de"``);
    #: None where unknown (transcripts written before languages were per segment).
    language: str | None = None


@dataclass(frozen=True, slots=True)
class TranscriptWarning:
    """A stretch of the audio where something may have been lost: speech that produced
    no text (``"uncovered_speech"``) or a segment a hallucination guard dropped
    (``"hallucination_guard"``). Times are relative to the clip's start."""

    start: float
    end: float
    reason: str
    detail: str = ""


@dataclass(frozen=True, slots=True)
class ModelInfo:
    name: str
    source: str  # "local", "packaged", "hub"
    path: str
    device: str
    compute_type: str


@dataclass(frozen=True, slots=True)
class EngineInfo:
    """The engine that produced a transcript (see :mod:`reelscribe.asr`)."""

    name: str  # "faster-whisper", "openai-compatible"
    model: str
    #: The engine tried first, when it failed and this one ran instead (a fallback).
    fallback_from: str | None = None


@dataclass(frozen=True, slots=True)
class SpeakerTurn:
    """A stretch of time in which one speaker talks (diarization's unit). Turns of
    different speakers may overlap where they talk at once."""

    start: float
    end: float
    speaker: str  # a stable id ("SPEAKER_00"); display names live in Transcript


@dataclass(frozen=True, slots=True)
class Transcript:
    """What the transcribe stage returns. Times are relative to the clip's start."""

    segments: tuple[Segment, ...]
    language: str
    language_probability: float
    duration: float
    model: ModelInfo
    task: str = "transcribe"
    #: Where the clip starts in the original source (seconds), so clip-relative
    #: times can be mapped back.
    source_offset: float = 0.0
    dropped_segments: int = 0
    extra: dict[str, str] = field(default_factory=dict)
    #: Who spoke when, as diarization (or the channels) found it; the RTTM output
    #: and talk times come from these. Empty when speakers were not asked for.
    turns: tuple[SpeakerTurn, ...] = ()
    #: Display names by speaker id ("SPEAKER_00" -> "Diane"). Segments and words keep
    #: the ids, so renaming a speaker changes this map and nothing else.
    speaker_names: dict[str, str] = field(default_factory=dict)
    #: Summary, keywords, chapters, moderation: filled by the analysis stages (and by
    #: ``reelscribe analyze``), None when none ran.
    analysis: Analysis | None = None
    #: The engine that made it, when not faster-whisper without a fallback (None; also
    #: documents from before engines were recorded). :attr:`made_by` has it either way.
    engine: EngineInfo | None = None
    #: Where speech may have been lost (see :class:`TranscriptWarning`), in time order.
    warnings: tuple[TranscriptWarning, ...] = ()

    @property
    def languages(self) -> tuple[str, ...]:
        """The segments' languages in order of first appearance (the transcript's
        ``language`` alone when no segment carries one)."""
        seen = dict.fromkeys(s.language for s in self.segments if s.language)
        return tuple(seen) or (self.language,)

    def speaker_name(self, speaker: str) -> str:
        """The name to show for a speaker id (the id itself when it has none)."""
        return self.speaker_names.get(speaker, speaker)

    @property
    def made_by(self) -> EngineInfo:
        """The engine that made the transcript."""
        return self.engine or EngineInfo("faster-whisper", self.model.name)

    @property
    def text(self) -> str:
        return " ".join(s.text.strip() for s in self.segments if s.text.strip())

    @property
    def words(self) -> tuple[Word, ...]:
        return tuple(w for s in self.segments for w in s.words)

    @property
    def speakers(self) -> tuple[str, ...]:
        """Speaker ids in order of first appearance (segments, words, then turns)."""
        seen: dict[str, None] = {}
        for s in self.segments:
            if s.speaker is not None:
                seen.setdefault(s.speaker, None)
            for w in s.words:
                if w.speaker is not None:
                    seen.setdefault(w.speaker, None)
        for turn in sorted(self.turns, key=lambda t: t.start):
            seen.setdefault(turn.speaker, None)
        return tuple(seen)
