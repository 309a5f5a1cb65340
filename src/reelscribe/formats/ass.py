"""Advanced SubStation Alpha (.ass) for burning subtitles in with libass.

``PlayResX``/``PlayResY`` are the video's size, so libass draws in video pixels and
the style (given for a 720-line frame) is scaled here to match.
"""

from __future__ import annotations

from reelscribe.formats.ass_style import ALIGNMENT, AssStyle, ass_colour
from reelscribe.formats.cues import build_cues, speaker_labeller
from reelscribe.formats.options import RenderOptions
from reelscribe.models import Transcript

DEFAULT_VIDEO_SIZE = (1280, 720)
_REFERENCE_LINES = 720

_STYLE_FIELDS = (
    "Name, Fontname, Fontsize, PrimaryColour, SecondaryColour, OutlineColour, BackColour, "
    "Bold, Italic, Underline, StrikeOut, ScaleX, ScaleY, Spacing, Angle, BorderStyle, "
    "Outline, Shadow, Alignment, MarginL, MarginR, MarginV, Encoding"
)
_EVENT_FIELDS = "Layer, Start, End, Style, Name, MarginL, MarginR, MarginV, Effect, Text"


def escape(text: str) -> str:
    """Makes text literal for libass: braces would open override tags and ``\\N``,
    ``\\n``, ``\\h`` are escapes, so braces become ``\\{``/``\\}``, a backslash is
    followed by an invisible WORD JOINER (ASS has no escape for it; this is libass's
    advice) and newlines become ``\\N``."""
    out: list[str] = []
    for char in text:
        if char == "\\":
            out.append("\\\u2060")
        elif char in "{}":
            out.append("\\" + char)
        elif char == "\n":
            out.append("\\N")
        elif char != "\r":
            out.append(char)
    return "".join(out)


def ass_time(seconds: float) -> str:
    """``H:MM:SS.cc``: ASS counts centiseconds."""
    cs = (round(seconds * 1000) + 5) // 10
    hours, cs = divmod(cs, 360_000)
    minutes, cs = divmod(cs, 6000)
    secs, cs = divmod(cs, 100)
    return f"{hours}:{minutes:02d}:{secs:02d}.{cs:02d}"


def _num(value: float) -> str:
    return f"{round(value, 2):g}"


def _style_line(style: AssStyle, scale: float) -> str:
    fields = [
        "Default",
        style.font_name.strip(),
        _num(style.font_size * scale),
        ass_colour(style.primary_colour),
        ass_colour(style.primary_colour),  # SecondaryColour: karaoke only
        ass_colour(style.outline_colour),
        ass_colour(style.back_colour),
        "-1" if style.bold else "0",
        "0", "0", "0", "100", "100", "0", "0",
        "1",  # BorderStyle 1: outline plus drop shadow
        _num(style.outline * scale),
        _num(style.shadow * scale),
        str(ALIGNMENT[style.position]),
        _num(style.margin_h * scale),
        _num(style.margin_h * scale),
        _num(style.margin_v * scale),
        "1",
    ]  # fmt: skip
    return "Style: " + ",".join(fields)


def render(transcript: Transcript, options: RenderOptions | None = None) -> str:
    opts = options or RenderOptions()
    width, height = opts.video_size or DEFAULT_VIDEO_SIZE
    # Scale by the shorter side so portrait video gets the size landscape would.
    scale = min(width, height) / _REFERENCE_LINES
    lines = [
        "[Script Info]",
        "; Written by reelscribe",
        "ScriptType: v4.00+",
        f"PlayResX: {width}",
        f"PlayResY: {height}",
        # 0: libass may still wrap a line that is too wide for a narrow frame.
        "WrapStyle: 0",
        "ScaledBorderAndShadow: yes",
        # Colours are plain RGB; no TV-range matrix conversion.
        "YCbCr Matrix: None",
        "",
        "[V4+ Styles]",
        f"Format: {_STYLE_FIELDS}",
        _style_line(opts.ass_style, scale),
        "",
        "[Events]",
        f"Format: {_EVENT_FIELDS}",
    ]
    label = speaker_labeller(transcript, opts.speaker_label)
    for cue in build_cues(transcript, opts.cue, label):
        # The Name field is not drawn (the label in the text is); it keeps the speaker
        # for editors. Commas separate fields, so none may appear in it.
        shown = "" if cue.speaker is None else transcript.speaker_name(cue.speaker)
        name = " ".join(shown.replace(",", " ").split())
        start, end = ass_time(cue.start), ass_time(cue.end)
        lines.append(f"Dialogue: 0,{start},{end},Default,{name},0,0,0,,{escape(cue.text)}")
    return "\n".join(lines) + "\n"
