"""Vocal separation benchmark: Whisper on speech under loud music, with and without
separating the vocals first.

The speech is real (jfk.flac and the English first half of multilingual.mp3, whose words
are known exactly; see bench/speech.py), played at 100 %, 92 % and 108 % tempo. The music
is generated here with numpy (a chord progression of harmonic-rich notes, a bass line,
kick, snare and hi-hat, 110 bpm; it fills the speech band as a song does) and mixed at the
speech's integrated loudness (EBU R128, measured by ffmpeg's ebur128 filter; RMS printed
too). Whisper (the packaged base model, as reelscribe loads it, language forced to English
so only recognition is measured) transcribes the clean speech, the mix and the separated
vocal stem; the separation is timed (its real-time factor, with and without the backend's
start-up).

    python bench/separate.py [--backend spleeter|demucs] [--music-db 0]
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np

import speech
from reelscribe.config import get_settings
from reelscribe.media.ffmpeg import ffmpeg_exe
from reelscribe.models import TimeRange
from reelscribe.pipeline.separate import separate
from reelscribe.pipeline.transcribe import TranscribeOptions, transcribe
from reelscribe.progress import Progress

SR = 44_100
PIECES = [("jfk.flac", "pan=mono|c0=c0", speech.JFK),
          ("multilingual.mp3", "atrim=0:30.3,pan=mono|c0=c0", speech.MIT)]  # fmt: skip
TEMPOS = (1.0, 0.92, 1.08)


def build_speech() -> tuple[np.ndarray, str]:
    """44.1 kHz mono real speech with short pauses, and its reference text."""
    parts, refs = [], []
    pause = np.zeros(int(0.8 * SR), np.float32)
    for tempo in TEMPOS:
        for name, af, ref in PIECES:
            filt = af if tempo == 1.0 else f"{af},atempo={tempo}"
            parts += [decode(speech.MEDIA / name, filt), pause]
            refs.append(ref)
    return np.concatenate(parts), " ".join(refs)


def decode(path: Path, audio_filter: str) -> np.ndarray:
    raw = subprocess.run([ffmpeg_exe(), "-loglevel", "error", "-i", str(path), "-af",
                          audio_filter, "-ac", "1", "-ar", str(SR), "-f", "f32le", "pipe:1"],
                         check=True, capture_output=True).stdout  # fmt: skip
    return np.frombuffer(raw, np.float32)


def music(seconds: float, seed: int = 7) -> np.ndarray:
    """Stereo pop-like music at 110 bpm (the same recipe as tests/integration)."""
    rng = np.random.default_rng(seed)
    n = int(seconds * SR)
    t = np.arange(n) / SR
    out = np.zeros((n, 2))
    chords = [(261.6, 329.6, 392.0), (196.0, 246.9, 293.7),
              (220.0, 261.6, 329.6), (174.6, 220.0, 261.6)]  # C G Am F  # fmt: skip
    for i, start in enumerate(np.arange(0, seconds, 2.0)):
        a, b = int(start * SR), min(n, int((start + 2.0) * SR))
        tt = t[a:b] - start
        env = np.minimum(1, tt / 0.02) * np.exp(-tt * 0.8)
        for j, f in enumerate(chords[i % 4]):
            note = sum(np.sin(2 * np.pi * f * k * tt) / k for k in range(1, 7)) * env
            out[a:b, 0] += note * (0.6 + 0.2 * j)
            out[a:b, 1] += note * (1.0 - 0.2 * j)
        out[a:b] += 0.8 * (np.sin(2 * np.pi * chords[i % 4][0] / 2 * tt) * env)[:, None]
    beat = 60 / 110
    for k, start in enumerate(np.arange(0, seconds, beat / 2)):
        a = int(start * SR)
        length = min(n - a, int(0.2 * SR))
        tt = np.arange(length) / SR
        if k % 4 == 0:
            hit = np.sin(2 * np.pi * (45 + 75 * np.exp(-tt * 30)) * tt) * np.exp(-tt * 18) * 2
        elif k % 4 == 2:
            hit = (rng.normal(size=length) + np.sin(2 * np.pi * 180 * tt)) * np.exp(-tt * 25)
        else:
            hit = np.diff(rng.normal(size=length + 1)) * np.exp(-tt * 80) * 0.4
        out[a : a + length] += hit[:, None]
    return out.astype(np.float32)


def write_wav(samples: np.ndarray, dest: Path) -> Path:
    channels = 1 if samples.ndim == 1 else samples.shape[1]
    subprocess.run([ffmpeg_exe(), "-loglevel", "error", "-y", "-f", "f32le", "-ar", str(SR),
                    "-ac", str(channels), "-i", "pipe:0", "-c:a", "pcm_f32le", str(dest)],
                   input=samples.astype("<f4").tobytes(), check=True)  # fmt: skip
    return dest


def lufs(path: Path) -> float:
    """Integrated loudness (EBU R128) as ffmpeg's ebur128 filter measures it."""
    err = subprocess.run([ffmpeg_exe(), "-hide_banner", "-nostats", "-i", str(path), "-af",
                          "ebur128=framelog=quiet", "-f", "null", "-"],
                         capture_output=True, text=True, check=True).stderr  # fmt: skip
    found = re.findall(r"I:\s+(-?[\d.]+) LUFS", err)
    return float(found[-1])


def rms_db(x: np.ndarray) -> float:
    return 20 * float(np.log10(np.sqrt(np.mean(np.square(x, dtype=np.float64))) + 1e-12))


def to_16k(path: Path) -> np.ndarray:
    raw = subprocess.run([ffmpeg_exe(), "-loglevel", "error", "-i", str(path), "-ac", "1",
                          "-ar", "16000", "-f", "f32le", "pipe:1"],
                         check=True, capture_output=True).stdout  # fmt: skip
    return np.frombuffer(raw, np.float32)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--backend", choices=("spleeter", "demucs"), default=None)
    parser.add_argument(
        "--music-db",
        type=float,
        default=0.0,
        help="music this many dB above the speech (0: equal loudness)",
    )
    args = parser.parse_args()
    settings = get_settings()
    if args.backend:
        settings = settings.model_copy(update={"separation_backend": args.backend})
    from reelscribe.options import JobOptions
    from reelscribe.pipeline.plan import separate_options

    options = separate_options(JobOptions(separate=True), settings, ())
    assert options is not None
    asr = TranscribeOptions.from_settings(settings, None, language="en")

    voice, reference = build_speech()
    backing = music(len(voice) / SR + 0.01)[: len(voice)]  # +0.01: no sample short
    with tempfile.TemporaryDirectory(prefix="bench-separate-") as tmp:
        work = Path(tmp)
        speech_lufs = lufs(write_wav(voice, work / "speech.wav"))
        music_lufs = lufs(write_wav(backing, work / "music.wav"))
        # Equal integrated loudness, then as much louder as asked.
        backing *= 10 ** ((speech_lufs - music_lufs + args.music_db) / 20)
        mix = backing + voice[:, None]
        mix /= max(1.0, float(np.abs(mix).max()) / 0.99)
        mix_path = write_wav(mix, work / "mix.wav")
        seconds = len(mix) / SR
        print(f"machine: {platform.machine()} {platform.processor() or ''} "
              f"cores={os.cpu_count()}; backend: {options.backend}")  # fmt: skip
        mixed_lufs = lufs(write_wav(backing, work / "m.wav"))
        print(f"audio: {seconds:.1f} s of real speech under generated music; speech "
              f"{speech_lufs:.1f} LUFS, music {mixed_lufs:.1f} LUFS; RMS speech "
              f"{rms_db(voice):.1f} dBFS, music {rms_db(backing):.1f} dBFS")  # fmt: skip

        loaded: list[float] = []

        def progress(event: Progress) -> None:
            # The first report from inside the backend marks the end of its start-up.
            if not loaded and event.message.startswith("separating"):
                loaded.append(time.monotonic())

        started = time.monotonic()
        result = separate(mix_path, TimeRange(), work / "sep", options, progress)
        total = time.monotonic() - started
        steady = time.monotonic() - loaded[0] if loaded else total

        rows = [("clean speech (no music)", to_16k(write_wav(voice, work / "v.wav"))),
                (f"mix: speech + music, music {args.music_db:+g} dB", to_16k(mix_path)),
                (f"separated vocals ({options.backend})", result.samples)]  # fmt: skip
        print("| input | WER |")
        print("|---|---|")
        for name, samples in rows:
            text = transcribe(samples, asr).text
            print(f"| {name} | {speech.wer(reference, text):.2%} |")
        print(
            f"separation: {total:.1f} s for {seconds:.1f} s, RTF {total / seconds:.3f} "
            f"(with start-up); {steady:.1f} s, RTF {steady / seconds:.3f} once loaded"
        )


if __name__ == "__main__":
    main()
