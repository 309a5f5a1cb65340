"""The separate stage: the range's audio in, its vocal stem out, for ASR and as an output.

Runs between ``audio`` and ``transcribe``. It decodes the range again at the rate the
separation models take (44.1 kHz stereo: the 16 kHz mono the audio stage made has lost
what they need above 8 kHz), separates it with the configured backend
(:mod:`reelscribe.separation`), and gives back the stem as 16 kHz mono samples,
the same length as the mix's, so every timestamp stays on the source's timeline.
With the ``vocals`` output it also writes the stem as FLAC (lossless, a quarter of a
WAV's size).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from reelscribe.errors import ProcessingError, ReelscribeError
from reelscribe.media.ffmpeg import ffmpeg_output, run_ffmpeg
from reelscribe.models import MediaInfo, TimeRange
from reelscribe.pipeline.audio import SAMPLE_RATE as ASR_RATE
from reelscribe.pipeline.audio import _decode_args
from reelscribe.progress import EtaTracker, ProgressCallback, report
from reelscribe.separation.base import CHANNELS, SAMPLE_RATE, SeparateOptions, load_separator

STAGE = "separate"
STEM_EXTENSION = ".vocals.flac"


@dataclass(frozen=True, slots=True)
class Separated:
    #: The vocal stem, 16 kHz mono float32 (what the ASR stage takes).
    samples: npt.NDArray[np.float32]
    #: The stem written as the ``vocals`` output, when asked for.
    stem: Path | None
    #: Seconds of audio separated, and how long it took (the RTF is their ratio).
    duration: float
    seconds: float


def separate(
    src: Path,
    span: TimeRange,
    work_dir: Path,
    options: SeparateOptions,
    progress: ProgressCallback | None = None,
    *,
    info: MediaInfo | None = None,
    stem_path: Path | None = None,
) -> Separated:
    """The vocal stem of ``span`` of ``src``; written to ``stem_path`` too when given."""
    started = time.monotonic()
    mix, vocals = work_dir / "separate.mix.f32", work_dir / "separate.vocals.f32"
    work_dir.mkdir(parents=True, exist_ok=True)
    report(progress, STAGE, 0.0, "decoding the mix")
    args = _decode_args(src, None if span.is_whole else span, info, SAMPLE_RATE)
    # The audio stage's decode (same seek and trim, so the same timeline), in stereo.
    args[args.index("-ac") + 1] = str(CHANNELS)
    run_ffmpeg([*args, "-f", "f32le", "-c:a", "pcm_f32le", "-y", str(mix)], what="audio decode")
    duration = mix.stat().st_size / (4 * CHANNELS * SAMPLE_RATE)
    # The first Spleeter run on a machine builds its virtualenv here (minutes, once).
    report(progress, STAGE, 0.02, f"loading the {options.backend} separator")
    separator = load_separator(options)
    eta = EtaTracker()

    def step(fraction: float) -> None:
        done = 0.05 + 0.85 * fraction
        report(progress, STAGE, done, f"separating the vocals ({options.backend})",
               eta.eta(fraction))  # fmt: skip

    try:
        separator.separate(mix, vocals, step)
    except ReelscribeError:
        raise
    except (OSError, RuntimeError, ValueError, MemoryError) as exc:
        raise ProcessingError(f"vocal separation failed: {exc}") from exc
    finally:
        mix.unlink(missing_ok=True)
    try:
        samples = _downmix(vocals)
        stem = None
        if stem_path is not None:
            report(progress, STAGE, 0.95, "writing the vocal stem")
            stem = _write_stem(vocals, stem_path)
    finally:
        vocals.unlink(missing_ok=True)
    report(progress, STAGE, 1.0, f"{duration:.0f} s separated")
    return Separated(samples, stem, duration, time.monotonic() - started)


def _raw_input(path: Path) -> list[str]:
    return ["-f", "f32le", "-ar", str(SAMPLE_RATE), "-ac", str(CHANNELS), "-i", str(path)]


def _downmix(vocals: Path) -> npt.NDArray[np.float32]:
    raw = ffmpeg_output([*_raw_input(vocals), "-ac", "1", "-ar", str(ASR_RATE),
                         "-f", "f32le", "-c:a", "pcm_f32le", "pipe:1"],
                        what="vocal stem resample")  # fmt: skip
    return np.frombuffer(raw, dtype="<f4")


def _write_stem(vocals: Path, dest: Path) -> Path:
    dest.parent.mkdir(parents=True, exist_ok=True)
    # 24-bit: the stem is float, and 16 bits would add noise to quiet passages.
    run_ffmpeg([*_raw_input(vocals), "-c:a", "flac", "-sample_fmt", "s32",
                "-bits_per_raw_sample", "24", "-y", str(dest)],
               what="vocal stem encode")  # fmt: skip
    return dest


def fit_length(samples: npt.NDArray[np.float32], length: int) -> npt.NDArray[np.float32]:
    """``samples`` cut or padded with silence to ``length`` (the two decodes may differ
    by a few samples of resampler delay; the transcript's times come from the mix's)."""
    if len(samples) >= length:
        return samples[:length]
    return np.concatenate([samples, np.zeros(length - len(samples), dtype=np.float32)])
