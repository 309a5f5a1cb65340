"""Analysis benchmark: the offline summary, keywords and chapters of a 30-minute transcript.

The transcript is real: the English MIT licence reading, JFK's speech and two AMI meeting
excerpts are transcribed once with the packaged Whisper base model, then their sentences
are laid end to end (shifted in time) until they fill 30 minutes of speech at the pace
they were spoken (~4,500 words, as a 30-minute talk has). Every sentence is embedded, so
the repeats cost what new sentences would. Printed: the model load (once per process),
then the analysis itself (sentences, embeddings, LexRank + MMR, YAKE, chapters).

    python bench/analyze.py [--minutes 30] [--repeat 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from reelscribe.analysis.options import ChapterOptions, SummaryOptions
from reelscribe.analysis.sentences import sentences
from reelscribe.asr.faster_whisper import EngineOptions, load_model
from reelscribe.models import Transcript
from reelscribe.pipeline.analyze import analyze
from reelscribe.pipeline.audio import load_audio
from reelscribe.pipeline.transcribe import TranscribeOptions, transcribe

MEDIA = Path(os.environ.get("REELSCRIBE_TEST_MEDIA",
                            Path(__file__).resolve().parents[2] / "shared" / "media"))  # fmt: skip
SR = 16_000


def real_transcript() -> Transcript:
    parts = [
        load_audio(MEDIA / "multilingual.mp3")[: 30 * SR],
        load_audio(MEDIA / "jfk.flac"),
        load_audio(MEDIA / "ami_dev00.wav"),
        load_audio(MEDIA / "ami_dev01.wav"),
    ]
    levelled = [p * (0.05 / float(np.sqrt(np.mean(p**2)))) for p in parts]
    gap = np.zeros(SR // 2, dtype=np.float32)
    audio = np.concatenate([x for p in levelled for x in (p, gap)]).astype(np.float32)
    engine = EngineOptions(model="base")
    return transcribe(audio, TranscribeOptions(engine=engine, language="en"),
                      model=load_model(engine))  # fmt: skip


def stretch(t: Transcript, minutes: float) -> Transcript:
    """``t``'s segments repeated, shifted in time, to ``minutes`` of transcript."""
    segments = []
    offset = 0.0
    while offset < minutes * 60:
        for s in t.segments:
            if offset + s.end > minutes * 60:
                break
            words = tuple(replace(w, start=w.start + offset, end=w.end + offset) for w in s.words)
            segments.append(replace(s, id=len(segments), start=s.start + offset,
                                    end=s.end + offset, words=words))  # fmt: skip
        offset += t.duration
    return replace(t, segments=tuple(segments), duration=minutes * 60)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=30.0)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    started = time.perf_counter()
    source = real_transcript()
    print(f"transcribed {source.duration:.0f} s of real speech in "
          f"{time.perf_counter() - started:.1f} s")  # fmt: skip
    long = stretch(source, args.minutes)
    words = sum(len(s.text.split()) for s in long.segments)
    print(f"{args.minutes:g}-minute transcript: {len(long.segments)} segments, "
          f"{len(sentences(long))} sentences, {words} words")  # fmt: skip

    from reelscribe.analysis.embeddings import model

    started = time.perf_counter()
    model()
    print(f"embedding model load (once per process): {time.perf_counter() - started:.2f} s")
    summary = SummaryOptions(sentences=10, keywords=10)
    times = []
    for _ in range(args.repeat):
        started = time.perf_counter()
        out = analyze(long, summary, ChapterOptions())
        times.append(time.perf_counter() - started)
    assert out.analysis is not None
    print(f"analysis (summary + keywords + chapters), {os.cpu_count()} cores: "
          f"median {statistics.median(times):.2f} s, runs "
          + ", ".join(f"{t:.2f}" for t in times))  # fmt: skip
    print(f"  {len(out.analysis.summary)} summary sentences, {len(out.analysis.keywords)} "
          f"keywords, {len(out.analysis.chapters)} chapters")  # fmt: skip
    print("target: <= 10 s for a 30-minute transcript on 2 cores")


if __name__ == "__main__":
    main()
