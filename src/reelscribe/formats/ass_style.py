"""How burned-in subtitles look: the style of the ASS writer."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from reelscribe.errors import InvalidInputError

Position = Literal["bottom", "top", "middle"]

#: ASS alignment numbers (numpad layout): centred horizontally in every case.
ALIGNMENT: dict[str, int] = {"bottom": 2, "middle": 5, "top": 8}

_HEX = re.compile(r"^#([0-9a-fA-F]{6})([0-9a-fA-F]{2})?$")


@dataclass(frozen=True, slots=True)
class AssStyle:
    """Sizes are pixels on a 720-line frame; the writer scales them to the video
    (by its shorter side), so one style looks the same at 480p, 1080p or portrait.

    ``font_name`` is looked up by libass through fontconfig, which substitutes its
    default sans font when the named one is not installed, so a missing font never
    fails a burn-in; DejaVu Sans is the default because most Linux images carry it.
    """

    font_name: str = "DejaVu Sans"
    font_size: float = 44.0
    #: ``#RRGGBB`` or ``#RRGGBBAA`` (AA is opacity, ``FF`` opaque, as in CSS).
    primary_colour: str = "#FFFFFF"
    outline_colour: str = "#000000"
    #: Colour of the shadow.
    back_colour: str = "#00000080"
    outline: float = 2.5
    shadow: float = 1.0
    bold: bool = False
    position: Position = "bottom"
    #: Distance from the bottom (or top) edge.
    margin_v: float = 40.0
    #: Distance kept from the left and right edges.
    margin_h: float = 40.0

    def __post_init__(self) -> None:
        for colour in (self.primary_colour, self.outline_colour, self.back_colour):
            ass_colour(colour)  # raises on a malformed value
        if self.position not in ALIGNMENT:
            raise InvalidInputError(
                f"invalid subtitle position {self.position!r}: use bottom, top or middle"
            )
        if self.font_size <= 0 or min(self.outline, self.shadow, self.margin_v, self.margin_h) < 0:
            raise InvalidInputError("font_size must be > 0; outline, shadow and margins >= 0")
        if not self.font_name.strip() or "," in self.font_name:
            raise InvalidInputError(f"invalid font name {self.font_name!r}")


def ass_colour(value: str) -> str:
    """``#RRGGBB[AA]`` -> ASS's ``&HAABBGGRR`` (ASS alpha counts transparency)."""
    match = _HEX.match(value.strip())
    if match is None:
        raise InvalidInputError(f"invalid colour {value!r}: use #RRGGBB or #RRGGBBAA")
    rgb, opacity = match.group(1), match.group(2) or "FF"
    alpha = 255 - int(opacity, 16)
    return f"&H{alpha:02X}{rgb[4:6]}{rgb[2:4]}{rgb[0:2]}".upper()
