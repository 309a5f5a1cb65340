"""The audio stage: the samples the ASR model hears, and only those of the range.

ffmpeg seeks before decoding (``-ss``/``-t`` ahead of ``-i``), so a minute cut from a
two-hour source costs a minute of decoding, and resamples to 16 kHz mono float32,
which is what Whisper models take.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import numpy.typing as npt

from reelscribe.errors import InvalidInputError, MediaError
from reelscribe.media.ffmpeg import ffmpeg_output, run_ffmpeg, seconds_arg
from reelscribe.models import MediaInfo, TimeRange
from reelscribe.pipeline.probe import probe

SAMPLE_RATE = 16_000


def load_audio(
    src: Path | str,
    time_range: TimeRange | None = None,
    *,
    sample_rate: int = SAMPLE_RATE,
    info: MediaInfo | None = None,
) -> npt.NDArray[np.float32]:
    """Mono float32 samples in [-1, 1] of ``time_range`` (default: all) of ``src``."""
    src = Path(src)
    args = _input_args(src, time_range, info)
    raw = ffmpeg_output(
        [*args, "-map", "0:a:0", "-vn", "-sn", "-dn", "-ac", "1", "-ar", str(sample_rate),
         "-f", "f32le", "-c:a", "pcm_f32le", "pipe:1"],
        what="audio decode",
    )  # fmt: skip
    # A copy, so callers get an ordinary writable array rather than a view of bytes.
    return np.frombuffer(raw, dtype="<f4").astype(np.float32, copy=True)


def extract_audio(
    src: Path | str,
    dest: Path | str,
    time_range: TimeRange | None = None,
    *,
    sample_rate: int = SAMPLE_RATE,
    info: MediaInfo | None = None,
) -> Path:
    """Writes ``time_range`` of ``src`` as a 16-bit mono WAV at ``sample_rate``."""
    src, dest = Path(src), Path(dest)
    args = _input_args(src, time_range, info)
    dest.parent.mkdir(parents=True, exist_ok=True)
    run_ffmpeg(
        [*args, "-map", "0:a:0", "-vn", "-sn", "-dn", "-ac", "1", "-ar", str(sample_rate),
         "-c:a", "pcm_s16le", "-f", "wav", "-y", str(dest)],
        what="audio extract",
    )  # fmt: skip
    return dest


def _input_args(src: Path, time_range: TimeRange | None, info: MediaInfo | None) -> list[str]:
    info = info or probe(src)
    if not info.has_audio:
        raise MediaError(f"no audio stream in {src.name}")
    if time_range is None or time_range.is_whole:
        return ["-i", str(src)]
    if time_range.start >= info.duration:
        raise InvalidInputError(
            f"start {time_range.start:g}s is beyond the end of the media ({info.duration:.3f}s)"
        )
    args = ["-ss", seconds_arg(time_range.start)] if time_range.start > 0 else []
    if time_range.end is not None and time_range.end < info.duration:
        args += ["-t", seconds_arg(time_range.end - time_range.start)]
    return [*args, "-i", str(src)]
