"""Markdown (.md): title, a metadata line, the full transcript in paragraphs (by
speaker turn when there are speakers), the timestamped segments and, on request,
every word with its timing and probability."""

from __future__ import annotations

import re

from reelscribe.formats.options import RenderOptions
from reelscribe.formats.tokens import normalize
from reelscribe.formats.turns import has_speakers, paragraphs
from reelscribe.models import Transcript, format_timestamp

_INLINE_SPECIAL = re.compile(r"([\\`*_\[\]<>|#])")
# Line starts Markdown would read as a list item ("1. ", "- ", "+ ").
_ORDERED_START = re.compile(r"^(\d+)(?=[.)](?:\s|$))")
_BULLET_START = re.compile(r"^([-+])(?=\s|$)")


def escape(text: str) -> str:
    """Text shows as written: markup characters are backslash-escaped."""
    text = _INLINE_SPECIAL.sub(r"\\\1", text)
    text = _ORDERED_START.sub(r"\1\\", text)
    return _BULLET_START.sub(r"\\\1", text)


def _ts(seconds: float) -> str:
    # Hours only when the recording has them: 01:05.250 reads better than 00:01:05.250.
    return format_timestamp(seconds, always_hours=False)


def render(transcript: Transcript, options: RenderOptions | None = None) -> str:
    opts = options or RenderOptions()
    title = transcript.extra.get("title") or "Transcript"
    out = [f"# {escape(normalize(title))}", "", _metadata(transcript), ""]
    out += _analysis_section(transcript)
    out += _transcript_section(transcript)
    out += _segments_section(transcript)
    out += _warnings_section(transcript)
    if opts.words_in_markdown:
        out += _words_section(transcript)
    return "\n".join(out).rstrip("\n") + "\n"


def _metadata(transcript: Transcript) -> str:
    model = transcript.model
    languages = transcript.languages
    parts = [
        f"Language: {transcript.language} ({transcript.language_probability:.0%})"
        if len(languages) < 2
        else f"Languages: {', '.join(languages)}",
        f"Duration: {_ts(transcript.duration)}",
        f"Model: {model.name} ({model.device}, {model.compute_type})",
        f"Task: {transcript.task}",
    ]
    if transcript.source_offset:
        parts.append(f"Starts at {_ts(transcript.source_offset)} in the source")
    return "*" + escape(" · ".join(parts)) + "*"


def _analysis_section(transcript: Transcript) -> list[str]:
    """Summary, keywords and chapters at the top, for a reader who skims."""
    analysis = transcript.analysis
    if analysis is None:
        return []
    out: list[str] = []
    if analysis.summary:
        out += ["## Summary", ""]
        for s in analysis.summary:
            who = f"**{escape(_name(transcript, s.speaker))}:** " if s.speaker else ""
            out.append(f"- `{_ts(s.start)}` {who}{escape(normalize(s.text))}")
        out.append("")
    if analysis.llm is not None:
        llm = analysis.llm
        out += [f"## Summary by {escape(llm.model)}", "", escape(normalize(llm.summary)), ""]
        for heading, items in (("Action items", llm.action_items), ("Questions", llm.questions)):
            if items:
                out += [f"**{heading}**", "", *(f"- {escape(normalize(i))}" for i in items), ""]
        if llm.flagged:
            flagged = ", ".join(f"{c.text} ({c.reason})" for c in llm.flagged)
            out += [f"*Not found in the transcript: {escape(flagged)}*", ""]
    if analysis.keywords:
        words = ", ".join(escape(normalize(k.text)) for k in analysis.keywords)
        out += [f"**Keywords:** {words}", ""]
    if analysis.chapters:
        from reelscribe.formats.analysis import chapter_time

        out += ["## Chapters", ""]
        llm_titles = analysis.llm.chapter_titles if analysis.llm is not None else ()
        for n, c in enumerate(analysis.chapters):
            line = f"- `{chapter_time(c.start)}` **{escape(normalize(c.title))}**"
            if n < len(llm_titles):
                line += f" ({escape(normalize(llm_titles[n]))})"
            if c.summary:
                line += " — " + escape(normalize(" ".join(c.summary)))
            out.append(line)
        out.append("")
    moderation = analysis.moderation
    if moderation is not None:
        out += [f"*Moderation: {moderation.verdict} ({moderation.frames} frames, "
                f"policy {moderation.policy})*", ""]  # fmt: skip
    return out


def _transcript_section(transcript: Transcript) -> list[str]:
    out = ["## Transcript", ""]
    labelled = has_speakers(transcript)
    mixed = len(transcript.languages) > 1
    previous: str | None = None
    language: str | None = None
    for index, para in enumerate(paragraphs(transcript)):
        if mixed and para.language and para.language != language:
            out += [f"*Language: {escape(para.language)}*", ""]
            language = para.language
        text = escape(para.text)
        if labelled and (index == 0 or para.speaker != previous):
            # A label opens each speaker turn; the turn's later paragraphs follow bare.
            speaker = escape(_name(transcript, para.speaker))
            text = f"**{speaker}** ({_ts(para.start)}): {text}"
        previous = para.speaker
        out += [text, ""]
    return out


def _segments_section(transcript: Transcript) -> list[str]:
    out = ["## Timestamped segments", ""]
    labelled = has_speakers(transcript)
    # With more than one language, a marker opens each stretch in a language.
    mixed = len(transcript.languages) > 1
    language: str | None = None
    for seg in transcript.segments:
        text = normalize(seg.text)
        if not text:
            continue
        if mixed and seg.language and seg.language != language:
            out += ([""] if language else []) + [f"*Language: {escape(seg.language)}*", ""]
            language = seg.language
        line = f"- `{_ts(seg.start)} → {_ts(seg.end)}` "
        if labelled:
            line += f"**{escape(_name(transcript, seg.speaker))}:** "
        line += escape(text)
        if seg.flags:
            line += " _(" + escape(", ".join(seg.flags)) + ")_"
        out.append(line)
    return [*out, ""]


def _warnings_section(transcript: Transcript) -> list[str]:
    """Where speech may have been lost: a reader must not take the text as complete."""
    if not transcript.warnings:
        return []
    out = ["## Warnings", ""]
    for w in transcript.warnings:
        out.append(f"- `{_ts(w.start)} → {_ts(w.end)}` {escape(w.reason)}: {escape(w.detail)}")
    return [*out, ""]


def _name(transcript: Transcript, speaker: str | None) -> str:
    return "Unknown" if speaker is None else transcript.speaker_name(speaker)


def _words_section(transcript: Transcript) -> list[str]:
    out = [
        "## Words",
        "",
        "| Start | End | Word | Probability |",
        "| ---: | ---: | --- | ---: |",
    ]
    for word in transcript.words:
        mark = " (interpolated)" if word.interpolated else ""
        out.append(
            f"| {_ts(word.start)} | {_ts(word.end)} | {escape(normalize(word.text))}{mark} "
            f"| {word.probability:.2f} |"
        )
    return [*out, ""]
