"""Chapters: where the topic changes, snapped to a pause or a change of speaker.

Topic segmentation over sentence embeddings, in the spirit of C99 and Utiyama-Isahara:
for every chapter count K, dynamic programming finds the cut into K runs of sentences
that keeps each run closest to its own centroid (a run's cost is its word-weighted
distance to its mean embedding, O(1) from prefix sums). The count is the largest K
whose neighbouring chapters are all clearly different (centroid similarity below
``max_similarity``), so one long talk on one subject stays one chapter. Each cut then
moves to the sentence start nearby with the longest pause before it (a change of
speaker counts as a pause), and the chapter starts inside that pause. Chapters are at
least ``min_seconds`` long; each gets a title from its keyphrases and a summary.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from reelscribe.analysis.keywords import Embed, keywords
from reelscribe.analysis.options import ChapterOptions
from reelscribe.analysis.results import Chapter
from reelscribe.analysis.sentences import Sentence
from reelscribe.analysis.summary import summarize

MAX_CHAPTERS = 20
SNAP = 2.0  # how far (seconds) a cut may move to a longer pause
SPEAKER_CHANGE = 1.0  # a change of speaker weighs like a pause of this many seconds
TITLE_WORDS = 3  # keyphrases in a title
_INF = float("inf")


def _weights(sentences: Sequence[Sentence]) -> npt.NDArray[np.float64]:
    # Weighted by length: a "Yeah." says little about the topic.
    return np.array([max(1, len(s.text.split())) for s in sentences], dtype=np.float64)


def segment_costs(
    sentences: Sequence[Sentence], vectors: npt.NDArray[np.float32]
) -> npt.NDArray[np.float64]:
    """``cost[a, b]``: how far sentences ``a..b-1`` lie from their centroid (word-weighted
    sum of 1 - cosine); ``inf`` where ``b <= a``."""
    w = _weights(sentences)
    prefix = np.vstack([np.zeros(vectors.shape[1]), np.cumsum(vectors * w[:, None], axis=0)])
    total = np.concatenate([[0.0], np.cumsum(w)])
    n = len(sentences)
    cost = np.full((n + 1, n + 1), _INF)
    for b in range(1, n + 1):
        sums = prefix[b] - prefix[:b]
        cost[:b, b] = (total[b] - total[:b]) - np.linalg.norm(sums, axis=1)
    return cost


def _cuts(
    cost: npt.NDArray[np.float64], times: npt.NDArray[np.float64], k_max: int, min_seconds: float
) -> dict[int, list[int]]:
    """For each chapter count K (1..k_max) the best first sentences of chapters 2..K."""
    n = cost.shape[0] - 1
    best = np.full((k_max + 1, n + 1), _INF)
    back = np.zeros((k_max + 1, n + 1), dtype=int)
    long_enough = (times[None, :] - times[:, None]) >= min_seconds  # [a, b]: a..b-1
    for b in range(1, n + 1):
        if long_enough[0, b]:
            best[1, b] = cost[0, b]
    for k in range(2, k_max + 1):
        for b in range(2, n + 1):
            a = np.arange(1, b)
            total = best[k - 1, a] + np.where(long_enough[a, b], cost[a, b], _INF)
            j = int(np.argmin(total))
            best[k, b], back[k, b] = total[j], a[j]
    out: dict[int, list[int]] = {}
    for k in range(1, k_max + 1):
        if not np.isfinite(best[k, n]):
            continue
        cuts, b = [], n
        for kk in range(k, 1, -1):
            b = int(back[kk, b])
            cuts.append(b)
        out[k] = sorted(cuts)
    return out


def boundaries(
    sentences: Sequence[Sentence],
    vectors: npt.NDArray[np.float32],
    min_seconds: float,
    max_similarity: float,
) -> list[int]:
    """Indices of the sentences that start a chapter (0 always does)."""
    n = len(sentences)
    if n < 2:
        return [0]
    times = np.array([s.start for s in sentences] + [sentences[-1].end])
    span = times[-1] - times[0]
    k_max = int(min(MAX_CHAPTERS, n, span // min_seconds))
    if k_max < 2:
        return [0]
    w = _weights(sentences)
    chosen: list[int] = []
    for k, cuts in sorted(_cuts(segment_costs(sentences, vectors), times, k_max,
                                min_seconds).items()):  # fmt: skip
        edges = [0, *cuts, n]
        centroids = [_mean(vectors, list(range(a, b)), w) for a, b in itertools.pairwise(edges)]
        if k == 1 or all(float(x @ y) < max_similarity
                         for x, y in itertools.pairwise(centroids)):  # fmt: skip
            chosen = cuts
    return [0, *(_snap(sentences, i) for i in chosen)]


def _mean(
    vectors: npt.NDArray[np.float32],
    rows: list[int],
    weights: npt.NDArray[np.float64] | None = None,
) -> npt.NDArray[np.float32]:
    """The unit mean of ``rows`` (weighted by ``weights`` when given)."""
    w = None if weights is None else weights[rows]
    v: npt.NDArray[np.float32] = np.average(vectors[rows], axis=0, weights=w).astype(np.float32)
    norm = float(np.linalg.norm(v))
    return v / norm if norm > 0 else v


def _pause(sentences: Sequence[Sentence], k: int) -> float:
    s = sentences[k]
    changed = k > 0 and s.speaker != sentences[k - 1].speaker
    return s.gap_before + (SPEAKER_CHANGE if changed else 0.0)


def _snap(sentences: Sequence[Sentence], i: int) -> int:
    t = sentences[i].start
    near = [k for k in range(1, len(sentences)) if abs(sentences[k].start - t) <= SNAP]
    # The longest pause wins; a tie goes to the cut the segmentation chose.
    return max(near, key=lambda k: (round(_pause(sentences, k), 1), -abs(k - i)), default=i)


def start_time(sentences: Sequence[Sentence], i: int) -> float:
    """Where chapter ``i`` starts: inside the pause before its first sentence (up to a
    second after the previous sentence ends), so the cut does not clip a word."""
    s = sentences[i]
    previous_end = sentences[i - 1].end if i > 0 else 0.0
    return min(s.start, previous_end + min(1.0, s.gap_before / 2))


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
    starts = sorted(set(boundaries(sentences, vectors, options.min_seconds,
                                   options.max_similarity)))  # fmt: skip
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
        chapter_start = 0.0 if n == 0 else start_time(sentences, first)
        chapter_end = duration if last == len(sentences) else start_time(sentences, last)
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
