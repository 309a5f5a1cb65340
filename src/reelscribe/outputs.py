"""The outputs a run can be asked for: every registered text format, plus media.

Light on purpose (no pipeline imports), so the API validates output names without
loading yt-dlp, PyAV or NumPy.
"""

from __future__ import annotations

from collections.abc import Iterable

from reelscribe.errors import InvalidInputError
from reelscribe.formats import FORMATS

#: Media outputs, by the stage that writes them.
MEDIA_OUTPUTS: dict[str, str] = {
    "clip": "the cut media (.mp4, or .m4a for audio-only sources)",
    "burned_clip": "the clip with the subtitles burned in (.subtitled.mp4)",
    "vocals": "the vocal stem (.vocals.flac); implies the separate option",
}


#: Outputs of the analysis stages (they imply the stage that writes them).
ANALYSIS_OUTPUTS: dict[str, str] = {
    "chapters": "YouTube-style chapter lines, `00:00 Title` (.chapters.txt)",
    "moderation": "the content moderation report (.moderation.json)",
}


def output_names() -> tuple[str, ...]:
    return (*FORMATS, *MEDIA_OUTPUTS, *ANALYSIS_OUTPUTS)


def check_outputs(names: Iterable[str]) -> tuple[str, ...]:
    """Known names, duplicates dropped, order kept; an unknown one is refused."""
    known = output_names()
    out = tuple(dict.fromkeys(names))
    for name in out:
        if name not in known:
            raise InvalidInputError(f"unknown output {name!r}: choose from {', '.join(known)}")
    return out
