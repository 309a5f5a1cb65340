"""Chapters: where the topic changes, snapped to a pause or a change of speaker.

Like TextTiling with embeddings: at every sentence start, the text of the window
before (``WINDOW`` seconds) is compared with the window after; a topic boundary is a
deep valley of that similarity. Each boundary then moves to the sentence start nearby
with the longest pause before it (a change of speaker counts as a long pause), so a
chapter never starts mid-thought. Chapters are at least ``min_seconds`` long; each gets
a title from its keyphrases and a short summary of its own.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from reelscribe.analysis.keywords import Embed, keywords
from reelscribe.analysis.options import ChapterOptions
from reelscribe.analysis.results import Chapter
from reelscribe.analysis.sentences import Sentence
from reelscribe.analysis.summary import summarize

WINDOW = 20.0  # seconds of speech on each side of a candidate boundary
SNAP = 4.0  # how far (seconds) a boundary may move to a pause
SPEAKER_CHANGE = 1.0  # a change of speaker weighs like a pause of this many seconds
TITLE_WORDS = 3  # keyphrases in a title


def similarity_curve(
    sentences: Sequence[Sentence], vectors: npt.NDArray[np.float32]
) -> npt.NDArray[np.float64]:
    """For each sentence i (from 1): similarity of the window before its start with the
    window from it on; ``curve[0]`` is 1 (no boundary before the first)."""
    n = len(sentences)
    curve = np.ones(n)
    for i in range(1, n):
        t = sentences[i].start
        before = [j for j in range(i) if sentences[j].end >= t - WINDOW]
        after = [j for j in range(i, n) if sentences[j].start <= t + WINDOW]
        a = _mean(vectors, before or [i - 1])
        b = _mean(vectors, after)
        curve[i] = float(a @ b)
    return curve


def _mean(vectors: npt.NDArray[np.float32], rows: list[int]) -> npt.NDArray[np.float32]:
    v: npt.NDArray[np.float32] = vectors[rows].mean(axis=0)
    norm = float(np.linalg.norm(v))
    return v / norm if norm > 0 else v


def boundaries(
    sentences: Sequence[Sentence], vectors: npt.NDArray[np.float32], min_seconds: float
) -> list[int]:
    """Indices of the sentences that start a new chapter (0 always does)."""
    n = len(sentences)
    if n < 3:
        return [0]
    curve = similarity_curve(sentences, vectors)
    depth = np.zeros(n)
    for i in range(1, n):
        # TextTiling's depth: how far the curve climbs on both sides of the valley.
        left = curve[1 : i + 1].max()
        right = curve[i:].max()
        depth[i] = (left - curve[i]) + (right - curve[i])
    inner = depth[1:]
    cutoff = inner.mean() + inner.std()
    start, end = sentences[0].start, sentences[-1].end
    chosen: list[int] = [0]
    for i in sorted(range(1, n), key=lambda k: -depth[k]):
        if depth[i] <= cutoff or depth[i] < 0.15:
            break
        i = _snap(sentences, i)
        t = sentences[i].start
        times = [sentences[c].start for c in chosen]
        if t - start < min_seconds or end - t < min_seconds:
            continue
        if any(abs(t - u) < min_seconds for u in times):
            continue
        chosen.append(i)
    return sorted(chosen)


def _snap(sentences: Sequence[Sentence], i: int) -> int:
    t = sentences[i].start

    def pause(k: int) -> float:
        s = sentences[k]
        changed = k > 0 and s.speaker != sentences[k - 1].speaker
        return s.gap_before + (SPEAKER_CHANGE if changed else 0.0)

    near = [k for k in range(1, len(sentences)) if abs(sentences[k].start - t) <= SNAP]
    # The longest pause wins; a tie goes to the valley itself.
    return max(near, key=lambda k: (round(pause(k), 1), -abs(k - i)), default=i)


def chapters(
    sentences: Sequence[Sentence],
    vectors: npt.NDArray[np.float32],
    language: str,
    embed: Embed,
    options: ChapterOptions,
    duration: float,
) -> tuple[Chapter, ...]:
    """The chapters of a recording; empty when it is too short to have two."""
    if not sentences or duration < 2 * options.min_seconds:
        return ()
    starts = boundaries(sentences, vectors, options.min_seconds)
    if len(starts) < 2:
        return ()
    out: list[Chapter] = []
    titles: set[str] = set()
    for n, first in enumerate(starts):
        last = starts[n + 1] if n + 1 < len(starts) else len(sentences)
        part = list(sentences[first:last])
        rows = vectors[first:last]
        text = " ".join(s.text for s in part)
        centroid = _mean(vectors, list(range(first, last)))
        phrases = keywords(text, language, centroid, embed, 6)
        title = _title([k.text for k in phrases], titles) or f"Part {n + 1}"
        titles.add(title.lower())
        chapter_start = 0.0 if n == 0 else part[0].start
        chapter_end = duration if last == len(sentences) else sentences[last].start
        short = summarize(part, rows, 1 if len(part) < 8 else 2)
        out.append(
            Chapter(
                start=round(chapter_start, 3),
                end=round(max(chapter_end, chapter_start), 3),
                title=title,
                summary=tuple(s.text for s in short),
                keywords=tuple(k.text for k in phrases),
            )
        )
    return tuple(out)


def _title(phrases: list[str], taken: set[str]) -> str:
    """Two or three keyphrases that do not repeat each other, capitalised; a title
    already used by an earlier chapter gets the next phrases instead."""
    picked: list[str] = []
    for phrase in phrases:
        low = phrase.lower()
        if any(low in p.lower() or p.lower() in low for p in picked):
            continue
        picked.append(phrase)
        if len(picked) == TITLE_WORDS:
            break
    title = ", ".join(picked)
    if title.lower() in taken and len(phrases) > len(picked):
        title = ", ".join([*picked[:-1], phrases[-1]])
    return title[:1].upper() + title[1:]
