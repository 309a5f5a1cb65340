"""ASR benchmark: reelscribe's default transcription vs raw faster-whisper.

Same model weights (the packaged base) and the same audio (>= 2 minutes of real speech,
see bench/speech.py), measured in one run. Two baselines:

* ``raw defaults``: ``WhisperModel(path).transcribe(audio)`` with every faster-whisper
  default, as a user of the library would start (compute type "default", which is
  float32 on a CPU for this model; beam 5; no VAD);
* ``raw int8``: the same call on the model loaded exactly as reelscribe loads it (int8),
  isolating what the decoding strategy alone gains.

    python bench/asr.py [--repeat N]
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from collections.abc import Callable

from faster_whisper import WhisperModel

import speech
from reelscribe.asr.faster_whisper import EngineOptions, load_model
from reelscribe.config import get_settings
from reelscribe.pipeline.transcribe import TranscribeOptions, transcribe


def best_of(repeat: int, run: Callable[[], str]) -> tuple[float, str]:
    times, text = [], ""
    for _ in range(repeat):
        t0 = time.perf_counter()
        text = run()
        times.append(time.perf_counter() - t0)
    return min(times), text


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=2)
    args = parser.parse_args()

    audio, reference = speech.build()
    seconds = len(audio) / speech.SR
    settings = get_settings()
    engine = EngineOptions(model="base", models_dir=settings.models_dir)
    ours_model = load_model(engine)
    raw_default = WhisperModel(ours_model.info.path)  # faster-whisper's defaults throughout

    def raw(model: WhisperModel) -> Callable[[], str]:
        return lambda: " ".join(s.text for s in model.transcribe(audio)[0])

    def ours() -> str:
        options = TranscribeOptions(engine=engine, batch_size=settings.batch_size)
        return transcribe(audio, options, model=ours_model).text

    rows = [
        (f"raw faster-whisper, all defaults ({raw_default.model.compute_type}, beam 5)",
         *best_of(args.repeat, raw(raw_default))),
        (f"raw faster-whisper, {ours_model.info.compute_type} (as reelscribe loads it), beam 5",
         *best_of(args.repeat, raw(ours_model.whisper))),
        ("reelscribe default (batched + VAD, greedy, word timestamps)",
         *best_of(args.repeat, ours)),
    ]  # fmt: skip
    print(f"machine: {platform.machine()} {platform.processor() or ''} cores={os.cpu_count()}")
    print(f"audio: {seconds:.1f} s of real speech; best of {args.repeat}")
    print("| run | time (s) | RTF | WER |")
    print("|---|---|---|---|")
    wers = []
    for name, elapsed, text in rows:
        wer = speech.wer(reference, text)
        wers.append(wer)
        print(f"| {name} | {elapsed:.2f} | {elapsed / seconds:.3f} | {wer:.2%} |")
    ours_t = rows[2][1]
    for (name, elapsed, _), wer in zip(rows[:2], wers[:2], strict=True):
        print(f"vs {name}: {elapsed / ours_t:.2f}x faster, "
              f"WER {100 * (wers[2] - wer):+.2f} points  (target: >= 2x, <= +1 point)")  # fmt: skip


if __name__ == "__main__":
    main()
