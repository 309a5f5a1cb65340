"""Plain text: the transcript in paragraphs, ``Name: text`` for each speaker's turn."""

from __future__ import annotations

from reelscribe.formats.options import RenderOptions
from reelscribe.formats.turns import has_speakers, paragraphs
from reelscribe.models import Transcript


def render(transcript: Transcript, options: RenderOptions | None = None) -> str:
    del options  # plain text has nothing to configure; the signature is shared
    labelled = has_speakers(transcript)
    blocks = []
    for para in paragraphs(transcript):
        if labelled:
            name = "Unknown" if para.speaker is None else transcript.speaker_name(para.speaker)
            blocks.append(f"{name}: {para.text}")
        else:
            blocks.append(para.text)
    return "\n\n".join(blocks) + "\n" if blocks else ""
