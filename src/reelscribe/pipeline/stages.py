"""The stage registry: every stage a run can have, in processing order.

A stage is its own module (``fetch``, ``probe``, ``clip``, ...) with plain inputs and
outputs; here each is registered once: its name (as progress, events and ``/steps``
show it), its rough share of a run's time, when a request needs it, and a small step
that takes its inputs from the :class:`~.context.RunContext` and puts its outputs back.

Adding a stage: write its module, add its options to
:class:`reelscribe.options.JobOptions` and its field to
:class:`~reelscribe.pipeline.plan.PipelineRequest` (filled in ``build_plan``), and add
one :class:`Stage` to :data:`STAGES` below. docs/architecture.md walks through it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from reelscribe.analysis.results import Analysis
from reelscribe.errors import ContentBlockedError, InvalidInputError, SourceTooLargeError
from reelscribe.formats import FORMATS, RenderOptions, render
from reelscribe.models import ClipMode, MediaInfo, TimeRange
from reelscribe.pipeline.audio import load_audio
from reelscribe.pipeline.channels import MAX_CHANNELS, transcribe_channels
from reelscribe.pipeline.clip import ClipOptions, clip
from reelscribe.pipeline.context import RunContext
from reelscribe.pipeline.fetch import fetch
from reelscribe.pipeline.plan import PipelineRequest
from reelscribe.pipeline.probe import probe
from reelscribe.pipeline.transcribe import transcribe
from reelscribe.progress import ProgressCallback


@dataclass(frozen=True, slots=True)
class Stage:
    name: str
    #: Rough share of a run's time (transcription is the unit of work, 5).
    weight: float
    wanted: Callable[[PipelineRequest], bool]
    run: Callable[[RunContext], None]


def _always(_request: PipelineRequest) -> bool:
    return True


def _needs_transcript(request: PipelineRequest) -> bool:
    return request.needs_transcript


# --- the steps ------------------------------------------------------------------------


def _fetch(ctx: RunContext) -> None:
    request = ctx.request
    wants_video = request.clip_output or request.burn_output or request.moderate is not None
    options = replace(
        request.fetch,
        audio_only=not wants_video,
        section=request.time_range,
        exact_section=request.clip_mode is ClipMode.EXACT,
    )
    ctx.fetched = fetch(request.source, ctx.work_dir, options, ctx.progress)


def _probe(ctx: RunContext) -> None:
    assert ctx.fetched is not None
    request = ctx.request
    media = ctx.media = probe(
        ctx.fetched.path, keyframes=request.clip_output or request.burn_output
    )
    ctx.local = local_range(request.time_range, ctx.fetched.section_start,
                            ctx.fetched.section_applied, media)  # fmt: skip
    length = (ctx.local.end if ctx.local.end is not None else media.duration) - ctx.local.start
    if length > request.max_duration:
        raise SourceTooLargeError(
            f"{length:.0f} s of media is over the limit of {request.max_duration:.0f} s; "
            "pick a shorter range with --start/--end"
        )
    ctx.stem = output_stem(ctx.fetched.title, ctx.fetched.path, request.time_range)
    _set_span(ctx)


def _set_span(ctx: RunContext) -> None:
    assert ctx.fetched is not None
    offset = ctx.fetched.section_start
    ctx.start = offset + ctx.local.start
    ctx.end = None if ctx.local.end is None else offset + ctx.local.end


def _clip(ctx: RunContext) -> None:
    fetched, media = ctx.need_media()
    # Cut first: a fast cut starts at a keyframe, and the transcript must follow the
    # clip's real start, not the requested one.
    with ctx.limits.encode:
        ctx.clip = clip(fetched.path, ctx.out_dir / f"{ctx.stem}{_clip_ext(media)}", ctx.local,
                        _clip_options(ctx.request), ctx.progress, info=media)  # fmt: skip
    ctx.local = TimeRange(ctx.clip.start, ctx.clip.end)
    ctx.outputs["clip"] = ctx.clip.path
    _set_span(ctx)


def _audio(ctx: RunContext) -> None:
    fetched, media = ctx.need_media()
    if media.audio is None:
        raise InvalidInputError("the source has no audio stream to transcribe")
    wanted = None if ctx.local.is_whole else ctx.local
    if ctx.request.channels == "mix":
        ctx.audio = [load_audio(fetched.path, wanted)]
        return
    count = media.audio.channels or 1
    if count < 2:
        raise InvalidInputError(
            "channels 'split' needs audio with a speaker per channel; this source is mono"
        )
    if count > MAX_CHANNELS:
        raise InvalidInputError(f"channels 'split' takes at most {MAX_CHANNELS} channels")
    ctx.audio = [load_audio(fetched.path, wanted, channel=i) for i in range(count)]


def _separate(ctx: RunContext) -> None:
    # Imported here: only jobs that separate need the backends.
    from reelscribe.pipeline.separate import STEM_EXTENSION, fit_length, separate

    fetched, media = ctx.need_media()
    options = ctx.request.separate
    assert options is not None
    if media.audio is None:
        raise InvalidInputError("the source has no audio stream to separate")
    stem_path = ctx.out_dir / f"{ctx.stem}{STEM_EXTENSION}" if options.write_stem else None
    with ctx.limits.asr:  # as heavy as ASR on the CPU: share its cap
        result = separate(fetched.path, ctx.local, ctx.work_dir, options, ctx.progress,
                          info=media, stem_path=stem_path)  # fmt: skip
    if result.stem is not None:
        ctx.outputs["vocals"] = result.stem
    if ctx.audio:  # ASR (and diarization) hear the voice, on the mix's timeline
        ctx.audio = [fit_length(result.samples, len(ctx.audio[0]))]


def _transcribe(ctx: RunContext) -> None:
    request = ctx.request
    with ctx.limits.asr:
        if request.channels == "split":
            transcript = transcribe_channels(ctx.audio, request.transcribe, ctx.progress,
                                             source_offset=ctx.start,
                                             engines=ctx.engines)  # fmt: skip
        else:
            transcript = transcribe(ctx.audio[0], request.transcribe, ctx.progress,
                                    source_offset=ctx.start, engines=ctx.engines)  # fmt: skip
    names = transcript.speaker_names | request.speaker_names
    ctx.transcript = replace(transcript, speaker_names=names)
    if ctx.moderation is not None:  # moderated before transcribing: the report goes along
        ctx.transcript = replace(ctx.transcript, analysis=Analysis(moderation=ctx.moderation))
    if request.diarize is None:
        ctx.audio = []


def _diarize(ctx: RunContext) -> None:
    # Imported here: torch and the speaker models load only for jobs that diarize.
    from reelscribe.pipeline.diarize import diarize
    from reelscribe.speakers.assign import assign_speakers

    assert ctx.transcript is not None
    assert ctx.request.diarize is not None
    diarization = diarize(ctx.audio[0], ctx.request.diarize, ctx.progress)
    ctx.audio = []
    labelled = assign_speakers(ctx.transcript, diarization)
    ctx.transcript = replace(labelled, turns=diarization.turns)


def _moderate(ctx: RunContext) -> None:
    # Imported here: onnxruntime and the detector load only for jobs that moderate.
    from reelscribe.pipeline.moderate import moderate

    fetched, media = ctx.need_media()
    assert ctx.request.moderate is not None
    # The clip, when one was cut, is what would be published; else the source's range.
    path = ctx.clip.path if ctx.clip is not None else fetched.path
    span = TimeRange() if ctx.clip is not None else ctx.local
    report = moderate(path, media if ctx.clip is None else None, span,
                      ctx.request.moderate, ctx.progress, offset=ctx.start)  # fmt: skip
    ctx.moderation = report
    if report.blocked:
        # Stop here: nothing unsafe is transcribed, rendered or published. The report is
        # written so the edge can hand it out; the clip is removed.
        path = _write_moderation(ctx)
        if ctx.clip is not None:
            ctx.clip.path.unlink(missing_ok=True)
            ctx.outputs.pop("clip", None)
        raise ContentBlockedError(report, path)


def _write_moderation(ctx: RunContext) -> Path:
    from reelscribe.formats.analysis import moderation_json

    assert ctx.moderation is not None
    path = ctx.out_dir / f"{ctx.stem}.moderation.json"
    path.write_text(moderation_json(ctx.moderation), encoding="utf-8")
    ctx.outputs["moderation"] = path
    return path


def _summarize(ctx: RunContext) -> None:
    from reelscribe.pipeline.analyze import summarize

    assert ctx.transcript is not None
    assert ctx.request.summary is not None
    ctx.transcript = summarize(ctx.transcript, ctx.request.summary, ctx.progress, ctx.scratch)


def _chapters(ctx: RunContext) -> None:
    from reelscribe.pipeline.analyze import chapters

    assert ctx.transcript is not None
    assert ctx.request.chapters is not None
    ctx.transcript = chapters(ctx.transcript, ctx.request.chapters, ctx.progress, ctx.scratch)


def _llm(ctx: RunContext) -> None:
    from reelscribe.pipeline.analyze import llm_notes

    assert ctx.transcript is not None
    assert ctx.request.llm is not None
    ctx.transcript = llm_notes(ctx.transcript, ctx.request.llm, ctx.progress)


def _render(ctx: RunContext) -> None:
    _, media = ctx.need_media()
    request = ctx.request
    if request.formats or "chapters" in request.analysis_outputs:
        transcript = ctx.transcript
        assert transcript is not None, "transcribe runs first"
        options = render_options(request, media)
        for fmt in request.formats:
            path = ctx.out_dir / f"{ctx.stem}{FORMATS[fmt].extension}"
            path.write_text(render(transcript, fmt, options), encoding="utf-8")
            ctx.outputs[fmt] = path
        if "chapters" in request.analysis_outputs:
            from reelscribe.formats.analysis import chapter_lines

            path = ctx.out_dir / f"{ctx.stem}.chapters.txt"
            path.write_text(chapter_lines(transcript), encoding="utf-8")
            ctx.outputs["chapters"] = path
    if "moderation" in request.analysis_outputs and ctx.moderation is not None:
        _write_moderation(ctx)


def _mark_chapters(ctx: RunContext) -> None:
    """Writes the chapters into the MP4 clip (ffmpeg metadata, no re-encode)."""
    from reelscribe.media.chapters import add_chapters

    assert ctx.transcript is not None
    assert ctx.transcript.analysis is not None
    for name in ("clip", "burned_clip"):
        path = ctx.outputs.get(name)
        if path is not None and path.suffix == ".mp4":
            add_chapters(path, ctx.transcript.analysis.chapters)


def _has_chapter_clip(request: PipelineRequest) -> bool:
    return request.chapters is not None and (request.clip_output or request.burn_output)


def _burn(ctx: RunContext) -> None:
    assert ctx.transcript is not None
    fetched, media = ctx.need_media()
    ass_path = ctx.work_dir / f"{ctx.stem}.burn.ass"
    ass_path.write_text(render(ctx.transcript, "ass", render_options(ctx.request, media)),
                        encoding="utf-8")  # fmt: skip
    # One ffmpeg pass cuts and burns; the ASS times are clip-relative, which is what a
    # cut with -ss before -i produces.
    options = replace(_clip_options(ctx.request), mode=ClipMode.EXACT, burn_subtitles=ass_path)
    progress = None if ctx.progress is None else _as_stage(ctx.progress, "burn")
    with ctx.limits.encode:
        ctx.burned = clip(fetched.path, ctx.out_dir / f"{ctx.stem}.subtitled.mp4", ctx.local,
                          options, progress, info=media)  # fmt: skip
    ctx.outputs["burned_clip"] = ctx.burned.path


#: Every stage, in the order they run.
STAGES: tuple[Stage, ...] = (
    Stage("fetch", 1.0, _always, _fetch),
    Stage("probe", 0.1, _always, _probe),
    Stage("clip", 1.0, lambda r: r.clip_output, _clip),
    Stage(
        "moderate", 1.0, lambda r: r.moderate is not None and r.moderate.policy != "off", _moderate
    ),
    Stage("audio", 0.3, _needs_transcript, _audio),
    Stage("separate", 2.0, lambda r: r.separate is not None, _separate),
    Stage("transcribe", 5.0, _needs_transcript, _transcribe),
    Stage("diarize", 2.0, lambda r: r.needs_transcript and r.diarize is not None, _diarize),
    Stage("summarize", 0.5, lambda r: r.summary is not None, _summarize),
    Stage("chapters", 0.3, lambda r: r.chapters is not None, _chapters),
    Stage("llm", 2.0, lambda r: r.llm is not None, _llm),
    Stage("render", 0.1, lambda r: bool(r.formats or r.analysis_outputs), _render),
    Stage("burn", 2.0, lambda r: r.burn_output, _burn),
    Stage("mark_chapters", 0.1, _has_chapter_clip, _mark_chapters),
)


# --- helpers the steps share ------------------------------------------------------------


def _as_stage(progress: ProgressCallback, stage: str) -> ProgressCallback:
    """Reports a stage's events under another name (the burn pass runs the clip stage)."""
    return lambda event: progress(replace(event, stage=stage))


def local_range(
    wanted: TimeRange | None, section_start: float, section_applied: bool, media: MediaInfo
) -> TimeRange:
    """The requested range on the fetched file's own timeline."""
    if wanted is None:
        return TimeRange(0.0, None)
    if section_applied:
        start = max(0.0, wanted.start - section_start)
        end = None if wanted.end is None else wanted.end - section_start
    else:
        start, end = wanted.start, wanted.end
    if start >= media.duration:
        raise InvalidInputError(
            f"start {wanted.start:g}s is beyond the end of the media ({media.duration:.1f}s)"
        )
    if end is not None and end > media.duration:
        end = media.duration
    return TimeRange(start, end)


def _clip_options(request: PipelineRequest) -> ClipOptions:
    return replace(request.clip or ClipOptions(), mode=request.clip_mode)


def render_options(request: PipelineRequest, media: MediaInfo) -> RenderOptions:
    video = media.video
    if request.render.video_size is None and video is not None and video.width and video.height:
        return replace(request.render, video_size=(video.width, video.height))
    return request.render


def _clip_ext(media: MediaInfo) -> str:
    return ".mp4" if media.has_video else ".m4a"


def output_stem(title: str | None, path: Path | str, wanted: TimeRange | None) -> str:
    """A safe file name stem: no separators, no leading dots, bounded length."""
    import re

    base = title or Path(path).stem or "media"
    stem = re.sub(r"[^\w.-]+", "_", base).strip("._")[:80] or "media"
    if wanted is not None and not wanted.is_whole:
        end = "end" if wanted.end is None else f"{wanted.end:g}"
        stem += f"_{wanted.start:g}-{end}"
    return stem
