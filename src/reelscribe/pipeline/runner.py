"""Runs the stages in order for one request: fetch → probe → clip → audio →
transcribe → render → burn.

This is the one place that knows how the stages fit together (which range to cut,
which offsets to carry, what to skip); the CLI calls it directly and the service's
workers will call it per job. It knows nothing about terminals, HTTP or queues.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from reelscribe.errors import InvalidInputError, SourceTooLargeError
from reelscribe.formats import FORMATS, RenderOptions, render
from reelscribe.models import ClipMode, MediaInfo, TimeRange, Transcript
from reelscribe.pipeline.audio import load_audio
from reelscribe.pipeline.clip import ClipOptions, ClipResult, clip
from reelscribe.pipeline.fetch import FetchOptions, FetchResult, fetch
from reelscribe.pipeline.probe import probe
from reelscribe.pipeline.transcribe import TranscribeOptions, transcribe
from reelscribe.progress import ProgressCallback, report


@dataclass(frozen=True, slots=True)
class PipelineRequest:
    source: str
    time_range: TimeRange | None = None
    formats: tuple[str, ...] = ("srt",)
    #: Also write the cut media (stream copy or smart cut, see ``clip_mode``).
    clip_output: bool = False
    #: Also write the cut media with the subtitles burned in (always re-encoded).
    burn_output: bool = False
    clip_mode: ClipMode = ClipMode.FAST
    fetch: FetchOptions = field(default_factory=FetchOptions)
    transcribe: TranscribeOptions = field(default_factory=TranscribeOptions)
    render: RenderOptions = field(default_factory=RenderOptions)
    clip: ClipOptions | None = None  # encoder settings; mode comes from clip_mode
    max_duration: float = 4 * 3600.0

    def __post_init__(self) -> None:
        unknown = [f for f in self.formats if f not in FORMATS]
        if unknown:
            raise InvalidInputError(
                f"unknown format {unknown[0]!r}; choose from {', '.join(FORMATS)}"
            )
        if not self.formats and not self.clip_output and not self.burn_output:
            raise InvalidInputError("nothing to do: ask for at least one format or a clip")

    @property
    def needs_transcript(self) -> bool:
        return bool(self.formats) or self.burn_output


@dataclass(slots=True)
class PipelineResult:
    outputs: dict[str, Path]
    fetched: FetchResult
    media: MediaInfo
    transcript: Transcript | None = None
    clip: ClipResult | None = None
    burned: ClipResult | None = None
    #: Where the outputs start on the source's timeline (the real start of a fast cut).
    start: float = 0.0
    end: float | None = None
    timings: dict[str, float] = field(default_factory=dict)

    def summary(self, *, with_text: bool = False) -> dict[str, Any]:
        """A JSON-ready account of the run (range, media, transcript stats, cut)."""
        return _summary(self, with_text)


@dataclass(frozen=True, slots=True)
class StageLimits:
    """Caps on how many transcriptions and re-encodes run at once in a process (a
    worker runs several jobs; ASR and x264 each want every core)."""

    asr: AbstractContextManager[Any] = field(default_factory=nullcontext)
    encode: AbstractContextManager[Any] = field(default_factory=nullcontext)

    @classmethod
    def of(cls, asr: int, encode: int) -> StageLimits:
        return cls(threading.Semaphore(asr), threading.Semaphore(encode))


def _summary(result: PipelineResult, with_text: bool) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "start": result.start,
        "end": result.end,
        "media": {
            "duration": result.media.duration,
            "format": result.media.format_name,
            "has_video": result.media.has_video,
            "has_audio": result.media.has_audio,
        },
        "timings": result.timings,
    }
    if result.transcript is not None:
        t = result.transcript
        payload["transcript"] = {
            "language": t.language,
            "duration": t.duration,
            "segments": len(t.segments),
            "dropped_segments": t.dropped_segments,
            "model": asdict(t.model),
        }
        if with_text:
            payload["transcript"]["text"] = t.text
    clipped = result.clip or result.burned
    if clipped is not None:
        payload["clip"] = {
            "start": clipped.start,
            "end": clipped.end,
            "duration": clipped.duration,
            "method": clipped.method,
            "encoder": clipped.encoder,
        }
    return payload


class _Timer:
    def __init__(self, timings: dict[str, float]) -> None:
        self._timings = timings

    def __call__(self, name: str) -> Callable[[], None]:
        started = time.perf_counter()

        def done() -> None:
            self._timings[name] = self._timings.get(name, 0.0) + time.perf_counter() - started

        return done


def run(
    request: PipelineRequest,
    out_dir: Path,
    work_dir: Path,
    progress: ProgressCallback | None = None,
    limits: StageLimits | None = None,
) -> PipelineResult:
    limits = limits or StageLimits()
    timings: dict[str, float] = {}
    timer = _Timer(timings)
    out_dir.mkdir(parents=True, exist_ok=True)
    work_dir.mkdir(parents=True, exist_ok=True)
    wants_video = request.clip_output or request.burn_output

    report(progress, "fetch", None)
    done = timer("fetch")
    fetched = fetch(request.source, work_dir, _fetch_options(request, wants_video), progress)
    done()

    report(progress, "probe", None)
    done = timer("probe")
    media = probe(fetched.path, keyframes=wants_video)
    done()

    local = _local_range(request.time_range, fetched, media)
    length = (local.end if local.end is not None else media.duration) - local.start
    if length > request.max_duration:
        raise SourceTooLargeError(
            f"{length:.0f} s of media is over the limit of {request.max_duration:.0f} s; "
            "pick a shorter range with --start/--end"
        )
    stem = output_stem(fetched, request.time_range)
    result = PipelineResult(outputs={}, fetched=fetched, media=media)

    clip_opts = _clip_options(request)
    if request.clip_output:
        # Cut first: a fast cut starts at a keyframe, and the transcript must follow
        # the clip's real start, not the requested one.
        done = timer("clip")
        with limits.encode:
            result.clip = clip(
                fetched.path,
                out_dir / f"{stem}{_clip_ext(media)}",
                local,
                clip_opts,
                progress,
                info=media,
            )
        done()
        local = TimeRange(result.clip.start, result.clip.end)
        result.outputs["clip"] = result.clip.path

    offset = fetched.section_start
    result.start, result.end = (
        offset + local.start,
        (None if local.end is None else offset + local.end),
    )

    if request.needs_transcript:
        if not media.has_audio:
            raise InvalidInputError("the source has no audio stream to transcribe")
        report(progress, "audio", None)
        done = timer("audio")
        samples = load_audio(fetched.path, None if local.is_whole else local)
        done()
        done = timer("transcribe")
        with limits.asr:
            result.transcript = transcribe(
                samples, request.transcribe, progress, source_offset=result.start
            )
        del samples  # up to ~115 MB for 30 minutes; not needed past this point
        done()
        report(progress, "render", None)
        done = timer("render")
        for fmt in request.formats:
            path = out_dir / f"{stem}{FORMATS[fmt].extension}"
            path.write_text(
                render(result.transcript, fmt, _render_options(request, media)), encoding="utf-8"
            )
            result.outputs[fmt] = path
        done()

    if request.burn_output:
        assert result.transcript is not None
        ass_path = work_dir / f"{stem}.burn.ass"
        ass_path.write_text(
            render(result.transcript, "ass", _render_options(request, media)), encoding="utf-8"
        )
        done = timer("burn")
        # One ffmpeg pass cuts and burns; the ASS times are clip-relative, which is
        # what a cut with -ss before -i produces.
        burn_opts = replace(clip_opts, mode=ClipMode.EXACT, burn_subtitles=ass_path)
        with limits.encode:
            result.burned = clip(
                fetched.path,
                out_dir / f"{stem}.subtitled.mp4",
                local,
                burn_opts,
                None if progress is None else _as_stage(progress, "burn"),
                info=media,
            )
        done()
        result.outputs["burned_clip"] = result.burned.path

    result.timings = timings
    return result


def _as_stage(progress: ProgressCallback, stage: str) -> ProgressCallback:
    """Reports a stage's events under another name (the burn pass runs the clip stage)."""
    return lambda event: progress(replace(event, stage=stage))


def _fetch_options(request: PipelineRequest, wants_video: bool) -> FetchOptions:
    return replace(
        request.fetch,
        audio_only=not wants_video,
        section=request.time_range,
        exact_section=request.clip_mode is ClipMode.EXACT,
    )


def _local_range(wanted: TimeRange | None, fetched: FetchResult, media: MediaInfo) -> TimeRange:
    """The requested range on the fetched file's own timeline."""
    if wanted is None:
        return TimeRange(0.0, None)
    if fetched.section_applied:
        start = max(0.0, wanted.start - fetched.section_start)
        end = None if wanted.end is None else wanted.end - fetched.section_start
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


def _render_options(request: PipelineRequest, media: MediaInfo) -> RenderOptions:
    video = media.video
    if request.render.video_size is None and video is not None and video.width and video.height:
        return replace(request.render, video_size=(video.width, video.height))
    return request.render


def _clip_ext(media: MediaInfo) -> str:
    return ".mp4" if media.has_video else ".m4a"


_UNSAFE = re.compile(r"[^\w.-]+")


def output_stem(fetched: FetchResult, wanted: TimeRange | None) -> str:
    """A safe file name stem: no separators, no leading dots, bounded length."""
    base = fetched.title or Path(fetched.path).stem or "media"
    stem = _UNSAFE.sub("_", base).strip("._")[:80] or "media"
    if wanted is not None and not wanted.is_whole:
        end = "end" if wanted.end is None else f"{wanted.end:g}"
        stem += f"_{wanted.start:g}-{end}"
    return stem
