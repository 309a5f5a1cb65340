"""ASR benchmark: reelscribe's default transcription vs raw faster-whisper.

Same model weights (the packaged base) and the same audio (>= 2 minutes of real speech,
see bench/speech.py), measured in one run. Three baselines:

* ``raw defaults``: ``WhisperModel(path).transcribe(audio)`` with every faster-whisper
  default, as a user of the library would start (compute type "default", which is
  float32 on a CPU for this model; beam 5; no VAD);
* ``raw int8``: the same call on the model loaded exactly as reelscribe loads it (int8),
  isolating what the decoding strategy alone gains;
* ``batched``: faster-whisper's own ``BatchedInferencePipeline`` on that same int8 model,
  with the decoding reelscribe uses (batch 4, beam 1, VAD, word timestamps, no timestamp
  tokens): whatever reelscribe costs beyond it is overhead of reelscribe's own stages.

The runs are interleaved (one of each, then the next round) so that a burst of load from
other processes does not land on one row only; each row keeps its best wall time. CPU
time (this process, all threads) is printed too: it moves much less than wall time when
other processes share the cores.

    python bench/asr.py [--repeat N]
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from collections.abc import Callable

from faster_whisper import BatchedInferencePipeline, WhisperModel

import speech
from reelscribe.asr.faster_whisper import EngineOptions, load_model
from reelscribe.config import get_settings
from reelscribe.pipeline.transcribe import TranscribeOptions, transcribe


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
    batch_size = 4  # reelscribe's CPU default (TranscribeOptions.batch_size)

    def raw(model: WhisperModel) -> Callable[[], str]:
        return lambda: " ".join(s.text for s in model.transcribe(audio)[0])

    def batched() -> str:
        segments, _ = BatchedInferencePipeline(ours_model.whisper).transcribe(
            audio, batch_size=batch_size, beam_size=1, word_timestamps=True,
            without_timestamps=True,
        )  # fmt: skip
        return " ".join(s.text for s in segments)

    def ours() -> str:
        options = TranscribeOptions(engine=engine, batch_size=settings.batch_size)
        return transcribe(audio, options, model=ours_model).text

    runs: list[tuple[str, Callable[[], str]]] = [
        (f"raw faster-whisper, all defaults ({raw_default.model.compute_type}, beam 5)",
         raw(raw_default)),
        (f"raw faster-whisper, {ours_model.info.compute_type} (as reelscribe loads it), beam 5",
         raw(ours_model.whisper)),
        (f"faster-whisper BatchedInferencePipeline, {ours_model.info.compute_type}, "
         f"batch {batch_size}, beam 1, word timestamps", batched),
        ("reelscribe default (batched + VAD, greedy, word timestamps)", ours),
    ]  # fmt: skip
    walls: list[list[float]] = [[] for _ in runs]
    cpus: list[list[float]] = [[] for _ in runs]
    texts = [""] * len(runs)
    loads = [os.getloadavg()[0]]
    for _ in range(args.repeat):
        for i, (_, run) in enumerate(runs):
            t0, c0 = time.perf_counter(), time.process_time()
            texts[i] = run()
            walls[i].append(time.perf_counter() - t0)
            cpus[i].append(time.process_time() - c0)
            loads.append(os.getloadavg()[0])

    print(f"machine: {platform.machine()} {platform.processor() or ''} cores={os.cpu_count()}")
    print(f"audio: {seconds:.1f} s of real speech; best of {args.repeat}, interleaved; "
          f"1-min load average during the runs {min(loads):.1f}-{max(loads):.1f}")  # fmt: skip
    print("| run | time (s) | RTF | CPU time (s) | WER |")
    print("|---|---|---|---|---|")
    best = [min(w) for w in walls]
    wers = [speech.wer(reference, text) for text in texts]
    for (name, _), wall, cpu, wer in zip(runs, best, cpus, wers, strict=True):
        print(f"| {name} | {wall:.2f} | {wall / seconds:.3f} | {min(cpu):.2f} | {wer:.2%} |")
    ours_t, ours_wer = best[-1], wers[-1]
    targets = (">= 2x", ">= 2x", ">= 1x")
    for (name, _), wall, wer, target in zip(runs, best, wers, targets, strict=False):
        gain = f"{wall / ours_t:.2f}x faster, WER {100 * (ours_wer - wer):+.2f} points"
        print(f"vs {name}: {gain}  (target: {target}, <= +1 point)")


if __name__ == "__main__":
    main()
