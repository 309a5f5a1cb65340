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
#: Decoding stops this long after the range (the exact end is cut by ``atrim``).
_DECODE_SLACK = 0.5


def load_audio(
    src: Path | str,
    time_range: TimeRange | None = None,
    *,
    sample_rate: int = SAMPLE_RATE,
    info: MediaInfo | None = None,
    channel: int | None = None,
) -> npt.NDArray[np.float32]:
    """Mono float32 samples in [-1, 1] of ``time_range`` (default: all) of ``src``;
    one ``channel`` of it when given (e.g. one speaker per channel), else a downmix.

    Sample 0 is the range's start on the source timeline, even when the audio track
    starts later than the video (the gap is silence), so ASR times line up with it.
    """
    args = _decode_args(Path(src), time_range, info, sample_rate, channel)
    raw = ffmpeg_output([*args, "-f", "f32le", "-c:a", "pcm_f32le", "pipe:1"],
                        what="audio decode")  # fmt: skip
    # A bytearray is writable, so this view is an ordinary array with no second copy
    # (30 minutes of audio is 115 MB; a copy would double the stage's peak memory).
    return np.frombuffer(raw, dtype="<f4")


def extract_audio(
    src: Path | str,
    dest: Path | str,
    time_range: TimeRange | None = None,
    *,
    sample_rate: int = SAMPLE_RATE,
    info: MediaInfo | None = None,
) -> Path:
    """Writes ``time_range`` of ``src`` as a 16-bit mono WAV at ``sample_rate``."""
    dest = Path(dest)
    args = _decode_args(Path(src), time_range, info, sample_rate)
    dest.parent.mkdir(parents=True, exist_ok=True)
    run_ffmpeg([*args, "-c:a", "pcm_s16le", "-f", "wav", "-y", str(dest)],
               what="audio extract")  # fmt: skip
    return dest


def _decode_args(
    src: Path,
    time_range: TimeRange | None,
    info: MediaInfo | None,
    sample_rate: int,
    channel: int | None = None,
) -> list[str]:
    info = info or probe(src)
    if not info.has_audio:
        raise MediaError(f"no audio stream in {src.name}")
    time_range = time_range or TimeRange()
    if time_range.start >= info.duration:
        raise InvalidInputError(
            f"start {time_range.start:g}s is beyond the end of the media ({info.duration:.3f}s)"
        )
    end = info.duration if time_range.end is None else min(time_range.end, info.duration)
    # With -copyts the timestamps stay those of the source (counted from the
    # container's start time), so the trim below is exact whichever stream starts
    # first; ffmpeg's own -ss trimming counts from the first *selected* stream.
    t0, t1 = info.start_time + time_range.start, info.start_time + end
    args = ["-copyts"]
    if time_range.start > 0:
        args += ["-ss", seconds_arg(time_range.start)]  # seek: decode only the range
    if end < info.duration:
        args += ["-t", seconds_arg(end - time_range.start + _DECODE_SLACK)]
    chain = [] if channel is None else [f"pan=mono|c0=c{int(channel)}"]
    chain += [
        f"atrim=start={t0:.6f}:end={t1:.6f}",
        f"asetpts=PTS-{t0:.6f}/TB",
        "aresample=first_pts=0",  # pads with silence when the audio starts late
    ]
    return [*args, "-i", str(src), "-map", "0:a:0", "-vn", "-sn", "-dn",
            "-af", ",".join(chain), "-ac", "1", "-ar", str(sample_rate)]  # fmt: skip
