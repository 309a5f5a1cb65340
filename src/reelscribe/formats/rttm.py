"""RTTM (.rttm): the NIST "Rich Transcription Time Marked" lines diarization is scored
with (pyannote.metrics, dscore, md-eval)::

    SPEAKER <file> 1 <start> <duration> <NA> <NA> <speaker> <NA> <NA>

One line per speaker turn, in time order; overlapping speech gives overlapping lines.
Times are seconds from the start of the transcribed audio, like every other output.
Fields are separated by spaces, so spaces in names and the file id become ``_``.
"""

from __future__ import annotations

import re

from reelscribe.formats.options import RenderOptions
from reelscribe.formats.turns import segment_pieces
from reelscribe.models import SpeakerTurn, Transcript

_SPACE = re.compile(r"\s+")


def _field(text: str) -> str:
    return _SPACE.sub("_", text.strip()) or "NA"


def turns_of(transcript: Transcript) -> list[SpeakerTurn]:
    """The diarization turns, else turns rebuilt from the words' speakers (per-channel
    transcripts), else the speech as one unknown speaker."""
    if transcript.turns:
        return sorted(transcript.turns, key=lambda t: (t.start, t.end, t.speaker))
    return [
        SpeakerTurn(p.start, p.end, p.speaker or "unknown")
        for p in segment_pieces(transcript)
        if p.end > p.start
    ]


def render(transcript: Transcript, options: RenderOptions | None = None) -> str:
    del options  # nothing to configure; the signature is shared
    uri = _field(transcript.extra.get("title") or "audio")
    lines = []
    for turn in turns_of(transcript):
        name = _field(transcript.speaker_name(turn.speaker))
        duration = turn.end - turn.start
        lines.append(f"SPEAKER {uri} 1 {turn.start:.3f} {duration:.3f} <NA> <NA> {name} <NA> <NA>")
    return "\n".join(lines) + "\n" if lines else ""
