"""Moderation benchmark: the cost of checking a minute of video with NudeNet.

The video is 720p30 H.264, alternating every 10 s between a real photograph of a person
(skimage's astronaut, slowly zoomed so frames differ) and ffmpeg's moving test pattern:
a scene change every 10 s, a face half the time. Sampling is the default (every scene
change plus one frame every 2 s). Printed: the detector load (once per process), then
the time per minute of video, split into frame sampling (ffmpeg: keyframes only when they
are dense enough, as here with a 2 s GOP; else every frame) and the detector (batched).

    python bench/moderate.py [--minutes 2] [--interval 2]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from reelscribe.analysis import moderation
from reelscribe.analysis.options import ModerationOptions
from reelscribe.media.ffmpeg import ffmpeg_exe
from reelscribe.models import TimeRange
from reelscribe.pipeline.moderate import moderate


def make_video(dest: Path, minutes: float) -> Path:
    import cv2
    from skimage import data

    still = dest.with_name("astronaut.png")
    cv2.imwrite(str(still), data.astronaut()[:, :, ::-1])
    pieces = int(minutes * 6)  # 10 s each
    graph = []
    for i in range(pieces):
        if i % 2:
            graph.append(f"[0:v]scale=1280:720,zoompan=z='1+0.001*on':d=300:s=1280x720:fps=30,"
                         f"trim=duration=10,setpts=PTS-STARTPTS[p{i}]")  # fmt: skip
        else:
            graph.append(f"testsrc2=size=1280x720:rate=30:duration=10[p{i}]")
    graph.append("".join(f"[p{i}]" for i in range(pieces)) + f"concat=n={pieces}:v=1:a=0[v]")
    subprocess.run([
        ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-y", "-loop", "1", "-i", str(still),
        "-filter_complex", ";".join(graph), "-map", "[v]", "-c:v", "libx264",
        "-preset", "veryfast", "-g", "60", "-pix_fmt", "yuv420p", str(dest),
    ], check=True)  # fmt: skip
    return dest


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=2.0)
    parser.add_argument("--interval", type=float, default=2.0)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        video = make_video(Path(tmp) / "bench.mp4", args.minutes)
        started = time.perf_counter()
        moderation.detector()
        print(f"detector load (once per process): {time.perf_counter() - started:.2f} s")
        options = ModerationOptions(interval=args.interval)
        size = (640, 360)
        sampled = []
        for _ in range(args.repeat):
            started = time.perf_counter()
            frames = moderation.sample_frames(video, size, TimeRange(), options,
                                              args.minutes * 60)  # fmt: skip
            sampled.append(time.perf_counter() - started)
        detected = []
        for _ in range(args.repeat):
            started = time.perf_counter()
            moderation.check_frames(frames, options)
            detected.append(time.perf_counter() - started)
        totals = []
        for _ in range(args.repeat):
            started = time.perf_counter()
            report = moderate(video, None, TimeRange(), options)
            totals.append(time.perf_counter() - started)
    per_minute = statistics.median(totals) / args.minutes
    print(f"{args.minutes:g} min of 720p30 H.264, {os.cpu_count()} cores: {report.frames} "
          f"frames checked, {sum(f.unsafe for f in report.flags)} unsafe, "
          f"{len(report.flags)} with detections")  # fmt: skip
    print(f"  sampling: median {statistics.median(sampled) / args.minutes:.2f} s per minute")
    print(f"  detector: median {statistics.median(detected) / args.minutes:.2f} s per minute "
          f"({1000 * statistics.median(detected) / len(frames):.0f} ms per frame)")  # fmt: skip
    runs = ", ".join(f"{t:.2f}" for t in totals)
    print(f"moderation cost: {per_minute:.2f} s per minute of video "
          f"(runs: {runs} s for {args.minutes:g} min)")  # fmt: skip


if __name__ == "__main__":
    main()
