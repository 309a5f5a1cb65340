"""Commands that run the pipeline in this process: transcribe, clip, render, analyze,
probe, models and demo (no service needed)."""

from __future__ import annotations

import json
import tempfile
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from reelscribe.cli.app import app
from reelscribe.cli.options import (
    ActionItemsOpt,
    Channels,
    ChannelsOpt,
    ChaptersOpt,
    CookiesOpt,
    EndOpt,
    EngineOpt,
    FontSizeOpt,
    HotwordsOpt,
    JsonOpt,
    KeywordsOpt,
    LanguageOpt,
    LlmKeyOpt,
    LlmModelOpt,
    LlmOpt,
    LlmUrlOpt,
    MaxCharsOpt,
    MaxCpsOpt,
    MaxLinesOpt,
    MaxSpeakersOpt,
    MinSpeakersOpt,
    ModelOpt,
    ModeOpt,
    ModerateOpt,
    NumSpeakersOpt,
    OutlineColourOpt,
    OutlineOpt,
    OutOpt,
    PositionOpt,
    PrimaryOpt,
    PromptOpt,
    QuestionsOpt,
    QuietOpt,
    SeparateOpt,
    SourceArg,
    SpeakerLabelOpt,
    SpeakerNamesOpt,
    SpeakersOpt,
    StartOpt,
    Subtitles,
    SummaryOpt,
    SummaryRatioOpt,
    SummarySentencesOpt,
    Task,
    TaskOpt,
    TemperatureOpt,
    WordsOpt,
    flag_options,
    job_options,
)
from reelscribe.config import Settings, get_settings
from reelscribe.console import ProgressDisplay
from reelscribe.errors import InvalidInputError, ReelscribeError
from reelscribe.formats import parse_formats
from reelscribe.models import ClipMode, TimeRange
from reelscribe.options import JobOptions, parse_speaker_names
from reelscribe.sources import parse_source

if TYPE_CHECKING:  # the pipeline (yt-dlp, PyAV, NumPy) is imported by the commands using it
    from reelscribe.pipeline.fetch import FetchOptions
    from reelscribe.pipeline.plan import JobPlan
    from reelscribe.pipeline.runner import PipelineResult


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

    # The one place the CLI's argument is read as a path or a URL.
    return build_plan(parse_source(source), options, settings, outputs=outputs,
                      time_range=TimeRange.parse(start, end),
                      fetch=_fetch(settings, cookies))  # fmt: skip


def _execute(
    plan: JobPlan, out: Path | None, settings: Settings, *, as_json: bool, quiet: bool
) -> PipelineResult:
    from reelscribe.asr.routing import Engines
    from reelscribe.pipeline.runner import run

    out_dir = out or settings.output_dir
    engines = Engines.from_settings(settings)  # once per run, like a worker's
    with (
        tempfile.TemporaryDirectory(prefix="reelscribe-") as work,
        ProgressDisplay(enabled=not quiet) as display,
    ):
        try:
            result = run(plan.request, out_dir, Path(work), display, engines=engines)
        finally:
            engines.close()
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
            help="Comma-separated: srt,vtt,txt,json,md,ass,rttm, and chapters, moderation, vocals.",
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
    engine: EngineOpt = None,
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
    separate: SeparateOpt = False,
    llm_url: LlmUrlOpt = None,
    llm_model: LlmModelOpt = None,
    llm_key: LlmKeyOpt = None,
    cookies: CookiesOpt = None,
    as_json: JsonOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Transcribe a file or URL (optionally a range) into subtitles and transcripts."""
    plan, settings = transcribe_plan(dict(locals()))
    _execute(plan, out, settings, as_json=as_json, quiet=quiet)


def transcribe_plan(flags: dict[str, Any]) -> tuple[JobPlan, Settings]:
    """The plan and settings ``transcribe``'s flags ask for (``estimate`` takes the same)."""
    settings = _with_llm(get_settings(), flags["llm_url"], flags["llm_model"], flags["llm_key"])
    options = flag_options(flags)
    outputs = [*_outputs(flags["format"]), *(["clip"] if flags["clip_out"] else []),
               *(["burned_clip"] if flags["burn_in"] else [])]  # fmt: skip
    plan = _plan(flags["source"], options, settings, outputs=outputs, start=flags["start"],
                 end=flags["end"], cookies=flags["cookies"])  # fmt: skip
    return plan, settings


def _outputs(value: str) -> list[str]:
    """``--format``: text formats, plus the analysis outputs ``chapters``/``moderation``."""
    from reelscribe.outputs import ANALYSIS_OUTPUTS

    names = [p.strip().lower() for p in value.split(",") if p.strip()]
    extra = [n for n in names if n in ANALYSIS_OUTPUTS or n == "vocals"]
    formats = ",".join(n for n in names if n not in extra)
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
    separate: SeparateOpt = False,
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
    options = flag_options(locals(), clip_mode=mode)
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
    options = job_options(summary=summary, summary_sentences=summary_sentences,
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
