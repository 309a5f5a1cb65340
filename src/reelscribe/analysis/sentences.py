"""The transcript as timed sentences: the unit a summary picks and a chapter groups.

Sentences are cut from the transcript's tokens (word timings where there are any), so
each one's text is the transcript's own words in order and its time is where they
were said. A sentence also ends at a change of speaker, at a long pause, or once it is
very long (a transcript without punctuation still has sentences).
"""

from __future__ import annotations

from dataclasses import dataclass

from reelscribe.formats.tokens import SENTENCE_END, Token, join_tokens, tokenize
from reelscribe.models import Transcript

PAUSE = 1.5  # seconds of silence that end a sentence whatever the punctuation
MAX_WORDS = 60  # an unpunctuated run is cut here


@dataclass(frozen=True, slots=True)
class Sentence:
    start: float
    end: float
    text: str
    speaker: str | None
    #: Silence before this sentence (seconds; 0 for the first).
    gap_before: float = 0.0


def sentences(transcript: Transcript) -> list[Sentence]:
    out: list[Sentence] = []
    run: list[Token] = []
    previous_end = 0.0

    def close() -> None:
        nonlocal previous_end
        if run:
            text = join_tokens(run)
            if any(c.isalnum() for c in text):
                gap = max(0.0, run[0].start - previous_end) if out else 0.0
                out.append(Sentence(run[0].start, run[-1].end, text, run[0].speaker, gap))
                previous_end = run[-1].end
            run.clear()

    for token in tokenize(transcript):
        if run and (
            token.speaker != run[-1].speaker
            or token.start - run[-1].end >= PAUSE
            or len(run) >= MAX_WORDS
        ):
            close()
        run.append(token)
        if SENTENCE_END.search(token.text):
            close()
    close()
    return out
