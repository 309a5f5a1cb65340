"""Diarization benchmark: DER, speaker count and speed of the offline backend.

Inputs (from ../shared/media, or REELSCRIBE_TEST_MEDIA):

* ``ami_dev00`` / ``ami_dev01``: 30 s of real meetings with overlap; reference RTTM,
  scored inside the UEM;
* ``two speakers``: ``stereo_diarization.wav``'s left channel, 1 s of silence, then its
  right channel, as mono; the reference spans each channel's speech (first to last
  10 ms frame within 35 dB of the loudest);
* ``mix (speed)``: all of the above and ``jfk.flac`` back to back (~2.5 minutes),
  timed only, so the fixed costs of a short clip don't dominate the real-time factor.

DER is pyannote.metrics' (overlap scored, no collar), and again with a ±0.25 s collar
(pyannote's ``collar`` is the total width: 0.5). The speaker count is never given.
RTF = diarization wall time / audio duration, models loaded and warmed up first; the
best of ``--repeat`` runs (the machine is shared), with the range. CPU seconds per
audio second (all threads) barely depend on what else runs: on an otherwise idle
machine RTF approaches it divided by the cores used.

    python bench/diarize.py [--repeat N] [--threads N]
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from pyannote.core import Annotation, Segment, Timeline
from pyannote.metrics.diarization import DiarizationErrorRate

from reelscribe.pipeline.audio import load_audio
from reelscribe.speakers import Diarization, DiarizeOptions, load_diarizer
from reelscribe.speakers.weights import usable_cpus

MEDIA = Path(
    os.environ.get(
        "REELSCRIBE_TEST_MEDIA", Path(__file__).resolve().parents[2] / "shared" / "media"
    )
)
SR = 16_000
TARGETS = {"ami": 0.35, "two speakers": 0.10, "rtf": 0.1}


@dataclass
class Case:
    name: str
    samples: np.ndarray
    reference: Annotation | None
    uem: Timeline


def annotation(turns: list[tuple[float, float, str]]) -> Annotation:
    ann = Annotation()
    for i, (start, end, who) in enumerate(turns):
        ann[Segment(start, end), i] = who
    return ann


def speech_bounds(samples: np.ndarray, offset: float) -> tuple[float, float]:
    frames = samples[: len(samples) // 160 * 160].reshape(-1, 160)
    energy = (frames**2).mean(axis=1)
    loud = np.flatnonzero(energy > energy.max() * 10 ** (-35 / 10))
    return offset + loud[0] * 0.01, offset + (loud[-1] + 1) * 0.01


def cases() -> list[Case]:
    rttm: dict[str, list[tuple[float, float, str]]] = {}
    for line in (MEDIA / "ami_dev.rttm").read_text().splitlines():
        f = line.split()
        rttm.setdefault(f[1], []).append((float(f[3]), float(f[3]) + float(f[4]), f[7]))
    uem: dict[str, Timeline] = {}
    for line in (MEDIA / "ami_dev.uem").read_text().splitlines():
        name, _, start, end = line.split()
        uem[name] = Timeline([Segment(float(start), float(end))])
    out = [
        Case(name, load_audio(MEDIA / f"ami_{name}.wav"), annotation(rttm[name]), uem[name])
        for name in ("dev00", "dev01")
    ]
    left = load_audio(MEDIA / "stereo_diarization.wav", channel=0)
    right = load_audio(MEDIA / "stereo_diarization.wav", channel=1)
    two = np.concatenate([left, np.zeros(SR, np.float32), right])
    offset = len(left) / SR + 1.0
    reference = annotation(
        [(*speech_bounds(left, 0.0), "left"), (*speech_bounds(right, offset), "right")]
    )
    out.append(Case("two speakers", two, reference, Timeline([Segment(0, len(two) / SR)])))
    gap = np.zeros(SR, np.float32)
    parts = [c.samples for c in out] + [load_audio(MEDIA / "jfk.flac")]
    long = np.concatenate([x for part in parts + parts for x in (part, gap)])
    out.append(Case("mix (speed)", long, None, Timeline([Segment(0, len(long) / SR)])))
    return out


def score(case: Case, result: Diarization, collar: float) -> dict[str, float]:
    assert case.reference is not None
    hypothesis = annotation([(t.start, t.end, t.speaker) for t in result.turns])
    metric = DiarizationErrorRate(collar=collar, skip_overlap=False)
    detail = metric(case.reference, hypothesis, uem=case.uem, detailed=True)
    total = detail["total"]
    return {
        "der": detail["diarization error rate"],
        "miss": detail["missed detection"] / total,
        "fa": detail["false alarm"] / total,
        "conf": detail["confusion"] / total,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--threads", type=int, default=0, help="CPU cores; 0: all")
    args = parser.parse_args()

    options = DiarizeOptions(cpu_threads=args.threads)
    t0 = time.perf_counter()
    diarizer = load_diarizer(options)
    load_time = time.perf_counter() - t0
    all_cases = cases()
    diarizer.diarize(all_cases[2].samples, options)  # warm-up: first-call costs

    workers = usable_cpus(args.threads)
    device = "GPU" if torch.cuda.is_available() else "no GPU"
    machine = f"{platform.machine()} {platform.processor() or ''}".strip()
    print(f"machine: {machine}, {os.cpu_count()} cores ({device}); {workers} parallel batches; "
          f"models loaded in {load_time:.1f} s")  # fmt: skip
    print(f"best of {args.repeat} runs; load average {os.getloadavg()[0]:.1f} at the start")
    print("| input | audio (s) | speakers ref/found | DER | DER ±0.25 s | miss / FA / conf "
          "| time (s) | RTF (best, range) | CPU s per audio s |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|---|")
    ami: list[float] = []
    total_audio = total_time = 0.0
    for case in all_cases:
        times, cpu, result = [], [], None
        for _ in range(args.repeat):
            start, start_cpu = time.perf_counter(), time.process_time()
            result = diarizer.diarize(case.samples, options)
            times.append(time.perf_counter() - start)
            cpu.append(time.process_time() - start_cpu)
        assert result is not None
        seconds = len(case.samples) / SR
        best, worst = min(times) / seconds, max(times) / seconds
        rtf = f"{best:.3f} ({best:.3f}-{worst:.3f}) | {min(cpu) / seconds:.3f}"
        total_audio += seconds
        total_time += min(times)
        found = len(result.speakers)
        if case.reference is None:
            print(f"| {case.name} | {seconds:.1f} | -/{found} | | | | {min(times):.2f} | {rtf} |")
            continue
        plain, collared = score(case, result, 0.0), score(case, result, 0.5)
        if case.name.startswith("dev"):
            ami.append(plain["der"])
        print(f"| {case.name} | {seconds:.1f} | {len(case.reference.labels())}/{found} "
              f"| {plain['der']:.3f} | {collared['der']:.3f} "
              f"| {plain['miss']:.3f} / {plain['fa']:.3f} / {plain['conf']:.3f} "
              f"| {min(times):.2f} | {rtf} |")  # fmt: skip
    mean_ami = float(np.mean(ami))
    two = next(c for c in all_cases if c.name == "two speakers")
    two_der = score(two, diarizer.diarize(two.samples, options), 0.0)["der"]
    rtf_all = total_time / total_audio
    print(f"mean AMI DER {mean_ami:.3f} (target <= {TARGETS['ami']}); two speakers "
          f"{two_der:.3f} (<= {TARGETS['two speakers']}); overall RTF {rtf_all:.3f} "
          f"(<= {TARGETS['rtf']})")  # fmt: skip


if __name__ == "__main__":
    main()
