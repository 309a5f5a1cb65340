"""Speech in more than one language: find the stretches in another language and
transcribe them in it.

Whisper detects the language once, from the first 30 s, and faster-whisper then decodes
the whole file in it. Speech in another language is not skipped but decoded *as* the
first one: German under an English language token comes out as a loose English
paraphrase (or nothing), with no error. That is the one cheap clue it leaves: those
segments have a far lower mean token log-probability (-0.8 against -0.1 for the English
half of ``multilingual.mp3``), or were dropped by the guards, or left speech uncovered.

So instead of detecting the language of every stretch up front (one extra encoder pass
per 30 s of speech, ~20 % of the run on a CPU), the transcript is checked afterwards:

1. *suspect* stretches: segments below ``suspect_logprob``, dropped segments, and
   speech with no text, joined when close and cut into windows of at most 30 s;
2. *spot checks*: a few windows of speech spread over the file past its first 30 s
   (one, or one per 10 minutes). The other direction leaves no suspect: English under a
   German token comes out as confident, correct English, wrongly labelled. A spot in
   another language means the file switches, and then every window of speech is
   detected;
3. the language of each window is detected (one encoder pass each); neighbouring
   windows in the same other language are merged, and each such region is transcribed
   again with that language forced. Its new segments replace the old ones when they
   cover clearly more of the speech, or as much and decode better.

Audio in one language costs a couple of detections (a few per hour) unless it decodes
badly, and then one per suspect window. What this can miss: a short stretch in another
language, decoded confidently, between two spot checks of a long file.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import numpy.typing as npt

from reelscribe.models import Segment, TranscriptWarning
from reelscribe.pipeline.coverage import merge_spans, subtract, uncovered_speech

SAMPLE_RATE = 16_000
#: Whisper's window: detection looks at 30 s at most.
_WINDOW = 30.0
#: Shorter stretches give an unreliable detection.
_MIN_DETECT = 1.0

Span = tuple[float, float]
#: Transcribes ``[start, end)`` of the audio in ``language``: segments (times on the
#: whole audio's timeline) and the warnings for segments the guards dropped.
Redo = Callable[[float, float, str], tuple[list[Segment], list[TranscriptWarning]]]


@dataclass(frozen=True, slots=True)
class LanguageCheck:
    """How suspect stretches are found and when a detection is acted on."""

    suspect_logprob: float = -0.5
    #: A detected language is acted on only at this probability or above.
    min_probability: float = 0.5
    uncovered_seconds: float = 4.0
    #: Spot checks: one window of speech per this many seconds (at least
    #: ``min_spots``), past the first 30 s Whisper detected the language from. A spot
    #: in another language at ``spot_probability`` or above means the file switches:
    #: every stretch of speech is then detected.
    #: (Each check is a full encoder pass, as costly as decoding a 30 s chunk's audio
    #: on a CPU, so they are few; see the README for what they cost.)
    spot_every: float = 600.0
    min_spots: int = 1
    spot_probability: float = 0.8


@dataclass(frozen=True, slots=True)
class Detection:
    start: float
    end: float
    language: str
    probability: float


def tag(segments: Sequence[Segment], language: str) -> list[Segment]:
    """The segments, each marked as decoded in ``language``."""
    return [replace(s, language=language) for s in segments]


def suspect_spans(
    segments: Sequence[Segment],
    dropped: Sequence[TranscriptWarning],
    speech: Sequence[Span],
    check: LanguageCheck,
) -> list[Span]:
    """Where the transcript hints at another language, as windows of at most 30 s."""
    spans = [
        (s.start, s.end)
        for s in segments
        if s.avg_logprob is not None and s.avg_logprob < check.suspect_logprob
    ]
    spans += [(w.start, w.end) for w in dropped]
    spans += uncovered_speech(speech, segments, check.uncovered_seconds)
    return speech_windows(spans)


def speech_windows(speech: Sequence[Span]) -> list[Span]:
    """All the speech, joined across short pauses, as windows of at most 30 s."""
    windows: list[Span] = []
    for start, end in merge_spans(speech, gap=2.0):
        count = max(1, int(np.ceil((end - start) / _WINDOW)))
        step = (end - start) / count
        windows += [(start + i * step, start + (i + 1) * step) for i in range(count)]
    return [(a, b) for a, b in windows if b - a >= _MIN_DETECT]


def spot_windows(windows: Sequence[Span], check: LanguageCheck) -> list[Span]:
    """Evenly spread windows past the first 30 s (a short file: all of them); none
    when ``spot_every`` is 0."""
    if check.spot_every <= 0:
        return []
    later = [w for w in windows if w[0] >= _WINDOW - 1.0]
    total = sum(b - a for a, b in later)
    count = max(check.min_spots, int(np.ceil(total / check.spot_every)))
    if len(later) <= count:
        return later
    picks = np.linspace(0, len(later) - 1, count).round().astype(int)
    return [later[i] for i in sorted(set(picks.tolist()))]


def detect(whisper: Any, samples: npt.NDArray[np.float32], span: Span) -> Detection:
    """The language spoken in ``span`` (one encoder pass)."""
    a, b = (int(t * SAMPLE_RATE) for t in span)
    language, probability, _ = whisper.detect_language(audio=samples[a:b])
    return Detection(span[0], span[1], str(language), float(probability))


def regions(
    detections: Sequence[Detection], language: str, check: LanguageCheck
) -> list[Detection]:
    """Neighbouring confident detections of a language other than ``language``, merged."""
    out: list[Detection] = []
    for d in detections:
        if d.language == language or d.probability < check.min_probability:
            continue
        last = out[-1] if out else None
        if last is not None and last.language == d.language and d.start - last.end <= 3.0:
            out[-1] = replace(last, end=d.end, probability=max(last.probability, d.probability))
        else:
            out.append(d)
    return out


def recheck(
    whisper: Any,
    samples: npt.NDArray[np.float32],
    segments: list[Segment],
    dropped: list[TranscriptWarning],
    language: str,
    speech: Sequence[Span],
    redo: Redo,
    check: LanguageCheck | None = None,
) -> tuple[list[Segment], list[TranscriptWarning], list[Detection]]:
    """Re-transcribes the stretches in another language (see the module's docstring).

    ``segments`` were decoded in ``language`` and come back tagged; returns the
    segments (renumbered, in time order), the dropped-segment warnings and the regions
    that were transcribed in another language."""
    check = check or LanguageCheck()
    segments = tag(segments, language)
    duration = len(samples) / SAMPLE_RATE
    detections = [
        detect(whisper, samples, w) for w in suspect_spans(segments, dropped, speech, check)
    ]
    # A stretch in another language that the first one's decoder renders confidently
    # (English under a German token comes out as good English) leaves no suspect
    # segment: a few spot checks catch a file that switches, and then every stretch
    # is detected.
    every = speech_windows(speech)
    spots = [detect(whisper, samples, w) for w in spot_windows(every, check)]
    if any(d.language != language and d.probability >= check.spot_probability for d in spots):
        detections = [detect(whisper, samples, w) for w in every]
    found = regions(sorted(detections, key=lambda d: d.start), language, check)
    applied: list[Detection] = []
    for region in found:
        lo, hi = _bounds(segments, region, duration)
        old = [s for s in segments if lo <= _mid(s) <= hi]
        new, new_dropped = redo(lo, hi, region.language)
        new = [s for s in tag(new, region.language) if s.text.strip()]
        if not _better(new, old, speech):
            continue  # the other language decodes no better: keep what we had
        segments = [s for s in segments if not lo <= _mid(s) <= hi] + new
        dropped = [w for w in dropped if not lo <= (w.start + w.end) / 2 <= hi] + new_dropped
        applied.append(replace(region, start=lo, end=hi))
    segments.sort(key=lambda s: (s.start, s.end))
    dropped.sort(key=lambda w: w.start)
    return [replace(s, id=i) for i, s in enumerate(segments)], dropped, applied


def main_language(
    segments: Sequence[Segment], language: str, probability: float, found: Sequence[Detection]
) -> tuple[str, float]:
    """The language most of the transcript's time is in, and its probability (the first
    detection's, or the best regional one for a language found later)."""
    seconds: dict[str, float] = {}
    for s in segments:
        if s.language:
            seconds[s.language] = seconds.get(s.language, 0.0) + (s.end - s.start)
    if not seconds:
        return language, probability
    main = max(seconds, key=lambda lang: seconds[lang])
    if main == language:
        return language, probability
    return main, max(d.probability for d in found if d.language == main)


def _mid(segment: Segment) -> float:
    return (segment.start + segment.end) / 2


def _bounds(segments: Sequence[Segment], region: Detection, duration: float) -> Span:
    """The region widened up to a second, but never into a segment outside it: the
    audio re-transcribed must not cut the neighbours' words."""
    before = [s.end for s in segments if _mid(s) < region.start]
    after = [s.start for s in segments if _mid(s) > region.end]
    lo = max([region.start - 1.0, *before, 0.0])
    hi = min([region.end + 1.0, *after, duration])
    return lo, max(hi, lo)


def _better(new: Sequence[Segment], old: Sequence[Segment], speech: Sequence[Span]) -> bool:
    """Whether ``new`` should replace ``old``: it covers clearly more of the speech, or
    as much and decodes with a higher mean log-probability. (Coverage first: under
    ``translate`` a real translation scores lower than an echo of the source.)"""
    if not new:
        return False
    gained = _speech_covered(new, speech) - _speech_covered(old, speech)
    if abs(gained) >= 2.0:
        return gained > 0
    return not old or _score(new) > _score(old)


def _speech_covered(segments: Sequence[Segment], speech: Sequence[Span]) -> float:
    if not speech:  # no VAD: the segments' own length
        return sum(s.end - s.start for s in segments)
    text = merge_spans((s.start, s.end) for s in segments)
    return sum(b - a for a, b in speech) - sum(b - a for a, b in subtract(speech, text))


def _score(segments: Sequence[Segment]) -> float:
    """Mean token log-probability, weighted by each segment's length."""
    total = sum(max(s.end - s.start, 0.01) for s in segments)
    return sum((s.avg_logprob or 0.0) * max(s.end - s.start, 0.01) for s in segments) / total
