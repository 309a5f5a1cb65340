"""The analysis through the real `reelscribe` command: a video of three joined
recordings transcribed with --summary --keywords --chapters and a clip (JSON, Markdown,
chapter lines, MP4 chapters read back by PyAV), re-analysed by `reelscribe analyze`
without ASR, and a video blocked by --moderate block."""

from __future__ import annotations

import json
import os
import re
import subprocess
import wave
from pathlib import Path

import av
import numpy as np
import pytest

from reelscribe.formats.json_doc import parse
from reelscribe.formats.tokens import normalize
from tests.acceptance.test_cli import reelscribe
from tests.conftest import decode_channel, ffmpeg_exe
from tests.integration.analysis.test_moderation import photo_video

RATE = 16000


@pytest.fixture(scope="module")
def cli_env(models_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    env = dict(os.environ)
    env["REELSCRIBE_MODELS_DIR"] = str(models_dir)
    env["REELSCRIBE_CACHE_DIR"] = str(tmp_path_factory.mktemp("dlcache"))
    for name in ("REELSCRIBE_MODERATION_UNSAFE_LABELS", "REELSCRIBE_MODERATION_POLICY",
                 "REELSCRIBE_LLM_URL", "REELSCRIBE_LLM_MODEL"):  # fmt: skip
        env.pop(name, None)
    return env


@pytest.fixture(scope="module")
def topics_video(
    shared_media: Path, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, list[float]]:
    """The licence, JFK and a meeting, levelled and joined, over a test pattern."""
    parts = [
        decode_channel(shared_media / "multilingual.mp3")[: 30 * RATE],
        decode_channel(shared_media / "jfk.flac"),
        decode_channel(shared_media / "ami_dev01.wav"),
    ]
    levelled = [p * (0.05 / float(np.sqrt(np.mean(p**2)))) for p in parts]
    gap = np.zeros(RATE // 2, dtype=np.float32)
    audio = np.concatenate([levelled[0], gap, levelled[1], gap, levelled[2]])
    folder = tmp_path_factory.mktemp("topics")
    wav = folder / "topics.wav"
    with wave.open(str(wav), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(RATE)
        out.writeframes((np.clip(audio, -1, 1) * 32767).astype("<i2").tobytes())
    dest = folder / "topics.mp4"
    seconds = len(audio) / RATE
    subprocess.run([
        ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-y",
        "-f", "lavfi", "-i", f"testsrc2=size=320x240:rate=25:duration={seconds}",
        "-i", str(wav), "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p",
        "-c:a", "aac", "-shortest", str(dest),
    ], check=True)  # fmt: skip
    first = 30.5
    return dest, [first, first + len(parts[1]) / RATE + 0.5]


def test_transcribe_with_summary_keywords_chapters_and_a_clip(
    cli_env: dict[str, str],
    topics_video: tuple[Path, list[float]],
    tmp_path: Path,
) -> None:
    video, joins = topics_video
    done = reelscribe(cli_env, "transcribe", str(video), "--summary-sentences", "3",
                      "--keywords", "--chapters", "--clip", "--language", "en",
                      "-f", "json,md,chapters", "-o", str(tmp_path), "--json", "-q")  # fmt: skip
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert set(result["outputs"]) == {"json", "md", "chapters", "clip"}
    # The run's summary now holds what the recording is about, not only timings.
    assert len(result["analysis"]["summary"]) == 3
    assert result["analysis"]["keywords"]
    transcript = parse(Path(result["outputs"]["json"]).read_bytes())
    analysis = transcript.analysis
    assert analysis is not None
    whole = normalize(transcript.text).lower()
    assert all(normalize(s.text).lower() in whole for s in analysis.summary)
    starts = [c.start for c in analysis.chapters]
    assert len(starts) == 3
    assert all(abs(a - b) <= 3.0 for a, b in zip(starts[1:], joins, strict=True)), starts
    lines = Path(result["outputs"]["chapters"]).read_text(encoding="utf-8").splitlines()
    assert [line.split(" ", 1)[1] for line in lines] == [c.title for c in analysis.chapters]
    assert all(re.match(r"^\d\d:\d\d ", line) for line in lines)
    md = Path(result["outputs"]["md"]).read_text(encoding="utf-8")
    assert md.index("## Summary") < md.index("## Chapters") < md.index("## Transcript")
    # The clip carries the chapters as MP4 metadata.
    with av.open(result["outputs"]["clip"]) as container:
        chapters = container.chapters()
    assert [c["metadata"].get("title") for c in chapters] == [c.title for c in analysis.chapters]
    assert [round(float(c["start"] * c["time_base"]), 1) for c in chapters] == [
        round(c.start, 1) for c in analysis.chapters
    ]

    # `reelscribe analyze` re-runs the analysis on the stored JSON, without ASR.
    stored = Path(result["outputs"]["json"])
    again = reelscribe(cli_env, "analyze", str(stored), "--summary-sentences", "1",
                       "-f", "json", "-q")  # fmt: skip
    assert again.returncode == 0, again.stderr
    redone = parse(stored.read_bytes())
    assert redone.segments == transcript.segments
    assert redone.analysis is not None
    assert len(redone.analysis.summary) == 1
    assert redone.analysis.chapters == ()  # not asked for this time
    assert again.stdout.startswith("json\t")


def test_analyze_refuses_what_is_not_a_transcript(cli_env: dict[str, str], tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text("{}", encoding="utf-8")
    done = reelscribe(cli_env, "analyze", str(bad))
    assert done.returncode == 2
    assert "not a reelscribe transcript" in done.stderr
    missing = reelscribe(cli_env, "analyze", str(tmp_path / "nope.json"))
    assert missing.returncode == 2
    assert "does not exist" in missing.stderr
    no_llm = reelscribe(cli_env, "transcribe", str(bad), "--llm")
    assert no_llm.returncode == 2
    assert "REELSCRIBE_LLM_URL" in no_llm.stderr


def test_moderate_block_stops_the_run_and_keeps_only_the_report(
    cli_env: dict[str, str],
    tmp_path: Path,
) -> None:
    video = photo_video(tmp_path / "astronaut.mp4")
    env = cli_env | {"REELSCRIBE_MODERATION_UNSAFE_LABELS": "FACE_FEMALE"}
    out = tmp_path / "out"
    done = reelscribe(env, "transcribe", str(video), "--moderate", "block", "--clip",
                      "-f", "srt,moderation", "-o", str(out), "-q")  # fmt: skip
    assert done.returncode == 2
    assert "blocked by content moderation" in done.stderr
    written = sorted(p.name for p in out.iterdir())
    assert written == ["astronaut.moderation.json"], written
    report = json.loads((out / "astronaut.moderation.json").read_text(encoding="utf-8"))
    assert report["verdict"] == "blocked"
    assert any(f["unsafe"] for f in report["flags"])
    # The same video with the default labels is only reported.
    flagged = reelscribe(cli_env, "transcribe", str(video), "--moderate", "flag",
                         "-f", "moderation", "-o", str(tmp_path / "ok"), "-q")  # fmt: skip
    assert flagged.returncode == 0, flagged.stderr
    report = json.loads((tmp_path / "ok" / "astronaut.moderation.json").read_text("utf-8"))
    assert report["verdict"] == "safe"
    assert report["flags"]
