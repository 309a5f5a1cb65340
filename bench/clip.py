"""Benchmark: cutting 60 s out of a 10-minute 720p30 H.264/AAC file.

Compares reelscribe's ``fast`` (stream copy) and ``exact`` (smart cut) clips with the
obvious baseline, a plain libx264 re-encode of the same 60 s at the same preset and
CRF, all measured in the same run on the same machine, and checks exact's frame
accuracy against the source pixels (not against what the clip stage reports).

    python bench/clip.py [--runs 3] [--dir /tmp/reelscribe-bench]

The source (testsrc2 + sine, 2 s GOP with B-frames) is generated once and cached.
Targets: fast ≥ 20× and exact ≥ 3× faster than the full re-encode.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import av
import numpy as np

from reelscribe.media.ffmpeg import ffmpeg_exe
from reelscribe.models import ClipMode, TimeRange
from reelscribe.pipeline.clip import ClipOptions, ClipResult, clip
from reelscribe.pipeline.probe import probe

DURATION = 600
FPS = 30
GOP = 2 * FPS
START = 241.37  # mid-GOP: keyframes are at even seconds
LENGTH = 60.0
PRESET, CRF = "veryfast", 20


def make_source(path: Path) -> Path:
    if path.exists():
        return path
    print(f"generating {path} (10 min 720p30, once)…", flush=True)
    part = path.with_suffix(".partial.mp4")
    subprocess.run(
        [ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-y",
         "-f", "lavfi", "-i", f"testsrc2=size=1280x720:rate={FPS}:duration={DURATION}",
         "-f", "lavfi", "-i", f"sine=frequency=440:sample_rate=48000:duration={DURATION}",
         "-c:v", "libx264", "-preset", "ultrafast", "-bf", "2", "-pix_fmt", "yuv420p",
         "-g", str(GOP), "-keyint_min", str(GOP), "-sc_threshold", "0",
         "-c:a", "aac", "-b:a", "128k", "-movflags", "+faststart", str(part)],
        check=True,
    )  # fmt: skip
    part.rename(path)
    return path


def baseline(src: Path, dest: Path) -> None:
    """What one would type: seek, re-encode 60 s with the same preset and CRF."""
    subprocess.run(
        [ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-y",
         "-ss", str(START), "-i", str(src), "-t", str(LENGTH),
         "-c:v", "libx264", "-preset", PRESET, "-crf", str(CRF),
         "-c:a", "aac", "-b:a", "128k", "-movflags", "+faststart", str(dest)],
        check=True,
    )  # fmt: skip


def timed(fn: Callable[[], object], runs: int) -> float:
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def gray_frames(path: Path, start: float, count: int) -> list[tuple[float, np.ndarray]]:
    """``count`` decoded frames (time on the file's timeline, grey pixels) from ``start``."""
    out: list[tuple[float, np.ndarray]] = []
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        if start > 0:
            assert stream.time_base is not None
            container.seek(int(max(0.0, start - 3) / stream.time_base), stream=stream)
        for frame in container.decode(stream):
            t = float(frame.time or 0.0)
            if t >= start - 1e-6:
                out.append((t, frame.to_ndarray(format="gray").astype(np.int16)))
                if len(out) == count:
                    break
    return out


def source_time_of(image: np.ndarray, candidates: list[tuple[float, np.ndarray]]) -> float:
    diffs = [float(np.abs(image - pixels).mean()) for _, pixels in candidates]
    return candidates[int(np.argmin(diffs))][0]


def accuracy(src: Path, result: ClipResult) -> dict[str, float]:
    """Frame errors of an exact clip, found by matching its pixels to the source."""
    near_start = gray_frames(src, START - 0.2, 14)
    near_end = gray_frames(src, START + LENGTH - 0.2, 14)
    with av.open(str(result.path)) as container:
        frames = [(float(f.time or 0.0), f) for f in container.decode(video=0)]
    first_t, first = frames[0]
    last_t, last = frames[-1]
    first_src = source_time_of(first.to_ndarray(format="gray").astype(np.int16), near_start)
    last_src = source_time_of(last.to_ndarray(format="gray").astype(np.int16), near_end)
    # The wanted frames: the first shown at or after START, the last shown before the end.
    want_first = min(t for t, _ in near_start if t >= START - 1e-6)
    want_last = max(t for t, _ in near_end if t < START + LENGTH - 1e-6)
    return {
        "first_frame_error": (first_src - want_first) * FPS,
        "first_pts": first_t,
        "last_frame_error": (last_src - want_last) * FPS,
        "duration_error": (result.duration - LENGTH) * FPS,
        "frames": len(frames),
        "frames_expected": round((want_last - want_first) * FPS) + 1,
        "last_pts": last_t,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument(
        "--dir", type=Path, default=Path(tempfile.gettempdir()) / "reelscribe-bench"
    )
    args = parser.parse_args()
    args.dir.mkdir(parents=True, exist_ok=True)
    src = make_source(args.dir / "source_720p30_10min.mp4")
    out = args.dir / "out"
    out.mkdir(exist_ok=True)
    span = TimeRange(START, START + LENGTH)
    options = {mode: ClipOptions(mode=mode, preset=PRESET, crf=CRF, encoder="libx264")
               for mode in ClipMode}  # fmt: skip

    t_probe = timed(lambda: probe(src, keyframes=True), args.runs)
    info = probe(src, keyframes=True)
    results: dict[str, ClipResult] = {}

    def run(mode: ClipMode) -> None:
        results[mode] = clip(src, out / f"{mode}.mp4", span, options[mode], info=info)

    t_fast = timed(lambda: run(ClipMode.FAST), args.runs)
    t_exact = timed(lambda: run(ClipMode.EXACT), args.runs)
    t_base = timed(lambda: baseline(src, out / "baseline.mp4"), args.runs)
    acc = accuracy(src, results[ClipMode.EXACT])
    fast, exact = results[ClipMode.FAST], results[ClipMode.EXACT]

    print(f"\nsource: 10 min 1280x720 {FPS} fps H.264 (2 s GOP, B-frames) + AAC; "
          f"cut {START}–{START + LENGTH} s; median of {args.runs} runs; preset {PRESET}, "
          f"crf {CRF}\n")  # fmt: skip
    print("| method | time (s) | speed-up vs re-encode | target | clip start (s) | duration (s) |")
    print("|---|---|---|---|---|---|")
    print(f"| full re-encode (ffmpeg libx264) | {t_base:.2f} | 1.0× | | {START} | "
          f"{probe(out / 'baseline.mp4').duration:.3f} |")  # fmt: skip
    print(f"| fast ({fast.method}) | {t_fast:.2f} | {t_base / t_fast:.1f}× | ≥ 20× | "
          f"{fast.start:.3f} | {fast.duration:.3f} |")  # fmt: skip
    print(f"| fast incl. keyframe probe ({t_probe:.2f} s) | {t_fast + t_probe:.2f} | "
          f"{t_base / (t_fast + t_probe):.1f}× | | | |")  # fmt: skip
    print(f"| exact ({exact.method}) | {t_exact:.2f} | {t_base / t_exact:.1f}× | ≥ 3× | "
          f"{exact.start:.3f} | {exact.duration:.3f} |")  # fmt: skip
    print("\n| exact frame accuracy (from pixels) | value |")
    print("|---|---|")
    print(f"| first frame vs wanted (frames) | {acc['first_frame_error']:+.2f} |")
    print(f"| first frame timestamp in clip (s) | {acc['first_pts']:.4f} |")
    print(f"| last frame vs wanted (frames) | {acc['last_frame_error']:+.2f} |")
    print(f"| duration error (frames) | {acc['duration_error']:+.2f} |")
    print(f"| frame count / expected | {acc['frames']:.0f} / {acc['frames_expected']:.0f} |")


if __name__ == "__main__":
    main()
