"""Content moderation of video frames with NudeNet (its 320n ONNX detector ships inside
the ``nudenet`` wheel: no download).

Frames are sampled by ffmpeg: every scene change (ffmpeg's ``scene`` score) plus at
least one frame every ``interval`` seconds, downscaled before they leave ffmpeg. First
only the keyframes are decoded (``-skip_frame nokey``: a fraction of the decoding work,
14x less on 720p30 with a 2 s GOP): encoders start a keyframe at a cut and at least
every GOP, so when the keyframes are at most ``interval`` apart they are the sample. Only
when they are sparser (long GOPs) is every frame decoded and scored. The detector runs
on batches of frames. onnxruntime and OpenCV are imported on first use.
"""

from __future__ import annotations

import base64
import itertools
import re
import subprocess
import tempfile
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from reelscribe.analysis.options import ModerationOptions
from reelscribe.analysis.results import Detection, ModerationFlag, ModerationReport
from reelscribe.errors import ExtraNotInstalledError, MediaError, ProcessingError
from reelscribe.media.ffmpeg import ffmpeg_exe, last_line, seconds_arg
from reelscribe.models import TimeRange

#: Height of the frames the detector sees (it works at 320x320).
FRAME_HEIGHT = 360
_PTS = re.compile(r"\bpts_time:\s*([0-9.eE+-]+)")

_detector: Any = None
_lock = threading.Lock()


def detector() -> Any:
    """The NudeNet detector (``nudenet.NudeDetector``), loaded once per process."""
    global _detector
    with _lock:
        if _detector is None:
            try:
                from nudenet import NudeDetector
            except ImportError as exc:
                raise ExtraNotInstalledError(
                    "content moderation needs NudeNet: pip install 'reelscribe[moderation]'"
                ) from exc
            _detector = NudeDetector()
        return _detector


@dataclass(frozen=True, slots=True)
class Frame:
    time: float  # seconds from the start of the sampled range
    pixels: npt.NDArray[np.uint8]  # height x width x 3, BGR (OpenCV's order)


def frame_size(width: int, height: int, rotation: int = 0) -> tuple[int, int]:
    """The sampled frames' size: FRAME_HEIGHT high (never upscaled), even numbers."""
    if rotation % 180:
        width, height = height, width
    out_h = min(FRAME_HEIGHT, height)
    out_w = max(2, round(width * out_h / height / 2) * 2)
    return out_w, out_h - out_h % 2


def sample_frames(
    path: Path,
    size: tuple[int, int],
    span: TimeRange,
    options: ModerationOptions,
    length: float | None = None,
) -> list[Frame]:
    """Frames at scene changes and at least every ``options.interval`` seconds of the
    ``length`` seconds sampled: from the keyframes alone when they are dense enough."""
    frames = list(_select_frames(path, size, span, options, keyframes_only=True))
    if length is not None and covers([f.time for f in frames], length, options.interval):
        return frames
    return list(_select_frames(path, size, span, options, keyframes_only=False))


def covers(times: list[float], length: float, interval: float) -> bool:
    """No stretch longer than ``interval`` (with a little slack for timestamps) between
    the start, the sampled times and the end."""
    slack = interval * 1.25
    edges = [0.0, *sorted(times), length]
    return bool(times) and all(b - a <= slack for a, b in itertools.pairwise(edges))


def _select_frames(
    path: Path,
    size: tuple[int, int],
    span: TimeRange,
    options: ModerationOptions,
    *,
    keyframes_only: bool,
) -> Iterator[Frame]:
    width, height = size
    select = (
        f"isnan(prev_selected_t)+gte(t-prev_selected_t\\,{options.interval:g})"
        f"+gt(scene\\,{options.scene_threshold:g})"
    )
    args = [ffmpeg_exe(), "-hide_banner", "-nostdin", "-loglevel", "info"]
    if keyframes_only:
        args += ["-skip_frame", "nokey"]
    if span.start > 0:
        args += ["-ss", seconds_arg(span.start)]
    if span.duration is not None:
        # On the input: the filter (and its showinfo log) sees exactly what is output.
        args += ["-t", seconds_arg(span.duration)]
    args += ["-i", str(path)]
    args += ["-an", "-sn", "-dn", "-map", "0:v:0",
             "-vf", f"scale={width}:{height},select='{select}',showinfo",
             "-fps_mode", "passthrough", "-f", "rawvideo", "-pix_fmt", "bgr24",
             "pipe:1"]  # fmt: skip
    frame_bytes = width * height * 3
    with tempfile.TemporaryFile() as errors:
        proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=errors)
        assert proc.stdout is not None
        pixels: list[npt.NDArray[np.uint8]] = []
        with proc.stdout:
            while len(chunk := proc.stdout.read(frame_bytes)) == frame_bytes:
                pixels.append(np.frombuffer(chunk, np.uint8).reshape(height, width, 3))
        code = proc.wait()
        errors.seek(0)
        log = errors.read().decode("utf-8", "replace")
    if code != 0:
        raise ProcessingError(f"ffmpeg (frame sampling) failed: {last_line(log)}")
    times = [float(m.group(1)) for m in _PTS.finditer(log)]
    if len(times) < len(pixels):
        raise ProcessingError(
            f"frame sampling returned {len(pixels)} frames for {len(times)} timestamps"
        )
    for t, frame in zip(times, pixels, strict=False):
        yield Frame(t, frame)


def thumbnail(frame: Frame, width: int, *, blur: bool) -> str:
    """A small JPEG of the frame as a data: URI; unsafe frames are blurred beyond
    recognition before they are ever encoded."""
    import cv2

    h, w = frame.pixels.shape[:2]
    small = cv2.resize(frame.pixels, (width, max(2, round(h * width / w))),
                       interpolation=cv2.INTER_AREA)  # fmt: skip
    if blur:
        small = cv2.GaussianBlur(small, (0, 0), sigmaX=width / 12)
    ok, jpeg = cv2.imencode(".jpg", small, [cv2.IMWRITE_JPEG_QUALITY, 70])
    if not ok:
        raise ProcessingError("could not encode a moderation thumbnail")
    return "data:image/jpeg;base64," + base64.b64encode(jpeg.tobytes()).decode("ascii")


def check_frames(
    frames: list[Frame], options: ModerationOptions, offset: float = 0.0
) -> list[ModerationFlag]:
    """Runs the detector over ``frames`` in batches; frames with detections become
    flags (times shifted by ``offset`` onto the source's timeline)."""
    found = detector().detect_batch([f.pixels for f in frames], batch_size=options.batch)
    unsafe_labels = set(options.unsafe_labels)
    flags: list[ModerationFlag] = []
    for frame, detections in zip(frames, found, strict=True):
        kept = tuple(
            Detection(str(d["class"]), round(float(d["score"]), 4),
                      (int(d["box"][0]), int(d["box"][1]), int(d["box"][2]), int(d["box"][3])))
            for d in detections
            if float(d["score"]) >= options.threshold
        )  # fmt: skip
        if not kept:
            continue
        unsafe = any(d.label in unsafe_labels for d in kept)
        picture = thumbnail(frame, options.thumbnail_px, blur=unsafe)
        flags.append(ModerationFlag(round(frame.time + offset, 3), kept, unsafe, picture))
    return flags


def moderate_video(
    path: Path,
    size: tuple[int, int],
    span: TimeRange,
    options: ModerationOptions,
    *,
    offset: float = 0.0,
    length: float | None = None,
    on_progress: Callable[[float, str], None] | None = None,
) -> ModerationReport:
    """Moderates ``span`` of the video (``length`` seconds long, when known: it lets the
    keyframes alone serve as the sample)."""
    if size[0] < 2 or size[1] < 2:
        raise MediaError("the video has no usable frame size to moderate")
    frames = sample_frames(path, size, span, options, length)
    if on_progress is not None:
        on_progress(0.3, f"{len(frames)} frames sampled")
    flags: list[ModerationFlag] = []
    step = options.batch * 4
    for start in range(0, len(frames), step):
        flags += check_frames(frames[start : start + step], options, offset)
        if on_progress is not None:
            done = min(len(frames), start + step)
            on_progress(0.3 + 0.7 * done / len(frames), f"{done} of {len(frames)} frames checked")
    count = len(frames)
    return ModerationReport(
        policy=options.policy,
        frames=count,
        interval=options.interval,
        unsafe_labels=options.unsafe_labels,
        threshold=options.threshold,
        flags=tuple(flags),
    )
