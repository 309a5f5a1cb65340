"""The transcript as a flat list of timed tokens: the unit every writer lays out.

A token is one word that is never split. Tokens come from word timestamps when a
segment has them; a segment without words is split on whitespace and its time is
shared out by characters, so every writer works on transcripts with or without
word timings.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from reelscribe.models import Segment, Transcript

#: Languages written without spaces between words; their word texts are joined
#: as they are when the words carry no whitespace of their own.
_UNSPACED_LANGUAGES = frozenset({"zh", "ja", "th", "lo", "km", "my", "yue", "bo"})

# Punctuation that ends a sentence or a clause, possibly followed by closing
# quotes or brackets ("done." / "done.)" / 'he said,"').
_CLOSERS = r"[\"'”’»)\]]*"
SENTENCE_END = re.compile(rf"[.!?…。！？]{_CLOSERS}$")
CLAUSE_END = re.compile(rf"[,;:—–、，；：]{_CLOSERS}$")


@dataclass(frozen=True, slots=True)
class Token:
    start: float
    end: float
    text: str  # stripped, inner whitespace collapsed, never empty
    speaker: str | None
    #: Whether a space separates this token from the one before it.
    space_before: bool = True


def normalize(text: str) -> str:
    """Collapses every run of whitespace (newlines included) into one space."""
    return " ".join(text.split())


def join_tokens(tokens: Iterable[Token]) -> str:
    """The tokens' text as it reads: spaces only where the words had them."""
    out: list[str] = []
    for tok in tokens:
        if out and tok.space_before:
            out.append(" ")
        out.append(tok.text)
    return "".join(out)


def tokenize(transcript: Transcript) -> list[Token]:
    """All tokens of the transcript in order."""
    unspaced = is_unspaced(transcript.language)
    return [tok for seg in transcript.segments for tok in segment_tokens(seg, unspaced=unspaced)]


def is_unspaced(language: str) -> bool:
    return language.split("-")[0].lower() in _UNSPACED_LANGUAGES


def segment_tokens(segment: Segment, *, unspaced: bool = False) -> list[Token]:
    """One segment's tokens: from its words, else from its text."""
    return _word_tokens(segment, unspaced=unspaced) if segment.words else _text_tokens(segment)


def _word_tokens(segment: Segment, *, unspaced: bool) -> list[Token]:
    # Whisper marks word boundaries with a leading space on each word (" Hello,");
    # hand-made or other aligners' words carry none, and then the language decides.
    whisper_style = any(w.text[:1].isspace() for w in segment.words)
    tokens: list[Token] = []
    for word in segment.words:
        text = normalize(word.text)
        if not text:
            continue
        space = word.text[:1].isspace() if whisper_style else not unspaced
        start = max(0.0, word.start)
        tokens.append(
            Token(
                start=start,
                end=max(start, word.end),
                text=text,
                speaker=word.speaker if word.speaker is not None else segment.speaker,
                space_before=space,
            )
        )
    return tokens


def _text_tokens(segment: Segment) -> list[Token]:
    parts = segment.text.split()
    if not parts:
        return []
    start = max(0.0, segment.start)
    span = max(0.0, segment.end - start)
    # Each word's share of the segment's time is proportional to its length plus
    # the space after it, a fair stand-in for speaking time without timestamps.
    weights = [len(p) + 1 for p in parts]
    total = sum(weights)
    tokens: list[Token] = []
    elapsed = 0
    for part, weight in zip(parts, weights, strict=True):
        t0 = start + span * elapsed / total
        elapsed += weight
        t1 = start + span * elapsed / total
        tokens.append(Token(start=t0, end=t1, text=part, speaker=segment.speaker))
    return tokens


def char_count(tokens: Sequence[Token]) -> int:
    """Length of the joined text (what a reader reads, spaces included)."""
    return len(join_tokens(tokens))
