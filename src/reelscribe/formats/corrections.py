"""Corrected segment text, with word timings that stay true where they can.

A user fixes what the model misheard: the segment gets the new text, and its words are
re-aligned to it. Words that did not change keep their measured timings (matched token
by token with :class:`difflib.SequenceMatcher`); each run of changed or inserted words
is spread over the time its replaced words took (or, for a pure insertion, the gap
between its neighbours), in proportion to their length in characters, and marked
``interpolated`` because nobody measured them. Pure functions, no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from difflib import SequenceMatcher

from reelscribe.errors import InvalidInputError
from reelscribe.models import Segment, Transcript, Word


def _key(text: str) -> str:
    # Compare words as a reader would: case and punctuation changes still count as
    # edits of the text, but not for re-timing.
    return "".join(ch for ch in text.casefold() if ch.isalnum()) or text.strip()


def _spread(tokens: Sequence[str], start: float, end: float, speaker: str | None) -> list[Word]:
    """Tokens laid over [start, end] in proportion to their length."""
    weights = [max(1, len(token)) for token in tokens]
    total = sum(weights)
    span = max(0.0, end - start)
    words: list[Word] = []
    at = start
    for token, weight in zip(tokens, weights, strict=True):
        stop = at + span * weight / total
        # A word the user typed is as certain as it gets; its timing is the guess.
        words.append(Word(round(at, 3), round(stop, 3), f" {token}", 1.0, True, speaker))
        at = stop
    return words


def realign_words(segment: Segment, text: str) -> tuple[Word, ...]:
    """The words of ``segment`` re-aligned to its new ``text`` (see the module doc)."""
    tokens = text.split()
    if not tokens:
        return ()
    old = list(segment.words)
    matcher = SequenceMatcher(
        a=[_key(w.text) for w in old], b=[_key(t) for t in tokens], autojunk=False
    )
    words: list[Word] = []
    for op, a0, a1, b0, b1 in matcher.get_opcodes():
        if op == "equal":
            # Same word: its timing stands; the spelling is the new one (a comma added).
            words += [
                replace(w, text=f" {t}") for w, t in zip(old[a0:a1], tokens[b0:b1], strict=True)
            ]
            continue
        if op == "delete":
            continue
        # replace / insert: the new words take the old ones' time, or the gap where they go.
        if a1 > a0:
            start, end = old[a0].start, old[a1 - 1].end
        else:
            start = words[-1].end if words else segment.start
            end = old[a0].start if a0 < len(old) else segment.end
        start = max(segment.start, min(start, segment.end))
        end = max(start, min(end, segment.end))
        speaker = old[a0].speaker if a0 < len(old) else segment.speaker
        words += _spread(tokens[b0:b1], start, end, speaker)
    if not old:  # a segment without word timings: the new text spread over all of it
        return tuple(_spread(tokens, segment.start, segment.end, segment.speaker))
    return tuple(words)


def correct_segment(segment: Segment, text: str) -> Segment:
    """The segment with its text corrected (unchanged when the text is the same)."""
    text = " ".join(text.split())
    if text == " ".join(segment.text.split()):
        return segment
    # Whisper's segment text starts with a space; keep the convention. The edit shows
    # in the words: the corrected ones are ``interpolated`` (the schema's existing
    # "not measured" mark), not in ``flags``, which are quality warnings.
    return replace(segment, text=f" {text}" if text else "", words=realign_words(segment, text))


def correct_transcript(transcript: Transcript, texts: Mapping[int, str]) -> Transcript:
    """The transcript with the segments at these positions (0-based) given new text."""
    count = len(transcript.segments)
    for index in texts:
        if not 0 <= index < count:
            raise InvalidInputError(
                f"no segment {index}: this transcript has segments 0 to {count - 1}"
                if count
                else f"no segment {index}: this transcript has no segments"
            )
    segments = tuple(
        correct_segment(s, texts[i]) if i in texts else s for i, s in enumerate(transcript.segments)
    )
    return replace(transcript, segments=segments)
