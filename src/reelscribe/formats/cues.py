"""The one cue builder behind SRT, VTT and ASS.

How a transcript becomes cues, in three steps:

1. **Runs.** Tokens (words, see :mod:`.tokens`) are cut into runs wherever the
   speaker changes or a silence of at least ``pause_split`` falls between words.
   No cue ever spans a run boundary.
2. **Cues.** Each run is split into cues by dynamic programming over the token
   boundaries. A cue is feasible when its text fits ``max_lines`` lines of
   ``max_chars_per_line`` and it lasts at most ``max_duration`` (a lone word is
   always feasible). Among feasible splits the cheapest wins: every cue costs a
   little, ending a cue after sentence punctuation costs nothing, after clause
   punctuation a little, elsewhere more unless a pause falls there; a cue that
   starts a sentence it does not finish after ending another costs extra, and so
   do characters that cannot be read at ``max_cps`` and cues shorter than
   ``min_duration``, so the split moves to where time is available.
3. **Timing.** In whole milliseconds: a cue starts with its first word and ends
   with its last, extended into the following silence to reach ``min_duration``
   and the time ``max_cps`` needs, but never past ``max_duration``, never closer
   than ``gap`` to the next cue and never past the transcript's end. Where another
   speaker starts talking before a cue's words end (two people at once), the cues
   overlap instead: the limit is the next cue that is not talking over it.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

from reelscribe.errors import InvalidInputError
from reelscribe.formats.lines import LineFill, layout_lines
from reelscribe.formats.tokens import CLAUSE_END, SENTENCE_END, Token, char_count, tokenize
from reelscribe.models import Transcript

# Costs of the split search, in arbitrary units; only their order matters much.
_CUE_COST = 2.0  # per cue: prefer fewer, fuller cues
_CLAUSE_BREAK = 3.0
_PLAIN_BREAK = 10.0  # ending a cue mid-clause with no pause
# A cue that ends a sentence and then starts the next one, leaving it unfinished
# ("...short lines. And you also"): readers expect a new sentence on a new cue.
_DANGLING_SENTENCE = 4.0
_PAUSE_RELIEF = 6.0  # how much a pause near ``pause_split`` lowers a plain break
_UNREADABLE_CHAR = 0.5  # per character beyond what max_cps allows
_SHORT_SECOND = 10.0  # per second below min_duration


@dataclass(frozen=True, slots=True)
class CueOptions:
    max_chars_per_line: int = 42
    max_lines: int = 2
    #: Reading speed limit in characters (spaces included) per second.
    max_cps: float = 17.0
    min_duration: float = 0.7
    max_duration: float = 7.0
    #: A silence between words at least this long (seconds) always ends a cue.
    pause_split: float = 0.6
    #: The least time between one cue's end and the next one's start (seconds).
    gap: float = 0.0

    def __post_init__(self) -> None:
        if self.max_chars_per_line < 1 or self.max_lines < 1:
            raise InvalidInputError("max_chars_per_line and max_lines must be >= 1")
        if self.max_cps <= 0 or self.pause_split <= 0:
            raise InvalidInputError("max_cps and pause_split must be > 0")
        if self.gap < 0 or self.min_duration < 0:
            raise InvalidInputError("gap and min_duration must be >= 0")
        if self.max_duration <= 0 or self.min_duration > self.max_duration:
            raise InvalidInputError("need 0 <= min_duration <= max_duration and max_duration > 0")


@dataclass(frozen=True, slots=True)
class Cue:
    """One subtitle: times in seconds (whole milliseconds), text already split in lines."""

    start: float
    end: float
    lines: tuple[str, ...]
    speaker: str | None = None

    @property
    def text(self) -> str:
        return "\n".join(self.lines)


#: Turns a speaker id into the label a cue starts with at a change of speaker
#: (``"[Diane]"``, ``"-"``); see :func:`speaker_labeller`.
SpeakerLabel = Callable[[str], str]


def build_cues(
    transcript: Transcript, options: CueOptions | None = None, label: SpeakerLabel | None = None
) -> list[Cue]:
    """Splits the transcript into subtitle cues (see the module docstring). With
    ``label``, the first cue after each change of speaker starts with the speaker's
    label, laid out (and counted against the line length) as part of its first word."""
    opts = options or CueOptions()
    tokens = tokenize(transcript)
    groups: list[Sequence[Token]] = []
    runs = _runs(tokens, opts)
    if label is not None:
        runs = _labelled(runs, label)
    for index, run in enumerate(runs):
        # The first word of the next run bounds how far this run's last cue may stretch.
        following = runs[index + 1][0].start if index + 1 < len(runs) else math.inf
        for i, j in _split_run(run, following, opts):
            groups.append(run[i:j])
    return _timed(groups, transcript.duration, opts)


def _runs(tokens: Sequence[Token], opts: CueOptions) -> list[Sequence[Token]]:
    runs: list[Sequence[Token]] = []
    begin = 0
    for k in range(1, len(tokens)):
        prev, tok = tokens[k - 1], tokens[k]
        if tok.speaker != prev.speaker or tok.start - prev.end >= opts.pause_split:
            runs.append(tokens[begin:k])
            begin = k
    if tokens:
        runs.append(tokens[begin:])
    return runs


def _labelled(runs: list[Sequence[Token]], label: SpeakerLabel) -> list[Sequence[Token]]:
    out: list[Sequence[Token]] = []
    previous: str | None = None
    for run in runs:
        first = run[0]
        if first.speaker is not None and first.speaker != previous:
            # Glued to the first word, so no split can leave the label alone in a cue.
            run = [replace(first, text=f"{label(first.speaker)} {first.text}"), *run[1:]]
        previous = first.speaker
        out.append(run)
    return out


def speaker_labeller(transcript: Transcript, style: str) -> SpeakerLabel:
    """``bracket``: ``[Name]``; ``dash``: the dialogue dash subtitlers use."""
    if style == "dash":
        return lambda _speaker: "-"
    return lambda speaker: f"[{' '.join(transcript.speaker_name(speaker).split())}]"


def _split_run(run: Sequence[Token], following: float, opts: CueOptions) -> list[tuple[int, int]]:
    """Cheapest feasible split of one run, as (first, end) token index pairs."""
    m = len(run)
    best = [math.inf] * (m + 1)
    back = [0] * (m + 1)
    best[0] = 0.0
    for i in range(m):
        if best[i] == math.inf:
            continue
        fill = LineFill(opts.max_chars_per_line)
        sentence_ended = False  # a sentence ended inside tokens i..j-2
        for j in range(i + 1, m + 1):
            fits = fill.add(run[j - 1]) <= opts.max_lines
            too_long = run[j - 1].end - run[i].start > opts.max_duration
            if j > i + 1 and (not fits or too_long):
                break
            next_start = run[j].start if j < m else following
            cost = best[i] + _CUE_COST + _cue_cost(run, i, j, next_start, fill.chars, opts)
            ends_sentence = bool(SENTENCE_END.search(run[j - 1].text))
            if sentence_ended and not ends_sentence:
                cost += _DANGLING_SENTENCE
            sentence_ended = sentence_ended or ends_sentence
            if cost < best[j]:
                best[j], back[j] = cost, i
    bounds: list[tuple[int, int]] = []
    j = m
    while j > 0:
        bounds.append((back[j], j))
        j = back[j]
    return bounds[::-1]


def _cue_cost(
    run: Sequence[Token], i: int, j: int, next_start: float, chars: int, opts: CueOptions
) -> float:
    cost = 0.0
    if j < len(run):
        cost += _break_cost(run[j - 1], run[j], opts)
    start = run[i].start
    available = min(next_start - opts.gap, start + opts.max_duration) - start
    available = max(available, run[j - 1].end - start, 0.0)
    cost += _UNREADABLE_CHAR * max(0.0, chars - opts.max_cps * available)
    cost += _SHORT_SECOND * max(0.0, opts.min_duration - available)
    return cost


def _break_cost(last: Token, nxt: Token, opts: CueOptions) -> float:
    if SENTENCE_END.search(last.text):
        return 0.0
    if CLAUSE_END.search(last.text):
        return _CLAUSE_BREAK
    pause = max(0.0, nxt.start - last.end)
    return _PLAIN_BREAK - _PAUSE_RELIEF * min(1.0, pause / opts.pause_split)


def _timed(groups: Sequence[Sequence[Token]], duration: float, opts: CueOptions) -> list[Cue]:
    # Whole milliseconds from here on, so every writer prints exactly these times
    # and rounding can never create an overlap.
    starts: list[int] = []
    for group in groups:
        start = round(group[0].start * 1000)
        if starts and start <= starts[-1]:
            start = starts[-1] + 1  # garbled word times: keep cues strictly ordered
        starts.append(start)
    # Limits round towards being kept: never shorter than min or longer than max.
    gap_ms = math.ceil(opts.gap * 1000 - 1e-6)
    min_ms = math.ceil(opts.min_duration * 1000 - 1e-6)
    max_ms = math.floor(opts.max_duration * 1000 + 1e-6)
    cues: list[Cue] = []
    for k, group in enumerate(groups):
        start = starts[k]
        natural_end = round(group[-1].end * 1000)
        limit = max(round(duration * 1000), natural_end)
        for n in range(k + 1, len(groups)):
            # Speech of two people at once (per-channel transcripts) gives overlapping
            # cues, as players show them; otherwise a cue ends before the next begins.
            talking_over = groups[n][0].speaker != group[0].speaker and starts[n] < natural_end
            if not talking_over:
                limit = starts[n] - gap_ms
                break
        lines = layout_lines(group, opts.max_chars_per_line)
        reading_ms = math.ceil(char_count(group) * 1000 / opts.max_cps)
        wanted = max(natural_end, start + min_ms, start + reading_ms)
        end = min(wanted, limit, start + max_ms)
        # No room at all (words sharing one instant): 1 ms, which the strictly
        # increasing starts always leave.
        end = max(end, start + 1)
        cues.append(Cue(start / 1000, end / 1000, lines, group[0].speaker))
    return cues
