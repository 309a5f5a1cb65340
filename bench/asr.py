"""ASR benchmark: reelscribe's default transcription vs raw faster-whisper.

Same model (the packaged base, int8 on CPU), same audio (>= 2 minutes of real speech,
see bench/speech.py), measured in the same run. The baseline is
``WhisperModel.transcribe(audio)`` with faster-whisper's defaults, segments consumed.

    python bench/asr.py [--repeat N]
"""

from __future__ import annotations

import argparse
import os
import platform
import time

import speech
from reelscribe.asr.engine import EngineOptions, load_model
from reelscribe.config import get_settings
from reelscribe.pipeline.transcribe import TranscribeOptions, transcribe


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=1)
    args = parser.parse_args()

    audio, reference = speech.build()
    seconds = len(audio) / speech.SR
    settings = get_settings()
    engine = EngineOptions(
        model="base", cpu_threads=settings.cpu_threads, models_dir=settings.models_dir
    )
    loaded = load_model(engine)
    whisper = loaded.whisper

    raw_times, ours_times = [], []
    raw_text = ours_text = ""
    for _ in range(args.repeat):
        t0 = time.perf_counter()
        segments, _info = whisper.transcribe(audio)
        raw_text = " ".join(s.text for s in segments)
        raw_times.append(time.perf_counter() - t0)

        t0 = time.perf_counter()
        transcript = transcribe(
            audio, TranscribeOptions(engine=engine, batch_size=settings.batch_size), model=loaded
        )
        ours_text = transcript.text
        ours_times.append(time.perf_counter() - t0)

    raw_t, ours_t = min(raw_times), min(ours_times)
    raw_wer, ours_wer = speech.wer(reference, raw_text), speech.wer(reference, ours_text)
    print(f"machine: {platform.machine()} {platform.processor() or ''} cores={os.cpu_count()}")
    print(
        f"audio: {seconds:.1f} s of real speech; model {loaded.info.name} "
        f"{loaded.info.compute_type} on {loaded.info.device}; best of {args.repeat}"
    )
    print("| run | time (s) | RTF | WER |")
    print("|---|---|---|---|")
    print(
        f"| raw faster-whisper (defaults) | {raw_t:.2f} | {raw_t / seconds:.3f} | {raw_wer:.3%} |"
    )
    print(
        f"| reelscribe default ({transcript.extra.get('mode')}, word timestamps) "
        f"| {ours_t:.2f} | {ours_t / seconds:.3f} | {ours_wer:.3%} |"
    )
    print(
        f"speed ratio: {raw_t / ours_t:.2f}x (target >= 2x); "
        f"WER difference: {100 * (ours_wer - raw_wer):+.2f} points (target <= +1)"
    )


if __name__ == "__main__":
    main()
