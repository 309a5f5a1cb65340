"""Nothing lost silently: where detected speech produced no text.

After transcription the speech the VAD found is compared with the time the
transcript's segments cover. Any stretch of speech at least ``min_seconds`` long that
no segment covers becomes an ``uncovered_speech`` warning; segments the hallucination
guards dropped are listed as ``hallucination_guard`` warnings by the transcribe stage.
Both end up in the JSON transcript's ``warnings``, on the CLI's stderr and in a job's
events, so a user learns that something may be missing instead of finding out later.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from reelscribe.models import Segment, TranscriptWarning

Span = tuple[float, float]

UNCOVERED = "uncovered_speech"
DROPPED = "hallucination_guard"

#: Seconds a segment is taken to cover beyond its own timing: Whisper's segment and
#: word edges are often a few hundred ms inside the speech the VAD (padded 0.4 s) sees.
_EDGE = 0.5


def merge_spans(spans: Iterable[Span], gap: float = 0.0) -> list[Span]:
    """Sorted, overlapping (or at most ``gap`` apart) spans joined into one."""
    merged: list[Span] = []
    for start, end in sorted(spans):
        if merged and start <= merged[-1][1] + gap:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


def subtract(spans: Sequence[Span], holes: Sequence[Span]) -> list[Span]:
    """``spans`` with every part that a span of ``holes`` covers removed."""
    out: list[Span] = []
    holes = merge_spans(holes)
    for start, end in spans:
        cursor = start
        for h_start, h_end in holes:
            if h_end <= cursor or h_start >= end:
                continue
            if h_start > cursor:
                out.append((cursor, h_start))
            cursor = max(cursor, h_end)
        if cursor < end:
            out.append((cursor, end))
    return out


def covered(segments: Iterable[Segment]) -> list[Span]:
    """The time the segments with text cover, widened by a small edge."""
    return merge_spans(
        (max(0.0, s.start - _EDGE), s.end + _EDGE) for s in segments if s.text.strip()
    )


def uncovered_speech(
    speech: Sequence[Span], segments: Sequence[Segment], min_seconds: float
) -> list[Span]:
    """Stretches of ``speech`` at least ``min_seconds`` long that no segment covers.
    Speech spans a short pause apart count as one stretch."""
    gaps = subtract(merge_spans(speech, gap=0.5), covered(segments))
    return [(a, b) for a, b in merge_spans(gaps, gap=0.5) if b - a >= min_seconds]


def uncovered_warnings(
    speech: Sequence[Span], segments: Sequence[Segment], min_seconds: float
) -> list[TranscriptWarning]:
    return [
        TranscriptWarning(
            start=round(a, 3),
            end=round(b, 3),
            reason=UNCOVERED,
            detail=f"{b - a:.1f} s of detected speech produced no text",
        )
        for a, b in uncovered_speech(speech, segments, min_seconds)
    ]


def dropped_warning(start: float, end: float, text: str, flags: Sequence[str]) -> TranscriptWarning:
    """A segment a hallucination guard removed, with its text and the guards' flags."""
    return TranscriptWarning(
        start=round(start, 3),
        end=round(end, 3),
        reason=DROPPED,
        detail=f"dropped ({', '.join(flags)}): {text.strip()}".rstrip(": "),
    )


def describe(warning: TranscriptWarning, offset: float = 0.0) -> str:
    """One line for a terminal or a log: times on the source's timeline."""
    from reelscribe.models import format_timestamp

    start = format_timestamp(warning.start + offset, always_hours=False)
    end = format_timestamp(warning.end + offset, always_hours=False)
    return f"{start}-{end} {warning.reason}: {warning.detail}"
