"""Memory benchmark: peak RSS of `reelscribe transcribe` on a 30-minute file.

The file is real speech (bench/speech.py) repeated to 30 minutes and encoded as AAC,
so the run includes decoding, the audio stage and batched transcription, exactly as
a user would run it. The CLI runs in a child process and its peak RSS is read from
the kernel (getrusage of children).

    python bench/memory.py [--minutes 30]
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

import speech
from reelscribe.media.ffmpeg import ffmpeg_exe


def make_long_file(dest: Path, minutes: float) -> Path:
    audio, _ = speech.build()
    repeats = int(np.ceil(minutes * 60 * speech.SR / len(audio)))
    long = np.tile(audio, repeats)[: int(minutes * 60 * speech.SR)]
    subprocess.run(
        [
            ffmpeg_exe(),
            "-hide_banner",
            "-loglevel",
            "error",
            "-y",
            "-f",
            "f32le",
            "-ar",
            str(speech.SR),
            "-ac",
            "1",
            "-i",
            "pipe:0",
            "-c:a",
            "aac",
            "-b:a",
            "64k",
            str(dest),
        ],
        input=long.tobytes(),
        check=True,
    )
    return dest


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--minutes", type=float, default=30.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        src = make_long_file(Path(tmp) / "long.m4a", args.minutes)
        t0 = time.perf_counter()
        subprocess.run(
            [
                sys.executable,
                "-m",
                "reelscribe.cli",
                "transcribe",
                str(src),
                "--format",
                "srt,json",
                "--out",
                str(Path(tmp) / "out"),
                "--quiet",
            ],
            check=True,
            stdout=subprocess.DEVNULL,
        )
        elapsed = time.perf_counter() - t0
    peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    print("| audio | wall time (s) | RTF | peak RSS (MB) |")
    print("|---|---|---|---|")
    print(
        f"| {args.minutes:g} min real speech (AAC) | {elapsed:.1f} | "
        f"{elapsed / (args.minutes * 60):.3f} | {peak_mb:.0f} |"
    )
    print(f"target: peak RSS <= 1024 MB -> {'met' if peak_mb <= 1024 else 'NOT met'}")


if __name__ == "__main__":
    main()
