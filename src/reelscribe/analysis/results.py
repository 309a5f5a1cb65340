"""The results of the analysis stages: plain frozen dataclasses, like the transcript.

A :class:`~reelscribe.models.Transcript` carries an :class:`Analysis` once the
``summarize`` / ``chapters`` / ``moderate`` stages have run, so every writer (JSON,
Markdown, chapters) renders from the one object, and ``reelscribe analyze`` can
replace it without touching the speech.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

Policy = Literal["off", "flag", "block"]


@dataclass(frozen=True, slots=True)
class SummarySentence:
    """A sentence of the transcript, word for word, where it was said."""

    start: float
    end: float
    text: str
    speaker: str | None
    #: Centrality in the transcript (mean similarity to the other sentences).
    score: float


@dataclass(frozen=True, slots=True)
class Keyword:
    text: str
    #: Higher is more relevant (YAKE's rank merged with embedding similarity).
    score: float


@dataclass(frozen=True, slots=True)
class Chapter:
    start: float
    end: float
    title: str
    #: The chapter's own short extractive summary (sentences of the transcript).
    summary: tuple[str, ...] = ()
    keywords: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Claim:
    """A name or number the LLM wrote that the transcript does not contain."""

    text: str
    reason: str


@dataclass(frozen=True, slots=True)
class LlmNotes:
    """What an OpenAI-compatible model wrote, and what of it could not be checked."""

    model: str
    summary: str
    action_items: tuple[str, ...] = ()
    questions: tuple[str, ...] = ()
    #: A title per chapter (in the chapters' order), when there were chapters.
    chapter_titles: tuple[str, ...] = ()
    #: Names and numbers that do not appear in the transcript: do not trust them.
    flagged: tuple[Claim, ...] = ()


@dataclass(frozen=True, slots=True)
class Detection:
    label: str
    score: float
    #: x, y, width, height in the frame's pixels.
    box: tuple[int, int, int, int]


@dataclass(frozen=True, slots=True)
class ModerationFlag:
    """One sampled frame with detections."""

    time: float
    detections: tuple[Detection, ...]
    unsafe: bool
    #: A small JPEG as a data: URI; blurred when the frame is unsafe.
    thumbnail: str = ""


@dataclass(frozen=True, slots=True)
class ModerationReport:
    policy: Policy
    frames: int
    #: At least one frame every this many seconds (plus every scene change).
    interval: float
    #: Labels that make a frame unsafe (the rest are only reported).
    unsafe_labels: tuple[str, ...]
    threshold: float
    flags: tuple[ModerationFlag, ...] = ()
    skipped: str | None = None  # why nothing was checked (e.g. "no video")

    @property
    def unsafe(self) -> bool:
        return any(f.unsafe for f in self.flags)

    @property
    def blocked(self) -> bool:
        return self.policy == "block" and self.unsafe

    @property
    def verdict(self) -> Literal["skipped", "safe", "flagged", "blocked"]:
        if self.skipped is not None:
            return "skipped"
        if self.blocked:
            return "blocked"
        return "flagged" if self.unsafe else "safe"


@dataclass(frozen=True, slots=True)
class Analysis:
    summary: tuple[SummarySentence, ...] = ()
    keywords: tuple[Keyword, ...] = ()
    chapters: tuple[Chapter, ...] = ()
    moderation: ModerationReport | None = None
    llm: LlmNotes | None = None
    #: What made it: e.g. {"embeddings": "all-MiniLM-L6-v2", "keywords": "yake"}.
    methods: dict[str, str] = field(default_factory=dict)

    @property
    def empty(self) -> bool:
        return not (self.summary or self.keywords or self.chapters or self.moderation
                    or self.llm)  # fmt: skip
