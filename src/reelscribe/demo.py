"""A sample the ``demo`` command can make on any machine.

The picture is ffmpeg's test pattern. The sound is speech from ``espeak-ng`` when it
is installed (so the transcript has words in it); otherwise a tone, and the demo
still exercises every stage.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from reelscribe.media.ffmpeg import run_ffmpeg

SPEECH = (
    "Welcome to reelscribe. This sample was generated on your machine. "
    "It is transcribed, cut, and subtitled without any network access."
)


def make_sample(dest: Path) -> Path:
    dest.parent.mkdir(parents=True, exist_ok=True)
    voice = dest.with_suffix(".speech.wav")
    espeak = shutil.which("espeak-ng") or shutil.which("espeak")
    if espeak:
        subprocess.run(
            [espeak, "-s", "150", "-w", str(voice), SPEECH], check=True, capture_output=True
        )
        audio_in = ["-i", str(voice)]
    else:
        audio_in = ["-f", "lavfi", "-i", "sine=frequency=440:duration=12"]
    run_ffmpeg(
        [
            "-y",
            "-f",
            "lavfi",
            "-i",
            "testsrc2=size=640x360:rate=25:duration=12",
            *audio_in,
            "-filter_complex",
            "[1:a]apad=whole_dur=12[a]",
            "-map",
            "0:v",
            "-map",
            "[a]",
            "-c:v",
            "libx264",
            "-preset",
            "veryfast",
            "-pix_fmt",
            "yuv420p",
            "-g",
            "50",
            "-c:a",
            "aac",
            "-shortest",
            "-movflags",
            "+faststart",
            str(dest),
        ],
        what="making the demo sample",
    )
    voice.unlink(missing_ok=True)
    return dest
