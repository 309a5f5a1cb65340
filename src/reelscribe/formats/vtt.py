"""WebVTT (.vtt): the ``WEBVTT`` header, then cues; speakers as ``<v Name>`` voice spans."""

from __future__ import annotations

from reelscribe.formats.cues import build_cues
from reelscribe.formats.options import RenderOptions
from reelscribe.models import Transcript, format_timestamp


def escape(text: str) -> str:
    """Cue text escapes: ``&``, ``<`` and ``>`` (the last also keeps ``-->`` out)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def render(transcript: Transcript, options: RenderOptions | None = None) -> str:
    opts = options or RenderOptions()
    blocks = ["WEBVTT\n"]
    for cue in build_cues(transcript, opts.cue):
        text = escape(cue.text)
        if cue.speaker is not None:
            # A voice span runs to the end of the cue, so one tag covers every line.
            name = transcript.speaker_name(cue.speaker)
            text = f"<v {escape(' '.join(name.split()))}>{text}"
        start, end = format_timestamp(cue.start), format_timestamp(cue.end)
        blocks.append(f"{start} --> {end}\n{text}\n")
    return "\n".join(blocks)
