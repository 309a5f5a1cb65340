"""Options shared by the commands: flag types, and the flags turned into JobOptions."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer

from reelscribe.models import ClipMode
from reelscribe.options import JobOptions, parse_speaker_names


class Task(StrEnum):
    TRANSCRIBE = "transcribe"
    TRANSLATE = "translate"


class Channels(StrEnum):
    MIX = "mix"
    SPLIT = "split"


class SpeakerLabel(StrEnum):
    BRACKET = "bracket"
    DASH = "dash"


class Subtitles(StrEnum):
    NONE = "none"
    SIDECAR = "sidecar"
    BURN = "burn"


SourceArg = Annotated[str, typer.Argument(help="A file path, an http(s) URL or a yt-dlp URL.")]
StartOpt = Annotated[str | None, typer.Option(help="Start: seconds or HH:MM:SS.mmm.")]
EndOpt = Annotated[str | None, typer.Option(help="End: seconds or HH:MM:SS.mmm.")]
OutOpt = Annotated[Path | None, typer.Option("--out", "-o", help="Output folder.")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print a JSON summary on stdout.")]
QuietOpt = Annotated[bool, typer.Option("--quiet", "-q", help="No progress output.")]
CookiesOpt = Annotated[
    Path | None, typer.Option("--cookies", help="Netscape cookie file for yt-dlp.")
]
MaxCharsOpt = Annotated[int, typer.Option("--max-line-chars", help="Subtitle characters per line.")]
MaxLinesOpt = Annotated[int, typer.Option("--max-lines", help="Subtitle lines per cue.")]
FontSizeOpt = Annotated[
    float, typer.Option("--font-size", help="Burned-in font size (px on a 720p frame).")
]
PositionOpt = Annotated[
    str, typer.Option("--position", help="Burned-in subtitles: bottom, top or middle.")
]
PrimaryOpt = Annotated[str, typer.Option("--primary-colour", help="Burned-in text colour.")]
OutlineColourOpt = Annotated[
    str, typer.Option("--outline-colour", help="Burned-in outline colour.")
]
OutlineOpt = Annotated[float, typer.Option("--outline", help="Burned-in outline width (px).")]
MaxCpsOpt = Annotated[float, typer.Option("--max-cps", help="Subtitle reading speed limit.")]
ModelOpt = Annotated[str | None, typer.Option(help="Model name or directory.")]
LanguageOpt = Annotated[str | None, typer.Option(help="Force a language (e.g. en).")]
TaskOpt = Annotated[Task, typer.Option(help="transcribe, or translate into English.")]
PromptOpt = Annotated[str | None, typer.Option(help="Text to prime the model.")]
HotwordsOpt = Annotated[str | None, typer.Option(help="Words to favour (names, jargon).")]
TemperatureOpt = Annotated[
    float, typer.Option(help="First decoding temperature (0-1); Whisper falls back above it.")
]
EngineOpt = Annotated[
    str | None,
    typer.Option(
        help="ASR engine: local, hosted, local-then-hosted or hosted-then-local "
        "(default: REELSCRIBE_ASR_ENGINE)."
    ),
]
WordsOpt = Annotated[bool, typer.Option("--words", help="Word-level section in Markdown.")]
SpeakersOpt = Annotated[bool, typer.Option("--speakers", help="Label who speaks when.")]
NumSpeakersOpt = Annotated[
    int | None, typer.Option("--num-speakers", help="Exact speaker count (implies --speakers).")
]
MinSpeakersOpt = Annotated[int | None, typer.Option("--min-speakers", help="At least N speakers.")]
MaxSpeakersOpt = Annotated[int | None, typer.Option("--max-speakers", help="At most N speakers.")]
ChannelsOpt = Annotated[
    Channels,
    typer.Option(help="mix: one mono transcript; split: each channel is one speaker."),
]
SpeakerNamesOpt = Annotated[
    str | None,
    typer.Option("--speaker-names", help='Names by id: "SPEAKER_00=Diane,SPEAKER_01=Sheila".'),
]
SpeakerLabelOpt = Annotated[
    SpeakerLabel | None,
    typer.Option("--speaker-label", help="SRT/ASS speaker change: bracket ([Name]) or dash."),
]


class Moderate(StrEnum):
    OFF = "off"
    FLAG = "flag"
    BLOCK = "block"


SummaryOpt = Annotated[
    bool, typer.Option("--summary", help="Extractive summary (the most central sentences).")
]
SummarySentencesOpt = Annotated[
    int | None, typer.Option("--summary-sentences", help="Summary length in sentences.")
]
SummaryRatioOpt = Annotated[
    float | None, typer.Option("--summary-ratio", help="Summary length as a share (0-1].")
]
KeywordsOpt = Annotated[bool, typer.Option("--keywords", help="Keywords and keyphrases.")]
ChaptersOpt = Annotated[
    bool, typer.Option("--chapters", help="Topic chapters (00:00 Title), also in the MP4 clip.")
]
LlmOpt = Annotated[
    bool, typer.Option("--llm", help="Also an abstractive summary by the LLM endpoint.")
]
ActionItemsOpt = Annotated[bool, typer.Option("--action-items", help="LLM: action items.")]
QuestionsOpt = Annotated[bool, typer.Option("--questions", help="LLM: open questions.")]
LlmUrlOpt = Annotated[
    str | None,
    typer.Option("--llm-url", help="OpenAI-compatible base URL (REELSCRIBE_LLM_URL)."),
]
LlmModelOpt = Annotated[
    str | None, typer.Option("--llm-model", help="LLM model name (REELSCRIBE_LLM_MODEL).")
]
LlmKeyOpt = Annotated[
    str | None,
    typer.Option("--llm-key", envvar="REELSCRIBE_LLM_API_KEY", help="LLM API key."),
]
ModerateOpt = Annotated[
    Moderate | None,
    typer.Option("--moderate", help="Content moderation: off, flag (report) or block."),
]
SeparateOpt = Annotated[
    bool,
    typer.Option(
        "--separate",
        help="Transcribe the vocal stem, not the mix (songs, loud music); "
        "the 'vocals' output writes the stem.",
    ),
]
ModeOpt = Annotated[
    ClipMode,
    typer.Option(
        "--clip-mode",
        "--mode",
        help="fast: stream copy from the keyframe at or before start; exact: frame-accurate.",
    ),
]


HostOpt = Annotated[str | None, typer.Option(help="Bind address (REELSCRIBE_HOST).")]
PortOpt = Annotated[int | None, typer.Option(help="Port (REELSCRIBE_PORT).")]


def job_options(
    *,
    style: dict[str, Any] | None = None,
    cue: dict[str, Any] | None = None,
    speaker_names: str | None = None,
    **values: Any,
) -> JobOptions:
    """The job options the flags ask for: the same object ``POST /api/jobs`` takes."""
    fields: dict[str, Any] = {k: v.value if isinstance(v, StrEnum) else v
                              for k, v in values.items() if v is not None}  # fmt: skip
    if style:
        fields["subtitle_style"] = style
    if cue:
        fields["cue_limits"] = cue
    if speaker_names:
        fields["speaker_names"] = parse_speaker_names(speaker_names)
    return JobOptions.build(**fields)


#: Flags named otherwise than the JobOptions field (or style/cue key) they fill.
_RENAMED = {"words_in_md": "words_in_markdown", "max_line_chars": "max_chars_per_line"}
_STYLE = ("font_size", "position", "primary_colour", "outline_colour", "outline")
_CUE = ("max_chars_per_line", "max_lines", "max_cps")


def flag_options(flags: dict[str, Any], **overrides: Any) -> JobOptions:
    """The job options a command's flags ask for. ``flags`` is the command's
    ``locals()``: each parameter named like a JobOptions field (or a subtitle style or
    cue limit) is taken, unset ones (None) left to the defaults, so a new option needs
    only its flag; ``overrides`` fill fields whose flag has another name (``clip``'s
    ``--mode``)."""
    values = {_RENAMED.get(k, k): v for k, v in flags.items()} | overrides
    style = {k: values[k] for k in _STYLE if values.get(k) is not None}
    cue = {k: values[k] for k in _CUE if values.get(k) is not None}
    skip = ("subtitle_style", "cue_limits")
    fields = {k: v for k, v in values.items() if k in JobOptions.model_fields and k not in skip}
    return job_options(style=style, cue=cue, **fields)
