"""The analysis stages: ``summarize`` (summary and keywords), ``chapters`` and ``llm``.

Each takes the transcript and returns it with its :class:`~reelscribe.analysis.Analysis`
filled in; the speech is never touched. Sentences are embedded once per run (the
``summarize`` and ``chapters`` stages share them through ``cache``). Imported only by
runs that analyse: it loads sentence-transformers and torch.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from reelscribe.analysis.options import ChapterOptions, LlmOptions, SummaryOptions
from reelscribe.analysis.results import Analysis
from reelscribe.analysis.text import (
    Embedded,
    embed_transcript,
    summary_and_keywords,
    topic_chapters,
)
from reelscribe.models import Transcript
from reelscribe.progress import ProgressCallback, report


def _embedded(transcript: Transcript, model: str, cache: dict[str, Any]) -> Embedded:
    key = f"embedded:{model}"
    found = cache.get(key)
    if not isinstance(found, Embedded):
        found = cache[key] = embed_transcript(transcript, model)
    return found


def _with(transcript: Transcript, **changes: Any) -> Transcript:
    analysis = transcript.analysis or Analysis()
    methods = analysis.methods | changes.pop("methods", {})
    return replace(transcript, analysis=replace(analysis, methods=methods, **changes))


def summarize(
    transcript: Transcript,
    options: SummaryOptions,
    progress: ProgressCallback | None = None,
    cache: dict[str, Any] | None = None,
) -> Transcript:
    report(progress, "summarize", 0.0, "embedding sentences")
    embedded = _embedded(transcript, options.embedding_model, {} if cache is None else cache)
    report(progress, "summarize", 0.6, f"{len(embedded.sentences)} sentences")
    picked, words = summary_and_keywords(transcript, embedded, options)
    report(progress, "summarize", 1.0, f"{len(picked)} sentences, {len(words)} keywords")
    return _with(transcript, summary=picked, keywords=words,
                 methods={"summary": f"extractive ({embedded.model}, LexRank + MMR)",
                          "keywords": "yake + embedding rank"})  # fmt: skip


def chapters(
    transcript: Transcript,
    options: ChapterOptions,
    progress: ProgressCallback | None = None,
    cache: dict[str, Any] | None = None,
) -> Transcript:
    report(progress, "chapters", 0.0, "finding topic changes")
    embedded = _embedded(transcript, options.embedding_model, {} if cache is None else cache)
    found = topic_chapters(transcript, embedded, options)
    report(progress, "chapters", 1.0, f"{len(found)} chapters")
    return _with(transcript, chapters=found,
                 methods={"chapters": f"topic segmentation ({embedded.model})"})  # fmt: skip


def llm_notes(
    transcript: Transcript, options: LlmOptions, progress: ProgressCallback | None = None
) -> Transcript:
    from reelscribe.analysis.llm import LlmClient, write_notes

    report(progress, "llm", 0.0, f"asking {options.model}")
    with LlmClient(options) as client:
        notes = write_notes(client, transcript, options, progress)
    report(progress, "llm", 1.0, f"{len(notes.flagged)} unchecked claims")
    return _with(transcript, llm=notes, methods={"llm": options.model})


def analyze(
    transcript: Transcript,
    summary: SummaryOptions | None,
    chapter_options: ChapterOptions | None,
    llm: LlmOptions | None = None,
    progress: ProgressCallback | None = None,
) -> Transcript:
    """Every text analysis asked for, on a stored transcript (``reelscribe analyze``)."""
    cache: dict[str, Any] = {}
    if summary is not None:
        transcript = summarize(transcript, summary, progress, cache)
    if chapter_options is not None:
        transcript = chapters(transcript, chapter_options, progress, cache)
    if llm is not None:
        transcript = llm_notes(transcript, llm, progress)
    return transcript
