"""A sample the ``demo`` command can make on any machine.

The picture is ffmpeg's test pattern. The sound is real speech where there is some:
a file the user names (``--speech``), else the shared recordings next to the checkout
(``../shared/media/jfk.flac``), else speech synthesised by ``espeak-ng`` when it is
installed. With none of them the sound is a tone: every stage still runs, but the
transcript is empty, and :func:`find_speech` says so, with what to do about it.
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from reelscribe.errors import InvalidInputError
from reelscribe.media.ffmpeg import run_ffmpeg

SPEECH = (
    "Welcome to reelscribe. This sample was generated on your machine. "
    "It is transcribed, cut, and subtitled without any network access."
)
#: Real speech beside a checkout (the shared test recordings), relative to the cwd.
SHARED_SPEECH = Path("..") / "shared" / "media" / "jfk.flac"
#: The sample's length bounds (seconds): long enough for the clip from 1 s, short
#: enough to stay a demo whatever file it is given.
MIN_SECONDS, MAX_SECONDS = 12.0, 60.0
NO_SPEECH_HINT = (
    "no speech source: the sample's sound is a tone, so its transcript will be empty. "
    "Give a recording with `reelscribe demo --speech FILE`, or install espeak-ng "
    "(e.g. apt-get install espeak-ng)"
)


@dataclass(frozen=True, slots=True)
class Speech:
    """Where the sample's sound comes from: ``kind`` is "file", "espeak" or "tone"."""

    kind: str
    path: Path | None = None
    note: str = ""


def find_speech(given: Path | None = None) -> Speech:
    """The best speech there is: the user's file, the shared recording, espeak-ng."""
    if given is not None:
        if not given.is_file():
            raise InvalidInputError(f"speech file {given} does not exist")
        return Speech("file", given, f"speech from {given}")
    if SHARED_SPEECH.is_file():
        return Speech("file", SHARED_SPEECH, f"speech from {SHARED_SPEECH}")
    if shutil.which("espeak-ng") or shutil.which("espeak"):
        return Speech("espeak", None, "speech synthesised by espeak-ng")
    return Speech("tone", None, NO_SPEECH_HINT)


def _duration(path: Path) -> float:
    from reelscribe.pipeline.probe import probe

    return probe(path).duration


def make_sample(dest: Path, speech: Speech | None = None) -> Path:
    speech = speech or find_speech()
    dest.parent.mkdir(parents=True, exist_ok=True)
    voice = dest.with_suffix(".speech.wav")
    seconds = MIN_SECONDS
    if speech.kind == "file" and speech.path is not None:
        seconds = min(MAX_SECONDS, max(MIN_SECONDS, _duration(speech.path)))
        audio_in = ["-i", str(speech.path)]
    elif speech.kind == "espeak":
        espeak = shutil.which("espeak-ng") or shutil.which("espeak") or "espeak-ng"
        subprocess.run(
            [espeak, "-s", "150", "-w", str(voice), SPEECH], check=True, capture_output=True
        )
        audio_in = ["-i", str(voice)]
    else:
        audio_in = ["-f", "lavfi", "-i", f"sine=frequency=440:duration={seconds:g}"]
    run_ffmpeg(
        [
            "-y",
            "-f",
            "lavfi",
            "-i",
            f"testsrc2=size=640x360:rate=25:duration={seconds:g}",
            *audio_in,
            "-filter_complex",
            f"[1:a]apad=whole_dur={seconds:g}[a]",
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
