"""What each analysis stage is told: frozen options, built by ``build_plan`` from the
job options and the settings."""

from __future__ import annotations

from dataclasses import dataclass, field

from reelscribe.analysis.results import Policy
from reelscribe.config import UNSAFE_LABELS
from reelscribe.errors import InvalidInputError

#: The default unsafe labels (see the setting ``moderation_unsafe_labels``).
DEFAULT_UNSAFE_LABELS: tuple[str, ...] = UNSAFE_LABELS


@dataclass(frozen=True, slots=True)
class SummaryOptions:
    #: Sentences in the summary; ``None``: use ``ratio``.
    sentences: int | None = None
    #: Share of the transcript's sentences (used when ``sentences`` is None).
    ratio: float = 0.1
    #: Keyphrases to return (0: none).
    keywords: int = 10
    #: Summary sentences (0: keywords only).
    summary: bool = True
    embedding_model: str = "all-MiniLM-L6-v2"

    def __post_init__(self) -> None:
        if self.sentences is not None and not 1 <= self.sentences <= 100:
            raise InvalidInputError("summary sentences must be 1..100")
        if not 0 < self.ratio <= 1:
            raise InvalidInputError("summary ratio must be in (0, 1]")

    def count(self, available: int) -> int:
        """How many sentences to pick out of ``available``."""
        if available == 0:
            return 0
        wanted = self.sentences if self.sentences is not None else round(available * self.ratio)
        return max(1, min(available, wanted))


@dataclass(frozen=True, slots=True)
class ChapterOptions:
    #: Shortest chapter (YouTube's rule is 10 s); the recording needs at least two.
    min_seconds: float = 10.0
    #: Neighbouring chapters must be less alike than this (cosine of their mean
    #: embeddings): unrelated topics score ~0.1, parts of one talk 0.4 and more.
    max_similarity: float = 0.3
    embedding_model: str = "all-MiniLM-L6-v2"


@dataclass(frozen=True, slots=True)
class LlmOptions:
    base_url: str
    model: str
    api_key: str | None = field(default=None, repr=False)
    action_items: bool = False
    questions: bool = False
    timeout: float = 120.0
    max_retries: int = 4
    #: Longest transcript text sent in one request; longer ones are mapped in chunks.
    chunk_chars: int = 12_000
    max_backoff: float = 30.0


@dataclass(frozen=True, slots=True)
class ModerationOptions:
    policy: Policy = "flag"
    #: At least one frame every this many seconds, besides scene changes.
    interval: float = 2.0
    #: ffmpeg's scene score (0..1) above which a frame counts as a scene change.
    scene_threshold: float = 0.3
    #: Detector score at which a detection counts.
    threshold: float = 0.5
    unsafe_labels: tuple[str, ...] = DEFAULT_UNSAFE_LABELS
    batch: int = 8
    thumbnail_px: int = 160
