"""Speakers onto a transcript: each word to the speaker it overlaps most.

Diarization and ASR cut time differently: a Whisper segment can run across a change
of speaker. Labelling words, not segments, and then splitting segments where the
word's speaker changes keeps both the words and the cues honest. A word in a pause
between turns (word timings are approximate) takes the nearest turn's speaker.
"""

from __future__ import annotations

from dataclasses import replace
from itertools import groupby

import numpy as np
import numpy.typing as npt

from reelscribe.formats.tokens import is_unspaced, join_tokens, segment_tokens
from reelscribe.models import Segment, Transcript, Word
from reelscribe.speakers.base import Diarization


class _Turns:
    """The turns as arrays, for vectorised overlap per speaker."""

    def __init__(self, diarization: Diarization) -> None:
        self.names = diarization.speakers
        index = {name: i for i, name in enumerate(self.names)}
        self.starts = np.array([t.start for t in diarization.turns], dtype=np.float64)
        self.ends = np.array([t.end for t in diarization.turns], dtype=np.float64)
        self.who: npt.NDArray[np.int64] = np.array(
            [index[t.speaker] for t in diarization.turns], dtype=np.int64
        )

    def speaker(self, start: float, end: float) -> str | None:
        """The speaker overlapping [start, end] most, else the nearest turn's speaker."""
        if len(self.starts) == 0:
            return None
        overlap = np.clip(np.minimum(self.ends, end) - np.maximum(self.starts, start), 0.0, None)
        per_speaker = np.bincount(self.who, weights=overlap, minlength=len(self.names))
        if per_speaker.max() > 0:
            return self.names[int(np.argmax(per_speaker))]
        middle = (start + end) / 2
        distance = np.maximum(self.starts - middle, middle - self.ends)
        return self.names[int(self.who[int(np.argmin(distance))])]


def assign_speakers(transcript: Transcript, diarization: Diarization) -> Transcript:
    """``transcript`` with a speaker on every word and segment; segments split where
    the speaker changes mid-segment (ids renumbered from 0).

    Times of both must count from the same start (the samples both stages were given).
    Without any turns (no speech found) the transcript comes back unlabelled.
    """
    turns = _Turns(diarization)
    if not diarization.turns:
        return transcript
    unspaced = is_unspaced(transcript.language)
    segments: list[Segment] = []
    for segment in transcript.segments:
        if not segment.words:
            speaker = turns.speaker(segment.start, segment.end)
            segments.append(replace(segment, id=len(segments), speaker=speaker))
            continue
        words = tuple(replace(w, speaker=turns.speaker(w.start, w.end)) for w in segment.words)
        for piece in _split(segment, words, unspaced):
            segments.append(replace(piece, id=len(segments)))
    return replace(transcript, segments=tuple(segments))


def _split(segment: Segment, words: tuple[Word, ...], unspaced: bool) -> list[Segment]:
    runs = [tuple(run) for _, run in groupby(words, key=lambda w: w.speaker)]
    if len(runs) == 1:
        return [replace(segment, words=words, speaker=words[0].speaker)]
    pieces: list[Segment] = []
    for i, run in enumerate(runs):
        # The outer bounds stay the segment's; inner ones fall on word edges.
        start = segment.start if i == 0 else run[0].start
        end = segment.end if i == len(runs) - 1 else run[-1].end
        piece = replace(
            segment, start=start, end=max(start, end), words=run, speaker=run[0].speaker
        )
        text = join_tokens(segment_tokens(piece, unspaced=unspaced))
        pieces.append(replace(piece, text=text))
    return pieces
