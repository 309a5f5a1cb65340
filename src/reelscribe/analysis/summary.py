"""Extractive summary: the transcript's most central sentences, without repeats.

Centrality is PageRank over the sentence-similarity graph (LexRank with cosine weights):
a sentence that many others resemble states a main point. Sentences are then picked by
maximal marginal relevance, so a point made twice is picked once, and returned in the
order they were said. Every summary sentence is a sentence of the transcript, with its
time and speaker.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from reelscribe.analysis.results import SummarySentence
from reelscribe.analysis.sentences import Sentence

DAMPING = 0.85
#: Weight of centrality against novelty in MMR (1: centrality only).
MMR_LAMBDA = 0.7
#: Sentences shorter than this are fillers ("Yeah.", "Okay, so.") unless nothing else.
MIN_WORDS = 5


def centrality(vectors: npt.NDArray[np.float32]) -> npt.NDArray[np.float64]:
    """PageRank scores (sum 1) over cosine similarities of unit ``vectors``."""
    n = len(vectors)
    if n == 0:
        return np.zeros(0)
    if n == 1:
        return np.ones(1)
    sim = np.clip(vectors @ vectors.T, 0.0, None).astype(np.float64)
    np.fill_diagonal(sim, 0.0)
    rows = sim.sum(axis=1, keepdims=True)
    # A sentence like no other links everywhere equally (a dangling node).
    walk = np.where(rows > 0, sim / np.where(rows > 0, rows, 1.0), 1.0 / n)
    rank = np.full(n, 1.0 / n)
    for _ in range(100):
        new: npt.NDArray[np.float64] = (1 - DAMPING) / n + DAMPING * walk.T @ rank
        if np.abs(new - rank).sum() < 1e-9:
            return new
        rank = new
    return rank


def summarize(
    sentences: Sequence[Sentence], vectors: npt.NDArray[np.float32], count: int
) -> tuple[SummarySentence, ...]:
    """``count`` sentences by centrality and MMR, in time order."""
    if not sentences or count <= 0:
        return ()
    scores = centrality(vectors)
    top = scores.max()
    norm = scores / top if top > 0 else scores
    eligible = np.array([len(s.text.split()) >= MIN_WORDS for s in sentences])
    if eligible.sum() < count:
        eligible[:] = True
    # MMR, vectorised: each pick updates every sentence's similarity to the picked ones.
    redundancy = np.zeros(len(sentences))
    open_ = eligible.copy()
    chosen: list[int] = []
    for _ in range(min(count, int(eligible.sum()))):
        value = np.where(open_, MMR_LAMBDA * norm - (1 - MMR_LAMBDA) * redundancy, -np.inf)
        best = int(np.argmax(value))
        chosen.append(best)
        open_[best] = False
        redundancy = np.maximum(redundancy, vectors @ vectors[best])
    return tuple(
        SummarySentence(s.start, s.end, s.text, s.speaker, round(float(norm[i]), 4))
        for i in sorted(chosen)
        for s in (sentences[i],)
    )
