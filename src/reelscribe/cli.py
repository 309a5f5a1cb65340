"""The ``reelscribe`` command line: a thin edge over :mod:`reelscribe.pipeline.runner`.

Progress goes to stderr, results to stdout (``--json`` for scripts). Any error ends
the process with one readable line and a non-zero exit code: 2 for bad input (the
user's fault), 1 for everything else.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from dataclasses import asdict
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from reelscribe import __version__
from reelscribe.config import Settings, get_settings
from reelscribe.console import ProgressDisplay
from reelscribe.errors import InvalidInputError, ReelscribeError
from reelscribe.formats import parse_formats
from reelscribe.models import ClipMode, TimeRange
from reelscribe.options import JobOptions, parse_speaker_names
from reelscribe.progress import Progress

if TYPE_CHECKING:  # the pipeline (yt-dlp, PyAV, NumPy) is imported by the commands using it
    from reelscribe.pipeline.fetch import FetchOptions
    from reelscribe.pipeline.plan import JobPlan
    from reelscribe.pipeline.runner import PipelineResult

app = typer.Typer(
    name="reelscribe",
    help="Fetch, clip, transcribe and subtitle media.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)


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
ModeOpt = Annotated[
    ClipMode,
    typer.Option(
        "--clip-mode",
        "--mode",
        help="fast: stream copy from the keyframe at or before start; exact: frame-accurate.",
    ),
]


def _with_llm(settings: Settings, url: str | None, model: str | None, key: str | None) -> Settings:
    """The settings with the LLM endpoint the flags name (the CLI's user is the operator;
    a job submitted to the API cannot name one)."""
    values: dict[str, Any] = {}
    if url is not None:
        values["llm_url"] = url
    if model is not None:
        values["llm_model"] = model
    if key is not None:
        from pydantic import SecretStr

        values["llm_api_key"] = SecretStr(key)
    return settings.model_copy(update=values) if values else settings


def _fetch(settings: Settings, cookies: Path | None) -> FetchOptions:
    from reelscribe.pipeline.fetch import FetchOptions

    options = FetchOptions.from_settings(settings)
    if cookies is not None:
        if not cookies.is_file():
            raise InvalidInputError(f"cookie file {cookies} does not exist")
        from dataclasses import replace

        options = replace(options, cookies_file=cookies)
    return options


def _options(
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


def _plan(
    source: str,
    options: JobOptions,
    settings: Settings,
    *,
    outputs: list[str],
    start: str | None,
    end: str | None,
    cookies: Path | None = None,
) -> JobPlan:
    from reelscribe.pipeline.plan import build_plan

    return build_plan(source, options, settings, outputs=outputs,
                      time_range=TimeRange.parse(start, end),
                      fetch=_fetch(settings, cookies))  # fmt: skip


def _execute(
    plan: JobPlan, out: Path | None, settings: Settings, *, as_json: bool, quiet: bool
) -> PipelineResult:
    from reelscribe.pipeline.runner import run

    out_dir = out or settings.output_dir
    with (
        tempfile.TemporaryDirectory(prefix="reelscribe-") as work,
        ProgressDisplay(enabled=not quiet) as display,
    ):
        result = run(plan.request, out_dir, Path(work), display)
    _print_result(result, as_json=as_json)
    _print_warnings(result)
    return result


def _print_warnings(result: PipelineResult) -> None:
    """Nothing lost silently (pipeline/coverage.py): one stderr line per stretch of
    speech with no text or dropped segment, on the source's timeline."""
    from reelscribe.pipeline.coverage import describe

    if result.transcript is None:
        return
    for warning in result.transcript.warnings:
        line = describe(warning, result.transcript.source_offset)
        typer.echo(f"reelscribe: warning: {line}", err=True)


def _print_result(result: PipelineResult, *, as_json: bool) -> None:
    if as_json:
        payload = result.summary(with_text=True)
        payload["outputs"] = {k: str(v) for k, v in result.outputs.items()}
        payload["source"] = result.fetched.source
        typer.echo(json.dumps(payload, indent=2))
        return
    for kind, path in result.outputs.items():
        typer.echo(f"{kind}\t{path}")


@app.command()
def transcribe(
    source: SourceArg,
    start: StartOpt = None,
    end: EndOpt = None,
    format: Annotated[
        str,
        typer.Option(
            "--format",
            "-f",
            help="Comma-separated: srt,vtt,txt,json,md,ass,rttm, and chapters, moderation.",
        ),
    ] = "srt",
    out: OutOpt = None,
    model: ModelOpt = None,
    language: LanguageOpt = None,
    task: TaskOpt = Task.TRANSCRIBE,
    clip_mode: ModeOpt = ClipMode.FAST,
    burn_in: Annotated[
        bool, typer.Option("--burn-in", help="Also write the clip with subtitles burned in.")
    ] = False,
    clip_out: Annotated[bool, typer.Option("--clip", help="Also write the cut media.")] = False,
    initial_prompt: PromptOpt = None,
    hotwords: HotwordsOpt = None,
    temperature: TemperatureOpt = 0.0,
    words_in_md: WordsOpt = False,
    speakers: SpeakersOpt = False,
    num_speakers: NumSpeakersOpt = None,
    min_speakers: MinSpeakersOpt = None,
    max_speakers: MaxSpeakersOpt = None,
    channels: ChannelsOpt = Channels.MIX,
    speaker_names: SpeakerNamesOpt = None,
    speaker_label: SpeakerLabelOpt = None,
    max_line_chars: MaxCharsOpt = 42,
    max_lines: MaxLinesOpt = 2,
    max_cps: MaxCpsOpt = 17.0,
    font_size: FontSizeOpt = 44.0,
    position: PositionOpt = "bottom",
    primary_colour: PrimaryOpt = "#FFFFFF",
    outline_colour: OutlineColourOpt = "#000000",
    outline: OutlineOpt = 2.5,
    summary: SummaryOpt = False,
    summary_sentences: SummarySentencesOpt = None,
    summary_ratio: SummaryRatioOpt = None,
    keywords: KeywordsOpt = False,
    chapters: ChaptersOpt = False,
    llm: LlmOpt = False,
    action_items: ActionItemsOpt = False,
    questions: QuestionsOpt = False,
    moderate: ModerateOpt = None,
    llm_url: LlmUrlOpt = None,
    llm_model: LlmModelOpt = None,
    llm_key: LlmKeyOpt = None,
    cookies: CookiesOpt = None,
    as_json: JsonOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Transcribe a file or URL (optionally a range) into subtitles and transcripts."""
    settings = _with_llm(get_settings(), llm_url, llm_model, llm_key)
    options = _options(
        model=model, language=language, task=task, clip_mode=clip_mode,
        initial_prompt=initial_prompt, hotwords=hotwords, temperature=temperature,
        words_in_markdown=words_in_md, speakers=speakers, num_speakers=num_speakers,
        min_speakers=min_speakers, max_speakers=max_speakers, channels=channels,
        speaker_names=speaker_names, speaker_label=speaker_label,
        summary=summary, summary_sentences=summary_sentences,
        summary_ratio=summary_ratio, keywords=keywords, chapters=chapters, llm=llm,
        action_items=action_items, questions=questions, moderate=moderate,
        style={"font_size": font_size, "position": position, "primary_colour": primary_colour,
               "outline_colour": outline_colour, "outline": outline},
        cue={"max_chars_per_line": max_line_chars, "max_lines": max_lines, "max_cps": max_cps},
    )  # fmt: skip
    outputs = [*_outputs(format), *(["clip"] if clip_out else []),
               *(["burned_clip"] if burn_in else [])]  # fmt: skip
    plan = _plan(source, options, settings, outputs=outputs, start=start, end=end,
                 cookies=cookies)  # fmt: skip
    _execute(plan, out, settings, as_json=as_json, quiet=quiet)


def _outputs(value: str) -> list[str]:
    """``--format``: text formats, plus the analysis outputs ``chapters``/``moderation``."""
    from reelscribe.outputs import ANALYSIS_OUTPUTS

    names = [p.strip().lower() for p in value.split(",") if p.strip()]
    extra = [n for n in names if n in ANALYSIS_OUTPUTS]
    formats = ",".join(n for n in names if n not in ANALYSIS_OUTPUTS)
    return [*(parse_formats(formats) if formats or not extra else ()), *extra]


@app.command()
def clip(
    source: SourceArg,
    start: Annotated[str, typer.Option(help="Start: seconds or HH:MM:SS.mmm.")],
    end: Annotated[str, typer.Option(help="End: seconds or HH:MM:SS.mmm.")],
    mode: ModeOpt = ClipMode.FAST,
    subtitles: Annotated[
        Subtitles,
        typer.Option(help="none; sidecar: also write SRT/VTT; burn: burn them into the clip."),
    ] = Subtitles.NONE,
    model: Annotated[str | None, typer.Option(help="Model for the subtitles.")] = None,
    language: LanguageOpt = None,
    speakers: SpeakersOpt = False,
    speaker_names: SpeakerNamesOpt = None,
    max_line_chars: MaxCharsOpt = 42,
    max_lines: MaxLinesOpt = 2,
    font_size: FontSizeOpt = 44.0,
    position: PositionOpt = "bottom",
    out: OutOpt = None,
    cookies: CookiesOpt = None,
    as_json: JsonOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Cut a section of a file or URL, optionally with subtitles."""
    settings = get_settings()
    options = _options(
        model=model, language=language, clip_mode=mode, speakers=speakers,
        speaker_names=speaker_names,
        style={"font_size": font_size, "position": position},
        cue={"max_chars_per_line": max_line_chars, "max_lines": max_lines},
    )  # fmt: skip
    outputs = {Subtitles.NONE: ["clip"], Subtitles.SIDECAR: ["srt", "vtt", "clip"],
               Subtitles.BURN: ["burned_clip"]}[subtitles]  # fmt: skip
    plan = _plan(source, options, settings, outputs=outputs, start=start, end=end,
                 cookies=cookies)  # fmt: skip
    _execute(plan, out, settings, as_json=as_json, quiet=quiet)


@app.command(name="render")
def render_transcript(
    transcript: Annotated[Path, typer.Argument(help="A reelscribe JSON transcript.")],
    format: Annotated[
        str, typer.Option("--format", "-f", help="Comma-separated: srt,vtt,txt,json,md,ass,rttm.")
    ] = "srt",
    speaker_names: SpeakerNamesOpt = None,
    speaker_label: SpeakerLabelOpt = None,
    out: OutOpt = None,
) -> None:
    """Write other formats from a JSON transcript (e.g. after renaming speakers),
    without transcribing again."""
    from dataclasses import replace

    from reelscribe.formats import FORMATS, RenderOptions, render
    from reelscribe.formats.json_doc import parse

    if not transcript.is_file():
        raise InvalidInputError(f"{transcript} does not exist")
    parsed = parse(transcript.read_bytes())
    if speaker_names:
        names = parsed.speaker_names | parse_speaker_names(speaker_names)
        parsed = replace(parsed, speaker_names=names)
    settings = get_settings()
    label = settings.speaker_label if speaker_label is None else speaker_label.value
    options = RenderOptions(speaker_label="dash" if label == "dash" else "bracket")
    out_dir = out or transcript.parent
    out_dir.mkdir(parents=True, exist_ok=True)
    for fmt in parse_formats(format):
        path = out_dir / f"{transcript.stem}{FORMATS[fmt].extension}"
        path.write_text(render(parsed, fmt, options), encoding="utf-8")
        typer.echo(f"{fmt}\t{path}")


@app.command()
def analyze(
    transcript: Annotated[Path, typer.Argument(help="A reelscribe JSON transcript.")],
    summary: SummaryOpt = False,
    summary_sentences: SummarySentencesOpt = None,
    summary_ratio: SummaryRatioOpt = None,
    keywords: KeywordsOpt = False,
    chapters: ChaptersOpt = False,
    llm: LlmOpt = False,
    action_items: ActionItemsOpt = False,
    questions: QuestionsOpt = False,
    llm_url: LlmUrlOpt = None,
    llm_model: LlmModelOpt = None,
    llm_key: LlmKeyOpt = None,
    format: Annotated[
        str,
        typer.Option("--format", "-f", help="What to write: json,md,chapters (and others)."),
    ] = "json,md",
    out: OutOpt = None,
    quiet: QuietOpt = False,
) -> None:
    """Re-run the analysis (summary, keywords, chapters, LLM notes) on a stored JSON
    transcript, without ASR. With no analysis flag, summary and keywords are made."""
    from dataclasses import replace

    from reelscribe.analysis.results import Analysis
    from reelscribe.formats import FORMATS, render
    from reelscribe.formats.analysis import chapter_lines
    from reelscribe.formats.json_doc import parse
    from reelscribe.pipeline.analyze import analyze as run_analysis
    from reelscribe.pipeline.plan import chapter_options, llm_options, summary_options

    if not transcript.is_file():
        raise InvalidInputError(f"{transcript} does not exist")
    parsed = parse(transcript.read_bytes())
    settings = _with_llm(get_settings(), llm_url, llm_model, llm_key)
    options = _options(summary=summary, summary_sentences=summary_sentences,
                       summary_ratio=summary_ratio, keywords=keywords, chapters=chapters,
                       llm=llm, action_items=action_items, questions=questions)  # fmt: skip
    if not (options.wants_summary or options.keywords or options.chapters or options.wants_llm):
        options = options.model_copy(update={"summary": True, "keywords": True})
    wanted = _outputs(format)
    # A new analysis replaces the old one; the moderation report (of the video, which is
    # not here) is kept.
    moderation = parsed.analysis.moderation if parsed.analysis is not None else None
    base = replace(parsed, analysis=Analysis(moderation=moderation) if moderation else None)
    with ProgressDisplay(enabled=not quiet) as display:
        result = run_analysis(
            base,
            summary_options(options, settings),
            chapter_options(options, settings, tuple(wanted)),
            llm_options(options, settings),
            display,
        )
    out_dir = out or transcript.parent
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = transcript.stem
    for name in wanted:
        if name == "chapters":
            path = out_dir / f"{stem}.chapters.txt"
            path.write_text(chapter_lines(result), encoding="utf-8")
        elif name == "moderation":
            continue  # moderation needs the video: `reelscribe transcribe --moderate`
        else:  # the JSON is rewritten in place: same speech, new analysis
            path = out_dir / f"{stem}{FORMATS[name].extension}"
            path.write_text(render(result, name), encoding="utf-8")
        typer.echo(f"{name}\t{path}")


@app.command()
def probe(
    source: Annotated[str, typer.Argument(help="A media file path.")],
    keyframes: Annotated[bool, typer.Option(help="Also list keyframe times.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Show a media file's duration, streams and codecs."""
    from reelscribe.pipeline.probe import probe as probe_media

    info = probe_media(Path(source), keyframes=keyframes)
    if as_json:
        data = asdict(info)
        data["path"] = str(info.path)
        typer.echo(json.dumps(data, indent=2))
        return
    typer.echo(f"{info.path}: {info.format_name}, {info.duration:.3f} s, {info.size} bytes")
    for s in info.streams:
        if s.kind == "video":
            detail = f"{s.width}x{s.height} {s.fps or 0:.3f} fps {s.pix_fmt or ''}"
            if s.rotation:
                detail += f" rotated {s.rotation}°"
        elif s.kind == "audio":
            detail = f"{s.sample_rate} Hz {s.channels} ch"
        else:
            detail = ""
        typer.echo(f"  #{s.index} {s.kind} {s.codec} {detail}".rstrip())
    if keyframes:
        typer.echo("  keyframes: " + " ".join(f"{k:.3f}" for k in info.keyframes))


@app.command()
def models(
    verify: Annotated[bool, typer.Option(help="Assemble packaged models and check sha256.")] = True,
    as_json: JsonOpt = False,
) -> None:
    """List the Whisper models that can be used and check packaged ones."""
    from reelscribe.asr.catalog import HUB_MODELS, PACKAGED_MODELS, assemble

    settings = get_settings()
    rows: list[dict[str, Any]] = []
    for name, packaged in PACKAGED_MODELS.items():
        row: dict[str, Any] = {
            "name": name,
            "source": "packaged",
            "installed": packaged.installed(),
            "sha256": packaged.sha256,
        }
        if packaged.installed() and verify:
            try:
                row["path"] = str(assemble(packaged, settings.models_dir))
                row["verified"] = True
            except ReelscribeError as exc:
                row["verified"] = False
                row["error"] = str(exc)
        elif not packaged.installed():
            row["hint"] = "pip install 'reelscribe[offline-models]'"
        rows.append(row)
    hub_dir = settings.models_dir / "hub"
    for name in HUB_MODELS:
        cached = any(hub_dir.glob(f"models--*faster-whisper-{name}")) if hub_dir.is_dir() else False
        rows.append(
            {
                "name": name,
                "source": "hub",
                "cached": cached,
                "hint": None if cached else "downloads from the Hugging Face hub on first use",
            }
        )
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    for row in rows:
        if row["source"] == "packaged":
            state = (
                "verified"
                if row.get("verified")
                else ("FAILED: " + row["error"])
                if "error" in row
                else "installed"
                if row["installed"]
                else "not installed: " + row["hint"]
            )
            typer.echo(f"{row['name']:<18} packaged  {state}")
        else:
            typer.echo(f"{row['name']:<18} hub       {'cached' if row['cached'] else 'download'}")
    if any(r.get("verified") is False for r in rows):
        raise typer.Exit(1)


@app.command()
def demo(
    out: OutOpt = None,
    speech: Annotated[
        Path | None,
        typer.Option(
            help="A recording to use as the sample's sound (default: ../shared/media/jfk.flac "
            "when present, else espeak-ng, else a tone)."
        ),
    ] = None,
    quiet: QuietOpt = False,
) -> None:
    """Generate a short sample video, then transcribe it and cut a subtitled clip."""
    from reelscribe.demo import find_speech, make_sample

    settings = get_settings()
    out_dir = out or settings.output_dir / "demo"
    source = find_speech(speech)
    # Said before the run, not after: without speech the empty transcript is expected.
    prefix = "reelscribe: warning: " if source.kind == "tone" else ""
    typer.echo(f"{prefix}{source.note}", err=True)
    sample = make_sample(out_dir / "sample.mp4", source)
    typer.echo(f"sample\t{sample}", err=True)
    plan = _plan(str(sample), JobOptions(clip_mode="exact"), settings,
                 outputs=["srt", "vtt", "txt", "json", "md", "clip", "burned_clip"],
                 start="1", end=None)  # fmt: skip
    result = _execute(plan, out_dir, settings, as_json=False, quiet=quiet)
    if result.transcript is not None and not result.transcript.text:
        hint = "" if source.kind == "tone" else " (is there speech in it?)"
        typer.echo(f"reelscribe: warning: the transcript is empty{hint}", err=True)


HostOpt = Annotated[str | None, typer.Option(help="Bind address (REELSCRIBE_HOST).")]
PortOpt = Annotated[int | None, typer.Option(help="Port (REELSCRIBE_PORT).")]


def _service_settings(**overrides: Any) -> Settings:
    values = {k: v for k, v in overrides.items() if v is not None}
    return get_settings().model_copy(update=values)


def _access_line(settings: Settings) -> str:
    """How callers get in, said at start-up: a new user's first question."""
    if settings.allow_anonymous:
        return ("access: keyless (loopback only; every local caller is admin). To require "
                "API keys: --no-anonymous or REELSCRIBE_ALLOW_ANONYMOUS=false")  # fmt: skip
    if settings.admin_api_key is not None:
        return ("access: API keys required (Authorization: Bearer <key>); the admin key is "
                "REELSCRIBE_ADMIN_API_KEY; create more with POST /api/keys")  # fmt: skip
    return ("access: API keys required (Authorization: Bearer <key>). To get one, start with "
            "REELSCRIBE_ADMIN_API_KEY=<a secret> (an admin key; POST /api/keys makes more), "
            "or on loopback use keyless access (--anonymous)")  # fmt: skip


def _run_service(
    settings: Settings, *, role: str, api: bool, workers: int, burst: bool = False
) -> None:
    import asyncio

    from reelscribe.logs import configure
    from reelscribe.service.processes import run_service

    configure()

    def ready(url: str) -> None:
        if api:
            typer.echo(f"reelscribe {role} on {url}  (web UI: {url}/, API docs: {url}/docs)")
            typer.echo(_access_line(settings))
        else:
            typer.echo(
                f"reelscribe worker started ({workers} x {settings.worker_concurrency} slots)"
            )

    try:
        import uvloop  # a faster event loop (uvicorn[standard]); asyncio's own otherwise
    except ImportError:
        run = asyncio.run
    else:
        run = uvloop.run
    run(run_service(settings, role=role, api=api, workers=workers, burst=burst,
                    on_ready=ready))  # fmt: skip


@app.command()
def serve(
    host: HostOpt = None,
    port: PortOpt = None,
    workers: Annotated[
        int | None, typer.Option(help="Embedded workers (REELSCRIBE_EMBEDDED_WORKERS).")
    ] = None,
    anonymous: Annotated[
        bool | None,
        typer.Option(
            "--anonymous/--no-anonymous",
            help="Allow requests without an API key (loopback only). Default: on when "
            "bound to loopback, unless REELSCRIBE_ALLOW_ANONYMOUS says otherwise.",
        ),
    ] = None,
) -> None:
    """Run the API, the web UI and embedded workers in one process (one machine)."""
    from reelscribe.service.runtime import is_loopback

    settings = _service_settings(host=host, port=port, embedded_workers=workers,
                                 allow_anonymous=anonymous)  # fmt: skip
    if anonymous is None and "allow_anonymous" not in settings.model_fields_set:
        # One machine, one user: the README's quick start works with no key to make.
        # Only where nobody else can connect; elsewhere keys stay required.
        settings = settings.model_copy(update={"allow_anonymous": is_loopback(settings.host)})
    _run_service(settings, role="serve", api=True, workers=settings.embedded_workers)


@app.command()
def api(host: HostOpt = None, port: PortOpt = None) -> None:
    """Run only the HTTP API (scale-out: workers run elsewhere)."""
    settings = _service_settings(host=host, port=port)
    _run_service(settings, role="api", api=True, workers=0)


@app.command()
def worker(
    concurrency: Annotated[
        int | None, typer.Option(help="Jobs at once (REELSCRIBE_WORKER_CONCURRENCY).")
    ] = None,
    burst: Annotated[bool, typer.Option(help="Drain the queue, then exit.")] = False,
    remote: Annotated[
        str | None,
        typer.Option(
            help="Work for the API at this URL over HTTP only (REELSCRIBE_REMOTE_URL), with "
            "a 'worker' key in REELSCRIBE_REMOTE_TOKEN; no database, queue or storage "
            "settings needed."
        ),
    ] = None,
) -> None:
    """Run a worker: claim jobs from the queue and process them."""
    settings = _service_settings(worker_concurrency=concurrency, remote_url=remote)
    if settings.remote_url:
        _run_remote_worker(settings, burst=burst)
        return
    _run_service(settings, role="worker", api=False, workers=1, burst=burst)


def _run_remote_worker(settings: Settings, *, burst: bool) -> None:
    import asyncio

    from reelscribe.logs import configure
    from reelscribe.service.processes import run_remote_worker

    configure()

    def ready(url: str) -> None:
        typer.echo(f"reelscribe worker for {url} started "
                   f"({settings.worker_concurrency} slots, HTTP only)")  # fmt: skip

    asyncio.run(run_remote_worker(settings, burst=burst, on_ready=ready))


def _metadata(pairs: list[str]) -> dict[str, str]:
    """``["ticket=42", "team=news"]`` -> ``{"ticket": "42", "team": "news"}``."""
    found: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise InvalidInputError(f"invalid metadata {pair!r}: use KEY=VALUE")
        found[key.strip()] = value.strip()
    return found


@app.command()
def submit(
    source: Annotated[str, typer.Argument(help="A local file (uploaded) or an http(s) URL.")],
    start: StartOpt = None,
    end: EndOpt = None,
    outputs: Annotated[
        str,
        typer.Option(
            help="Comma-separated: srt,vtt,txt,json,md,ass,rttm,clip,burned_clip,chapters,"
            "moderation."
        ),
    ] = "srt,json",
    wait: Annotated[bool, typer.Option(help="Wait for the job and download its results.")] = False,
    out: OutOpt = None,
    server: Annotated[
        str | None, typer.Option(envvar="REELSCRIBE_SERVER", help="API base URL.")
    ] = None,
    api_key: Annotated[
        str | None, typer.Option(envvar="REELSCRIBE_API_KEY", help="API key.")
    ] = None,
    priority: Annotated[str, typer.Option(help="fast, normal or bulk.")] = "normal",
    webhook_url: Annotated[
        str | None, typer.Option(help="POSTed job.completed/failed/cancelled (signed).")
    ] = None,
    metadata: Annotated[
        list[str] | None, typer.Option(help="KEY=VALUE kept with the job (repeatable).")
    ] = None,
    clip_mode: ModeOpt = ClipMode.FAST,
    model: Annotated[str | None, typer.Option(help="Model name.")] = None,
    language: Annotated[str | None, typer.Option(help="Force a language.")] = None,
    task: TaskOpt = Task.TRANSCRIBE,
    initial_prompt: PromptOpt = None,
    hotwords: HotwordsOpt = None,
    temperature: TemperatureOpt = 0.0,
    words_in_md: WordsOpt = False,
    speakers: SpeakersOpt = False,
    num_speakers: NumSpeakersOpt = None,
    min_speakers: MinSpeakersOpt = None,
    max_speakers: MaxSpeakersOpt = None,
    channels: ChannelsOpt = Channels.MIX,
    speaker_names: SpeakerNamesOpt = None,
    speaker_label: SpeakerLabelOpt = None,
    summary: SummaryOpt = False,
    summary_sentences: SummarySentencesOpt = None,
    summary_ratio: SummaryRatioOpt = None,
    keywords: KeywordsOpt = False,
    chapters: ChaptersOpt = False,
    llm: LlmOpt = False,
    action_items: ActionItemsOpt = False,
    questions: QuestionsOpt = False,
    moderate: ModerateOpt = None,
    # Unset style and cue flags are left out of the job: the server's defaults apply.
    max_line_chars: Annotated[int | None, typer.Option(help="Subtitle chars per line.")] = None,
    max_lines: Annotated[int | None, typer.Option(help="Subtitle lines per cue.")] = None,
    max_cps: Annotated[float | None, typer.Option(help="Subtitle reading speed.")] = None,
    font_size: Annotated[float | None, typer.Option(help="Burned-in font size.")] = None,
    position: Annotated[str | None, typer.Option(help="bottom, top or middle.")] = None,
    primary_colour: Annotated[str | None, typer.Option(help="Burned-in text colour.")] = None,
    outline_colour: Annotated[str | None, typer.Option(help="Burned-in outline colour.")] = None,
    outline: Annotated[float | None, typer.Option(help="Burned-in outline width.")] = None,
    as_json: JsonOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Submit a job to a running reelscribe service (and optionally wait for it)."""
    from reelscribe.client import Client

    settings = get_settings()
    base = server or settings.public_base_url or f"http://127.0.0.1:{settings.port}"
    style = {"font_size": font_size, "position": position, "primary_colour": primary_colour,
             "outline_colour": outline_colour, "outline": outline}  # fmt: skip
    cue = {"max_chars_per_line": max_line_chars, "max_lines": max_lines, "max_cps": max_cps}
    options = _options(
        clip_mode=clip_mode, model=model, language=language, task=task,
        initial_prompt=initial_prompt, hotwords=hotwords, temperature=temperature,
        words_in_markdown=words_in_md, speakers=speakers, num_speakers=num_speakers,
        min_speakers=min_speakers, max_speakers=max_speakers, channels=channels,
        speaker_names=speaker_names, speaker_label=speaker_label,
        style={k: v for k, v in style.items() if v is not None},
        cue={k: v for k, v in cue.items() if v is not None},
        summary=summary, summary_sentences=summary_sentences, summary_ratio=summary_ratio,
        keywords=keywords, action_items=action_items, questions=questions,
        chapters=chapters, llm=llm, moderate=moderate,
    )  # fmt: skip
    spec: dict[str, Any] = {
        "outputs": [o.strip() for o in outputs.split(",") if o.strip()],
        "priority": priority,
        "options": options.model_dump(mode="json", exclude_defaults=True),
        "metadata": _metadata(metadata or []),
    }
    if start is not None:
        spec["start"] = start
    if end is not None:
        spec["end"] = end
    if webhook_url is not None:
        spec["webhook_url"] = webhook_url
    with Client(base, api_key) as client:
        path = Path(source)
        if path.is_file():
            spec["source"] = {"upload_id": client.upload(path)["id"]}
        elif source.startswith(("http://", "https://")):
            spec["source"] = {"url": source}
        else:
            raise InvalidInputError(f"{source} is neither an existing file nor an http(s) URL")
        job = client.submit(spec)
        if not wait:
            typer.echo(json.dumps(job, indent=2) if as_json else f"job\t{job['id']}")
            return
        with ProgressDisplay(enabled=not quiet) as display:
            job = client.wait(job["id"], on_update=lambda j: display(
                Progress(j.get("stage") or j["status"], j["progress"] / 100, j.get("message") or "")
            ))  # fmt: skip
        if job["status"] != "done":  # failed, cancelled, or blocked by moderation
            error = job.get("error") or {}
            raise ReelscribeError(
                f"job {job['id']} {job['status']}: "
                f"{error.get('message', 'no details')} ({error.get('code')})"
            )
        result = client.result(job["id"])
        out_dir = out or settings.output_dir
        saved = {o["name"]: str(client.download(o["url"], out_dir / Path(o["filename"]).name))
                 for o in result["outputs"]}  # fmt: skip
    if as_json:
        typer.echo(json.dumps({"job": job["id"], "outputs": saved}, indent=2))
    else:
        for name, saved_path in saved.items():
            typer.echo(f"{name}\t{saved_path}")


def _version(value: bool) -> None:
    if value:
        typer.echo(f"reelscribe {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_version, is_eager=True, help="Show the version and exit."
        ),
    ] = False,
) -> None:
    pass


def main(argv: list[str] | None = None) -> int:
    """Entry point: runs the app and turns every failure into one line on stderr."""
    command = typer.main.get_command(app)
    try:
        result = command.main(args=argv, prog_name="reelscribe", standalone_mode=False)
    except ReelscribeError as exc:
        print(f"reelscribe: error: {exc}", file=sys.stderr)
        return 2 if exc.user_fault else 1
    except typer.Exit as exc:
        return int(exc.exit_code)
    except typer.Abort:
        print("reelscribe: aborted", file=sys.stderr)
        return 130
    except typer.exceptions.TyperException as exc:  # usage errors: bad or missing options
        message = exc.format_message() if hasattr(exc, "format_message") else str(exc)
        print(f"reelscribe: error: {message}", file=sys.stderr)
        return int(getattr(exc, "exit_code", 2))
    except KeyboardInterrupt:
        print("reelscribe: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:
        if os.environ.get("REELSCRIBE_DEBUG"):
            raise
        print(
            f"reelscribe: internal error: {type(exc).__name__}: {exc} "
            "(set REELSCRIBE_DEBUG=1 for a traceback)",
            file=sys.stderr,
        )
        return 1
    return int(result) if isinstance(result, int) else 0


if __name__ == "__main__":
    sys.exit(main())
