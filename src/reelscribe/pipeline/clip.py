"""The clip stage: cut a time range out of a source, optionally burning in subtitles.

Three methods, chosen per request:

``copy``
    ``fast`` mode. Stream copy from the keyframe at or before the start: seconds for
    any length, but the clip begins up to one GOP early, so :attr:`ClipResult.start`
    reports where it really starts (transcript times are measured from there).
``smart``
    ``exact`` mode on H.264. Only the frames from the cut to the next keyframe (and
    from the last keyframe to the end cut) are re-encoded, with the source's profile,
    level and pixel format; the GOPs in between are copied. The parts are joined as
    MPEG-TS (Annex B carries each part's SPS/PPS in-band) and remuxed; the audio is
    re-encoded over the range so it is sample-accurate.
``reencode``
    Everything else: other codecs, rotated video, open GOPs, ranges shorter than a
    GOP, burned-in subtitles, or a smart cut that failed its check.

Times are seconds on the source timeline (see :mod:`reelscribe.pipeline.probe`).
An exact clip starts at the first frame at or after the requested start (ffmpeg's
own ``-ss`` rule) and holds every frame that starts before the requested end.
"""

from __future__ import annotations

import itertools
import logging
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import av

from reelscribe.errors import InvalidInputError, MediaError, ProcessingError
from reelscribe.media.encoders import HARDWARE, SOFTWARE, H264Encoder, select_h264_encoder
from reelscribe.media.ffmpeg import FractionCallback, filter_value, run_ffmpeg, seconds_arg
from reelscribe.models import ClipMode, MediaInfo, StreamInfo, TimeRange
from reelscribe.pipeline.probe import PacketTiming, VideoScan, can_seek, probe, scan_video
from reelscribe.progress import EtaTracker, ProgressCallback, report

log = logging.getLogger(__name__)

Method = Literal["copy", "smart", "reencode"]

#: Timestamps closer than this are the same instant (ffmpeg works in microseconds).
_EPS = 1e-6
#: How far before a keyframe to seek in containers whose seeks are imprecise (TS).
_SEEK_MARGIN = 2.0
#: Packets after a keyframe checked for leading pictures (an open GOP's B-frames).
_REORDER_WINDOW = 17
_PRESETS = ("ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow",
            "slower", "veryslow")  # fmt: skip
_MP4_LIKE = frozenset({".mp4", ".m4v", ".m4a", ".mov"})
_AUDIO_ONLY = frozenset({".m4a", ".aac", ".mp3", ".opus", ".ogg", ".oga", ".flac", ".wav"})
#: Codecs an MP4 can hold as they are; anything else is re-encoded.
_MP4_VIDEO = frozenset({"h264", "hevc", "av1", "vp9", "mpeg4"})
_MP4_AUDIO = frozenset({"aac", "mp3", "alac", "opus", "flac", "ac3", "eac3"})
# ffmpeg writes .m4a with its "ipod" muxer, which refuses FLAC, Opus and the rest.
_M4A_AUDIO = frozenset({"aac", "alac"})
_X264_PROFILES = {
    "Constrained Baseline": "baseline", "Baseline": "baseline", "Main": "main",
    "High": "high", "High 10": "high10", "High 4:2:2": "high422",
    "High 4:4:4 Predictive": "high444",
}  # fmt: skip
_X264_PIX_FMTS = frozenset({"yuv420p", "yuvj420p", "yuv422p", "yuvj422p", "yuv444p", "yuvj444p",
                            "yuv420p10le", "yuv422p10le", "yuv444p10le"})  # fmt: skip


@dataclass(frozen=True, slots=True)
class ClipOptions:
    mode: ClipMode = ClipMode.EXACT
    #: ``"auto"`` (a working hardware encoder, else libx264), ``"libx264"`` or a
    #: hardware encoder's name; used where whole ranges are re-encoded.
    encoder: str = "auto"
    crf: int = 20
    preset: str = "veryfast"
    #: AAC bitrate (bits/s) wherever audio is re-encoded.
    audio_bitrate: int = 128_000
    #: An ASS file whose times are relative to the clip's start, burned into the video.
    burn_subtitles: Path | None = None
    #: Extra fonts for the burned subtitles.
    fonts_dir: Path | None = None

    def __post_init__(self) -> None:
        try:
            object.__setattr__(self, "mode", ClipMode(self.mode))
        except ValueError as exc:
            raise InvalidInputError(f"clip mode must be fast or exact, not {self.mode!r}") from exc
        if not 0 <= self.crf <= 51:
            raise InvalidInputError("crf must be between 0 and 51")
        if self.preset not in _PRESETS:
            raise InvalidInputError(f"preset must be one of {', '.join(_PRESETS)}")
        if self.audio_bitrate < 8_000:
            raise InvalidInputError("audio_bitrate is in bits per second (e.g. 128000)")
        if self.encoder not in ("auto", SOFTWARE, *HARDWARE):
            raise InvalidInputError(
                f"unknown encoder {self.encoder!r}: use auto, {SOFTWARE}, {', '.join(HARDWARE)}"
            )
        # Paths given as strings (from a CLI or JSON) are accepted as such.
        for name in ("burn_subtitles", "fonts_dir"):
            value = getattr(self, name)
            if value is not None and not isinstance(value, Path):
                object.__setattr__(self, name, Path(value))


@dataclass(frozen=True, slots=True)
class ClipResult:
    path: Path
    requested: TimeRange
    #: Where the clip really starts on the source timeline: add it to clip-relative
    #: times (a transcript's) to get source times.
    start: float
    end: float
    #: The written file's duration, as probed.
    duration: float
    method: Method
    #: The video encoder that produced re-encoded frames; None when nothing was.
    encoder: str | None


@dataclass(frozen=True, slots=True)
class _Cut:
    """A resolved request: what to read, where to write, what went on."""

    src: Path
    out: Path
    info: MediaInfo
    options: ClipOptions
    start: float
    end: float
    video: StreamInfo | None
    audio: StreamInfo | None
    #: ffmpeg can seek in the source (see probe.can_seek); stream copies need it.
    seekable: bool
    on_fraction: FractionCallback = field(repr=False)

    @property
    def reaches_eof(self) -> bool:
        return self.end >= self.info.duration - _EPS


def clip(
    src: Path | str,
    dest: Path | str,
    time_range: TimeRange,
    options: ClipOptions | None = None,
    progress: ProgressCallback | None = None,
    info: MediaInfo | None = None,
) -> ClipResult:
    """Writes ``time_range`` of ``src`` to ``dest`` (MP4/M4A/MOV/MKV by its suffix)."""
    src, dest = Path(src), Path(dest)
    options = options or ClipOptions()
    fast = options.mode is ClipMode.FAST and options.burn_subtitles is None
    if info is None or (fast and info.has_video and not info.keyframes):
        info = probe(src, keyframes=fast)
    if options.burn_subtitles is not None and not options.burn_subtitles.is_file():
        raise InvalidInputError(f"subtitle file not found: {options.burn_subtitles}")
    start, end = _resolve(time_range, info)
    video = info.video if dest.suffix.lower() not in _AUDIO_ONLY else None
    if video is None and info.audio is None:
        raise MediaError(f"{src.name}: nothing to clip into {dest.suffix or 'the output'}")
    if video is None and options.burn_subtitles is not None:
        raise InvalidInputError("cannot burn subtitles into a clip without video")

    tracker = EtaTracker()

    def on_fraction(fraction: float) -> None:
        report(progress, "clip", fraction, eta=tracker.eta(fraction))

    report(progress, "clip", 0.0, f"clipping {start:.3f}–{end:.3f}s")
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(f".{dest.stem}.partial{dest.suffix}")
    seekable = can_seek(src)
    cut = _Cut(src, part, info, options, start, end, video, info.audio, seekable, on_fraction)
    try:
        if fast:
            real_start, method, encoder = _fast(cut)
        else:
            real_start, method, encoder = _exact(cut)
        duration = probe(part).duration
        part.replace(dest)
    finally:
        part.unlink(missing_ok=True)
    report(progress, "clip", 1.0, "done", eta=0.0)
    return ClipResult(dest, time_range, real_start, real_start + duration, duration, method,
                      encoder)  # fmt: skip


def _resolve(time_range: TimeRange, info: MediaInfo) -> tuple[float, float]:
    """The range clamped to the media: an end past the duration means the end."""
    if time_range.start >= info.duration:
        raise InvalidInputError(
            f"start {time_range.start:g}s is beyond the end of the media ({info.duration:.3f}s)"
        )
    end = info.duration if time_range.end is None else min(time_range.end, info.duration)
    return time_range.start, end


# --- fast: stream copy ------------------------------------------------------------------


def _fast(cut: _Cut) -> tuple[float, Method, str | None]:
    start = cut.start
    if not cut.seekable:
        return _reencode(cut)  # a copy would start wherever ffmpeg failed to seek
    if cut.video is not None:
        if _mp4(cut.out) and cut.video.codec not in _MP4_VIDEO:
            return _reencode(cut)
        # The keyframe at or before the start; -ss exactly there means ffmpeg copies
        # from that keyframe with no pre-roll to hide behind an edit list.
        start = max((k for k in cut.info.keyframes if k <= cut.start + _EPS), default=0.0)
    args = ["-ss", seconds_arg(start, rounding="up"), "-i", str(cut.src),
            "-t", seconds_arg(cut.end - start), *_maps(cut), "-c", "copy"]  # fmt: skip
    if cut.audio is not None and not _copyable_audio(cut.audio.codec, cut.out):
        args += _audio_args(cut)
    run_ffmpeg([*args, *_container_args(cut.out), "-y", str(cut.out)], what="stream-copy cut",
               duration=cut.end - start, on_progress=cut.on_fraction)  # fmt: skip
    return start, "copy", None


# --- exact: smart cut or re-encode -----------------------------------------------------


@dataclass(frozen=True, slots=True)
class _SmartPlan:
    first: float  # the clip's first frame
    head: int  # frames re-encoded from ``first`` up to ``body_start``
    body_start: float
    body: int | None  # frames copied; None = to the end of the source
    tail_start: float | None
    tail: int
    times: tuple[float, ...]  # every frame of the clip (source timeline)

    @property
    def frames(self) -> int:
        return len(self.times)


def _exact(cut: _Cut) -> tuple[float, Method, str | None]:
    if cut.video is None:
        return _reencode(cut)
    scan = scan_video(cut.src, cut.start, cut.end)
    plan = _plan_smart(cut, scan)
    if plan is None:
        return _reencode(cut, scan)
    try:
        _smart(cut, scan, plan)
    except (ProcessingError, MediaError) as exc:
        # The smart cut is an optimisation: a source it trips over still gets clipped.
        log.warning("smart cut of %s failed (%s); re-encoding instead", cut.src.name, exc)
        return _reencode(cut, scan)
    if plan.head == 0 and plan.tail == 0:
        return plan.first, "copy", None  # on keyframes at both ends: nothing re-encoded
    return plan.first, "smart", SOFTWARE


def _frames_in(scan: VideoScan, start: float, end: float) -> list[float]:
    return sorted(p.pts for p in scan.packets if start - _EPS <= p.pts < end - _EPS)


def _plan_smart(cut: _Cut, scan: VideoScan) -> _SmartPlan | None:
    """Where to re-encode and where to copy, or None when only a re-encode is safe."""
    video = cut.video
    if (
        video is None
        or not cut.seekable
        or video.codec != "h264"
        or video.rotation != 0  # the re-encoded parts would need the matrix restored
        or video.pix_fmt not in _X264_PIX_FMTS
        or cut.out.suffix.lower() not in {*_MP4_LIKE, ".mkv"}
        or cut.options.burn_subtitles is not None
    ):
        return None
    frames = _frames_in(scan, cut.start, cut.end)
    if not frames:
        return None
    # The frame right after the range: when it is a clean keyframe the end needs no
    # re-encoding at all.
    after = min((p.pts for p in scan.packets if p.pts >= cut.end - _EPS), default=None)
    last = frames[-1] if after is None else after
    cuts = [k for k in _clean_cut_points(scan.packets) if frames[0] - _EPS <= k <= last + _EPS]
    if not cuts:
        return None  # the range is shorter than a GOP: a re-encode is as quick
    body_start = cuts[0]
    head = len(_frames_in(scan, frames[0], body_start))
    if after is None and cut.reaches_eof:
        return _SmartPlan(frames[0], head, body_start, None, None, 0, tuple(frames))
    tail_start = cuts[-1]
    body = len(_frames_in(scan, body_start, tail_start))
    if body == 0:
        return None
    tail = len(frames) - head - body
    return _SmartPlan(frames[0], head, body_start, body, tail_start if tail else None, tail,
                      tuple(frames))  # fmt: skip


def _keyframe_before(scan: VideoScan, t: float) -> float:
    return max(p.pts for p in scan.packets if p.keyframe and p.pts <= t + _EPS)


def _clean_cut_points(packets: Sequence[PacketTiming]) -> list[float]:
    """Keyframes the stream can be split at: IDR pictures with every packet before them
    (decode order) shown before them and every packet after shown after (a closed GOP;
    an open GOP's leading B-frames reference the previous GOP)."""
    points: list[float] = []
    latest = -float("inf")  # the latest display time among the packets so far
    for i, packet in enumerate(packets):
        if (
            packet.idr
            and latest < packet.pts - _EPS
            and all(p.pts > packet.pts + _EPS for p in packets[i + 1 : i + _REORDER_WINDOW])
        ):
            points.append(packet.pts)
        latest = max(latest, packet.pts)
    return points


def _smart(cut: _Cut, scan: VideoScan, plan: _SmartPlan) -> None:
    """Head and tail re-encoded, body copied, each as MPEG-TS placed on the clip's
    timeline; joined, then muxed with the audio re-encoded over the range."""
    duration = cut.end - plan.first
    weights = {"head": plan.head, "body": 0.05 * (plan.body or plan.frames),
               "tail": plan.tail, "audio": 0.1 * plan.frames if cut.audio else 0.0,
               "join": 0.02 * plan.frames}  # fmt: skip
    total = sum(weights.values())
    offsets = dict(zip(weights, itertools.accumulate([0.0, *weights.values()]), strict=False))

    def phase(name: str) -> FractionCallback:
        return lambda f: cut.on_fraction((offsets[name] + f * weights[name]) / total)

    with tempfile.TemporaryDirectory(prefix="reelscribe-clip-") as tmp_dir:
        tmp = Path(tmp_dir)
        parts: list[Path] = []
        if plan.head:
            # The copied body's first packet is decoded ``lag`` before it is shown
            # (B-frames); shifting the head's decode times as far back keeps the
            # joined stream's decode times increasing. The head has no B-frames, so
            # before the shift its decode times are its display times.
            key = next(p for p in scan.packets if abs(p.pts - plan.body_start) < _EPS)
            lag = key.pts - key.dts
            seek = _seek(
                cut.info,
                plan.first,
                _keyframe_before(scan, plan.first),
                plan.body_start - plan.first,
            )
            parts.append(tmp / "head.ts")
            run_ffmpeg([
                *seek.input, "-i", str(cut.src), *_part_video_args(cut, scan, plan.head, seek),
                "-bsf:v", f"setts=dts=DTS-{lag:.6f}/TB", *_ts_args(0.0), str(parts[-1]),
            ], what="smart cut (head)", duration=plan.body_start - plan.first,
               on_progress=phase("head"))  # fmt: skip
        parts.append(tmp / "body.ts")
        count = ["-frames:v", str(plan.body)] if plan.body is not None else []
        run_ffmpeg([
            "-ss", seconds_arg(plan.body_start, rounding="up"), "-i", str(cut.src),
            "-map", "0:V:0", "-c:v", "copy", "-bsf:v", "h264_mp4toannexb", *count,
            *_ts_args(plan.body_start - plan.first), str(parts[-1]),
        ], what="smart cut (copy)")  # fmt: skip
        if plan.tail_start is not None:
            seek = _seek(cut.info, plan.tail_start, plan.tail_start, cut.end - plan.tail_start)
            parts.append(tmp / "tail.ts")
            run_ffmpeg([
                *seek.input, "-i", str(cut.src), *_part_video_args(cut, scan, plan.tail, seek),
                *_ts_args(plan.tail_start - plan.first), str(parts[-1]),
            ], what="smart cut (tail)", duration=cut.end - plan.tail_start,
               on_progress=phase("tail"))  # fmt: skip
        joined = tmp / "joined.ts"
        # What the concat: protocol does, without its '|'-separated path syntax.
        with joined.open("wb") as out:
            for part in parts:
                with part.open("rb") as data:
                    shutil.copyfileobj(data, out)
        inputs, maps = ["-i", str(joined)], ["-map", "0:v:0"]
        if cut.audio is not None:
            audio = tmp / "audio.m4a"  # Matroska would round its timestamps to 1 ms
            seek = _seek(cut.info, plan.first, _keyframe_before(scan, plan.first), duration)
            run_ffmpeg([*seek.input, "-i", str(cut.src), "-map", "0:a:0", "-af",
                        ",".join(seek.audio), *_audio_args(cut), "-y", str(audio)],
                       what="smart cut (audio)", duration=duration,
                       on_progress=phase("audio"))  # fmt: skip
            inputs, maps = [*inputs, "-i", str(audio)], [*maps, "-map", "1:a:0"]
        run_ffmpeg([*inputs, *maps, "-c", "copy", *_container_args(cut.out), "-y", str(cut.out)],
                   what="smart cut (join)", duration=duration,
                   on_progress=phase("join"))  # fmt: skip
    assert cut.video is not None
    _check_frames(cut.out, [t - plan.first for t in plan.times], cut.video.fps)


def _part_video_args(cut: _Cut, scan: VideoScan, frames: int, seek: _Seek) -> list[str]:
    """A re-encoded part that the copied GOPs can follow: the source's pixel format,
    profile and level, no B-frames (so decode order is display order)."""
    video = cut.video
    assert video is not None
    assert video.pix_fmt is not None
    args = ["-map", "0:V:0", "-vf", ",".join(seek.video), "-frames:v", str(frames),
            "-fps_mode", "passthrough", "-c:v", SOFTWARE, "-preset", cut.options.preset,
            "-crf", str(cut.options.crf), "-bf", "0", "-pix_fmt", video.pix_fmt]  # fmt: skip
    profile = _X264_PROFILES.get(video.profile or "")
    if profile is not None:
        args += ["-profile:v", profile]
    if scan.level is not None:
        args += ["-level:v", str(scan.level)]
    return args


def _ts_args(offset: float) -> list[str]:
    # Timestamps are placed on the clip's timeline by the offset; letting the muxer
    # shift negative ones would move this part against the others.
    return ["-output_ts_offset", seconds_arg(offset), "-avoid_negative_ts", "disabled",
            "-f", "mpegts", "-y"]  # fmt: skip


def _check_frames(path: Path, expected: Sequence[float], fps: float | None) -> None:
    """The joined clip shows exactly the planned frames at the planned times (a demux,
    not a decode): a part cut from the wrong place cannot hide behind the right count."""
    try:
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            start = (container.start_time or 0) / 1e6
            shown = sorted(
                float(p.pts * p.time_base) - start
                for p in container.demux(stream)
                if p.size and p.pts is not None
            )
    except (av.FFmpegError, IndexError) as exc:
        raise MediaError(f"smart cut output unreadable: {exc}") from exc
    if len(shown) != len(expected):
        raise MediaError(f"smart cut produced {len(shown)} frames, expected {len(expected)}")
    tolerance = 0.25 / (fps or 120.0)
    worst = max(abs(a - b) for a, b in zip(shown, expected, strict=True))
    if worst > tolerance:
        raise MediaError(f"smart cut frame times are off by up to {worst:.4f}s")


def _reencode(cut: _Cut, scan: VideoScan | None = None) -> tuple[float, Method, str | None]:
    """One ffmpeg pass: cut, optionally burn subtitles, encode."""
    start, keyframe, frames, encoder = cut.start, cut.start, 0, None
    if cut.video is not None:
        scan = scan or scan_video(cut.src, cut.start, cut.end)
        in_range = _frames_in(scan, cut.start, cut.end)
        if not in_range:
            raise InvalidInputError(
                f"the range {cut.start:g}–{cut.end:g}s holds no video frame; make it longer"
            )
        start, frames = in_range[0], len(in_range)
        keyframe = _keyframe_before(scan, start)
        encoder = select_h264_encoder(cut.options.encoder)
    duration = cut.end - start
    seek = _seek(cut.info, start, keyframe, duration)
    args = [*(encoder.input_args() if encoder else []), *seek.input, "-i", str(cut.src),
            *_maps(cut)]  # fmt: skip
    if encoder is not None:
        args += [*_video_encode_args(cut, encoder, seek), "-frames:v", str(frames)]
    if cut.audio is not None:
        args += ["-af", ",".join(seek.audio), *_audio_args(cut)]
    run_ffmpeg([*args, *_container_args(cut.out), "-y", str(cut.out)], what="re-encode",
               duration=duration, on_progress=cut.on_fraction)  # fmt: skip
    return start, "reencode", encoder.name if encoder else None


@dataclass(frozen=True, slots=True)
class _Seek:
    """How a re-encode gets exactly the range, starting at t=0 in its output.

    ffmpeg seeks (``-ss`` before ``-i``) to the keyframe, or in containers whose seeks
    land on any packet (MPEG-TS) to well before it, as decoding from a non-keyframe
    loses frames. The cut itself is made by trim filters on the untouched source
    timestamps (``-copyts``): ffmpeg's own ``-ss`` trimming counts from a start time
    that depends on which streams are selected, and compares rounded timestamps, so
    it can drop the very frame asked for. ``trim`` here cuts a quarter frame early,
    which cannot reach the frame before.
    """

    input: list[str]
    video: list[str]  # filters that go first in the video chain
    audio: list[str]


def _seek(info: MediaInfo, first: float, keyframe: float, duration: float) -> _Seek:
    precise = info.format_name.split(",")[0] in ("mov", "matroska")
    at = keyframe if precise else max(0.0, keyframe - _SEEK_MARGIN)
    fps = info.video.fps if info.video is not None and info.video.fps else 120.0
    margin = 0.25 / fps
    # -copyts keeps the demuxer's timestamps, which count from the container's
    # start time rather than from 0.
    t0, t1 = info.start_time + first, info.start_time + first + duration
    args = ["-copyts", "-noaccurate_seek"]
    if at > 0:
        args += ["-ss", seconds_arg(at, rounding="up" if precise else "down")]
    return _Seek(
        args,
        # No end: the callers count frames with -frames:v instead.
        [f"trim=start={t0 - margin:.6f}", "setpts=PTS-STARTPTS"],
        # A constant shift (not STARTPTS): audio that starts late stays late, in sync.
        [f"atrim=start={t0:.6f}:end={t1:.6f}", f"asetpts=PTS-{t0:.6f}/TB"],
    )


def _video_encode_args(cut: _Cut, encoder: H264Encoder, seek: _Seek) -> list[str]:
    filters = list(seek.video)
    subs = cut.options.burn_subtitles
    if subs is not None:
        # The cut restarts timestamps at 0 before this filter, which is what
        # clip-relative subtitle times need.
        sub = f"subtitles=filename={filter_value(str(subs))}"
        if cut.options.fonts_dir is not None:
            sub += f":fontsdir={filter_value(str(cut.options.fonts_dir))}"
        filters.append(sub)
    filters += encoder.filters()
    return ["-vf", ",".join(filters), "-fps_mode", "passthrough",
            *encoder.output_args(crf=cut.options.crf, preset=cut.options.preset)]  # fmt: skip


# --- small argv pieces ------------------------------------------------------------------


def _maps(cut: _Cut) -> list[str]:
    # 0:V skips cover art; only the first video and audio stream go into a clip.
    maps: list[str] = []
    if cut.video is not None:
        maps += ["-map", "0:V:0"]
    if cut.audio is not None:
        maps += ["-map", "0:a:0"]
    return [*maps, "-sn", "-dn"]


def _audio_args(cut: _Cut) -> list[str]:
    return ["-c:a", "aac", "-b:a", str(cut.options.audio_bitrate)]


def _mp4(path: Path) -> bool:
    return path.suffix.lower() in _MP4_LIKE


def _copyable_audio(codec: str, out: Path) -> bool:
    if out.suffix.lower() == ".m4a":
        return codec in _M4A_AUDIO
    return not _mp4(out) or codec in _MP4_AUDIO


def _container_args(path: Path) -> list[str]:
    # faststart moves the index to the front, so browsers play before the download ends.
    return ["-movflags", "+faststart"] if _mp4(path) else []
