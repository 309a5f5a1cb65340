"""The offline text analysis in one pass: sentences embedded once, then the summary,
the keywords and the chapters all read the same vectors (embedding is the cost)."""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial

import numpy as np
import numpy.typing as npt

from reelscribe.analysis.chapters import chapters
from reelscribe.analysis.embeddings import embed
from reelscribe.analysis.keywords import keywords
from reelscribe.analysis.options import ChapterOptions, SummaryOptions
from reelscribe.analysis.results import Chapter, Keyword, SummarySentence
from reelscribe.analysis.sentences import Sentence, sentences
from reelscribe.analysis.summary import summarize
from reelscribe.models import Transcript


@dataclass(frozen=True, slots=True)
class Embedded:
    sentences: list[Sentence]
    vectors: npt.NDArray[np.float32]
    model: str

    @property
    def centroid(self) -> npt.NDArray[np.float32]:
        if len(self.vectors) == 0:
            return np.zeros(self.vectors.shape[1] if self.vectors.ndim == 2 else 384, np.float32)
        v: npt.NDArray[np.float32] = self.vectors.mean(axis=0)
        return v / max(float(np.linalg.norm(v)), 1e-12)


def embed_transcript(transcript: Transcript, model: str) -> Embedded:
    parts = sentences(transcript)
    return Embedded(parts, embed([s.text for s in parts], model), model)


def summary_and_keywords(
    transcript: Transcript, embedded: Embedded, options: SummaryOptions
) -> tuple[tuple[SummarySentence, ...], tuple[Keyword, ...]]:
    parts = embedded.sentences
    picked = (
        summarize(parts, embedded.vectors, options.count(len(parts))) if options.summary else ()
    )
    text = " ".join(s.text for s in parts)
    words = keywords(text, transcript.language, embedded.centroid,
                     partial(embed, name=embedded.model), options.keywords)  # fmt: skip
    return picked, words


def topic_chapters(
    transcript: Transcript, embedded: Embedded, options: ChapterOptions
) -> tuple[Chapter, ...]:
    return chapters(embedded.sentences, embedded.vectors, transcript.language,
                    partial(embed, name=embedded.model), options,
                    duration=transcript.duration)  # fmt: skip
