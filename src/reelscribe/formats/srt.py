"""SubRip (.srt): numbered cues, ``HH:MM:SS,mmm`` times, one blank line between."""

from __future__ import annotations

from reelscribe.formats.cues import build_cues, speaker_labeller
from reelscribe.formats.options import RenderOptions
from reelscribe.models import Transcript, format_timestamp


def render(transcript: Transcript, options: RenderOptions | None = None) -> str:
    opts = options or RenderOptions()
    blocks = []
    # SRT has no speaker markup: the first cue of each speaker's turn starts with a
    # label instead (the style is RenderOptions.speaker_label).
    label = speaker_labeller(transcript, opts.speaker_label)
    for number, cue in enumerate(build_cues(transcript, opts.cue, label), start=1):
        start = format_timestamp(cue.start, sep=",")
        end = format_timestamp(cue.end, sep=",")
        blocks.append(f"{number}\n{start} --> {end}\n{cue.text}\n")
    return "\n".join(blocks)
