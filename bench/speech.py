"""Real-speech test material for the benchmarks, built from ../shared/media.

Only the recordings whose words are known exactly are used, so a word error rate
can be computed: jfk.flac, both channels of stereo_diarization.wav and the English
first half of multilingual.mp3. To reach a length worth timing, the set is played
three times, at 100 %, 92 % and 108 % tempo (still real speech, but not byte-equal
repeats), with short pauses in between.
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import numpy as np

from reelscribe.media.ffmpeg import ffmpeg_exe

MEDIA = Path(
    os.environ.get(
        "REELSCRIBE_TEST_MEDIA", Path(__file__).resolve().parents[2] / "shared" / "media"
    )
)
SR = 16_000

JFK = (
    "And so my fellow Americans, ask not what your country can do for you, "
    "ask what you can do for your country."
)
LEFT = (
    "He began a confused complaint against the wizard, who had vanished behind "
    "the curtain on the left."
)
RIGHT = "The horizon seems extremely distant."
MIT = (
    "Permission is hereby granted, free of charge, to any person obtaining a copy of this "
    "software and associated documentation files, to deal in the software without "
    "restriction, including without limitation the rights to use, copy, modify, merge, "
    "publish, distribute, sublicense, and/or sell copies of the software, and to permit "
    "persons to whom the software is furnished to do so, subject to the following "
    "conditions: The above copyright notice and this permission notice shall be included "
    "in all copies or substantial portions of the software."
)

# (file, ffmpeg audio filter selecting the part, reference text)
PIECES = [
    ("jfk.flac", "pan=mono|c0=c0", JFK),
    ("stereo_diarization.wav", "pan=mono|c0=c0", LEFT),
    ("stereo_diarization.wav", "pan=mono|c0=c1", RIGHT),
    ("multilingual.mp3", "atrim=0:30.3,pan=mono|c0=c0", MIT),
]
TEMPOS = (1.0, 0.92, 1.08)


def decode(path: Path, audio_filter: str) -> np.ndarray:
    out = subprocess.run(
        [
            ffmpeg_exe(),
            "-hide_banner",
            "-loglevel",
            "error",
            "-i",
            str(path),
            "-af",
            audio_filter,
            "-ac",
            "1",
            "-ar",
            str(SR),
            "-f",
            "f32le",
            "pipe:1",
        ],
        check=True,
        capture_output=True,
    ).stdout
    return np.frombuffer(out, np.float32)


def build() -> tuple[np.ndarray, str]:
    """Returns (16 kHz mono samples, reference transcript)."""
    parts: list[np.ndarray] = []
    refs: list[str] = []
    pause = np.zeros(int(0.8 * SR), np.float32)
    for tempo in TEMPOS:
        for name, af, ref in PIECES:
            filt = af if tempo == 1.0 else f"{af},atempo={tempo}"
            parts += [decode(MEDIA / name, filt), pause]
            refs.append(ref)
    return np.concatenate(parts), " ".join(refs)


def normalise(text: str) -> str:
    return re.sub(r"[^\w']+", " ", text.lower()).strip()


def wer(reference: str, hypothesis: str) -> float:
    import jiwer

    return float(jiwer.wer(normalise(reference), normalise(hypothesis)))
