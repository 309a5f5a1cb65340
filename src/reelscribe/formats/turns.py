"""Paragraphs for the prose formats (plain text, Markdown): who spoke, when, what.

A paragraph is one speaker's consecutive speech; it also ends at a long silence
or, once it is long, at the end of a sentence, so an unbroken monologue still
reads in paragraphs.
"""

from __future__ import annotations

from dataclasses import dataclass

from reelscribe.formats.tokens import (
    SENTENCE_END,
    is_unspaced,
    join_tokens,
    normalize,
    segment_tokens,
)
from reelscribe.models import Segment, Transcript

PARAGRAPH_PAUSE = 2.0  # seconds of silence that start a new paragraph
PARAGRAPH_CHARS = 600  # past this, the next sentence end starts a new paragraph


@dataclass(frozen=True, slots=True)
class Paragraph:
    speaker: str | None
    start: float
    end: float
    text: str
    #: The spoken language (a change of language starts a new paragraph).
    language: str | None = None


def segment_pieces(transcript: Transcript) -> list[Paragraph]:
    """Each segment as one piece, or several when diarization gave its words
    different speakers."""
    unspaced = is_unspaced(transcript.language)
    pieces: list[Paragraph] = []
    for seg in transcript.segments:
        if not _split_by_word_speaker(seg):
            text = normalize(seg.text)
            if text:
                pieces.append(Paragraph(seg.speaker, seg.start, seg.end, text, seg.language))
            continue
        tokens = segment_tokens(seg, unspaced=unspaced)
        begin = 0
        for k in range(1, len(tokens) + 1):
            if k == len(tokens) or tokens[k].speaker != tokens[begin].speaker:
                group = tokens[begin:k]
                text = join_tokens(group)
                start, end = group[0].start, group[-1].end
                pieces.append(Paragraph(group[0].speaker, start, end, text, seg.language))
                begin = k
    return pieces


def _split_by_word_speaker(seg: Segment) -> bool:
    return any(w.speaker is not None and w.speaker != seg.speaker for w in seg.words)


def paragraphs(transcript: Transcript) -> list[Paragraph]:
    merged: list[Paragraph] = []
    for piece in segment_pieces(transcript):
        if merged:
            last = merged[-1]
            same_turn = piece.speaker == last.speaker and piece.language == last.language
            close = piece.start - last.end < PARAGRAPH_PAUSE
            long_done = len(last.text) >= PARAGRAPH_CHARS and SENTENCE_END.search(last.text)
            if same_turn and close and not long_done:
                text = f"{last.text} {piece.text}"
                merged[-1] = Paragraph(last.speaker, last.start, piece.end, text, last.language)
                continue
        merged.append(piece)
    return merged


def has_speakers(transcript: Transcript) -> bool:
    return any(
        s.speaker is not None or any(w.speaker is not None for w in s.words)
        for s in transcript.segments
    )


def talk_times(transcript: Transcript) -> dict[str, float]:
    """Seconds each speaker talks: from the diarization turns when there are any
    (overlapping speech counts for both), else from the words' speaker pieces."""
    times: dict[str, float] = dict.fromkeys(transcript.speakers, 0.0)
    if transcript.turns:
        for turn in transcript.turns:
            times[turn.speaker] = times.get(turn.speaker, 0.0) + max(0.0, turn.end - turn.start)
    else:
        for piece in segment_pieces(transcript):
            if piece.speaker is not None:
                times[piece.speaker] = times.get(piece.speaker, 0.0) + piece.end - piece.start
    return {k: round(v, 3) for k, v in times.items()}
