"""SubRip (.srt): numbered cues, ``HH:MM:SS,mmm`` times, one blank line between."""

from __future__ import annotations

from reelscribe.formats.cues import build_cues
from reelscribe.formats.options import RenderOptions
from reelscribe.models import Transcript, format_timestamp


def render(transcript: Transcript, options: RenderOptions | None = None) -> str:
    opts = options or RenderOptions()
    blocks = []
    for number, cue in enumerate(build_cues(transcript, opts.cue), start=1):
        start = format_timestamp(cue.start, sep=",")
        end = format_timestamp(cue.end, sep=",")
        blocks.append(f"{number}\n{start} --> {end}\n{cue.text}\n")
    # SRT has no standard speaker markup, so speakers are left to VTT, ASS and the
    # text formats rather than eating into the 42-character lines.
    return "\n".join(blocks)
