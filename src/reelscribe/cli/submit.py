"""``submit``: a job sent to a running service over HTTP (:mod:`reelscribe.client`),
optionally waited for and its results downloaded."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from reelscribe.cli.app import app
from reelscribe.cli.options import (
    ActionItemsOpt,
    Channels,
    ChannelsOpt,
    ChaptersOpt,
    EndOpt,
    EngineOpt,
    HotwordsOpt,
    JsonOpt,
    KeywordsOpt,
    LlmOpt,
    MaxSpeakersOpt,
    MinSpeakersOpt,
    ModeOpt,
    ModerateOpt,
    NumSpeakersOpt,
    OutOpt,
    PromptOpt,
    QuestionsOpt,
    QuietOpt,
    SeparateOpt,
    SpeakerLabelOpt,
    SpeakerNamesOpt,
    SpeakersOpt,
    StartOpt,
    SummaryOpt,
    SummaryRatioOpt,
    SummarySentencesOpt,
    Task,
    TaskOpt,
    TemperatureOpt,
    WordsOpt,
    flag_options,
)
from reelscribe.config import get_settings
from reelscribe.console import ProgressDisplay
from reelscribe.errors import InvalidInputError, ReelscribeError
from reelscribe.models import ClipMode
from reelscribe.progress import Progress
from reelscribe.sources import LocalFileSource, UrlSource, parse_source


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
            "moderation,vocals."
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
    engine: EngineOpt = None,
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
    separate: SeparateOpt = False,
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
    options = flag_options(locals())
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
        typed = parse_source(source)
        if isinstance(typed, LocalFileSource) and typed.path.is_file():
            spec["source"] = {"upload_id": client.upload(typed.path)["id"]}
        elif isinstance(typed, UrlSource) and typed.url.startswith(("http://", "https://")):
            spec["source"] = {"url": typed.url}
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
