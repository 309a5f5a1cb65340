"""Everything a writer may be told, in one frozen object (kept apart from the
package ``__init__`` so writers can import it without a cycle)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from reelscribe.errors import InvalidInputError
from reelscribe.formats.ass_style import AssStyle
from reelscribe.formats.cues import CueOptions


@dataclass(frozen=True, slots=True)
class RenderOptions:
    cue: CueOptions = field(default_factory=CueOptions)
    ass_style: AssStyle = field(default_factory=AssStyle)
    #: Add a word-by-word table (with probabilities) to the Markdown output.
    words_in_markdown: bool = False
    #: (width, height) of the video the subtitles go on; ASS scales to it.
    video_size: tuple[int, int] | None = None
    #: How SRT and ASS cues mark a change of speaker: ``[Name]`` or a dialogue dash.
    speaker_label: Literal["bracket", "dash"] = "bracket"

    def __post_init__(self) -> None:
        if self.video_size is not None and min(self.video_size) < 1:
            raise InvalidInputError(f"invalid video size {self.video_size!r}")
