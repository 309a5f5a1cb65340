"""Pure writers: :class:`~reelscribe.models.Transcript` -> text.

Every format is one module with ``render(transcript, options) -> str``; subtitle
formats (SRT, VTT, ASS) share one cue builder (:mod:`.cues`), the prose formats
(plain text, Markdown) share one paragraph builder (:mod:`.turns`). :data:`FORMATS`
names them all; :func:`render` picks one by name.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from reelscribe.errors import InvalidInputError
from reelscribe.formats import ass, json_doc, markdown, rttm, srt, txt, vtt
from reelscribe.formats.ass_style import AssStyle
from reelscribe.formats.cues import Cue, CueOptions, build_cues, speaker_labeller
from reelscribe.formats.options import RenderOptions
from reelscribe.models import Transcript

Renderer = Callable[[Transcript, RenderOptions | None], str]


@dataclass(frozen=True, slots=True)
class Format:
    name: str
    extension: str  # with the dot
    media_type: str
    render: Renderer


FORMATS: dict[str, Format] = {
    f.name: f
    for f in (
        Format("srt", ".srt", "application/x-subrip", srt.render),
        Format("vtt", ".vtt", "text/vtt", vtt.render),
        Format("txt", ".txt", "text/plain", txt.render),
        Format("json", ".json", "application/json", json_doc.render),
        Format("md", ".md", "text/markdown", markdown.render),
        Format("ass", ".ass", "text/x-ssa", ass.render),
        Format("rttm", ".rttm", "text/plain", rttm.render),
    )
}

#: Other names people use for the same formats.
_ALIASES = {"markdown": "md", "text": "txt", "webvtt": "vtt", "subrip": "srt", "ssa": "ass"}


def format_name(name: str) -> str:
    """The canonical name of a format (``"Markdown"`` -> ``"md"``)."""
    key = name.strip().lower().lstrip(".")
    key = _ALIASES.get(key, key)
    if key not in FORMATS:
        raise InvalidInputError(f"unknown format {name!r}: choose from {', '.join(FORMATS)}")
    return key


def parse_formats(value: str) -> tuple[str, ...]:
    """``"srt, vtt"`` -> ``("srt", "vtt")``: canonical names, duplicates dropped."""
    names = [part for part in value.split(",") if part.strip()]
    if not names:
        raise InvalidInputError(f"no format given: choose from {', '.join(FORMATS)}")
    return tuple(dict.fromkeys(format_name(n) for n in names))


def render(transcript: Transcript, fmt: str, options: RenderOptions | None = None) -> str:
    return FORMATS[format_name(fmt)].render(transcript, options or RenderOptions())


__all__ = [
    "FORMATS",
    "AssStyle",
    "Cue",
    "CueOptions",
    "Format",
    "RenderOptions",
    "build_cues",
    "format_name",
    "parse_formats",
    "render",
    "speaker_labeller",
]
