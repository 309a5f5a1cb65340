"""The real `reelscribe` command in a subprocess: outputs on disk, exit codes, messages."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import av
import pysrt
import pytest

from tests.conftest import ffmpeg_exe, normalise_words

CLI = str(Path(sys.executable).with_name("reelscribe"))


@pytest.fixture(scope="module")
def cli_env(models_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    env = dict(os.environ)
    env["REELSCRIBE_MODELS_DIR"] = str(models_dir)
    env["REELSCRIBE_CACHE_DIR"] = str(tmp_path_factory.mktemp("dlcache"))
    env.pop("REELSCRIBE_ALLOWED_NETWORKS", None)
    return env


def reelscribe(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [CLI, *args], env=env, capture_output=True, text=True, timeout=300, check=False
    )


@pytest.fixture(scope="module")
def jfk_video(shared_media: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """JFK's speech over a test pattern: 11 s, 320x240, H.264 + AAC."""
    dest = tmp_path_factory.mktemp("cli") / "jfk video.mp4"
    subprocess.run(
        [
            ffmpeg_exe(),
            "-hide_banner",
            "-loglevel",
            "error",
            "-f",
            "lavfi",
            "-i",
            "testsrc2=size=320x240:rate=25:duration=11",
            "-i",
            str(shared_media / "jfk.flac"),
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-g",
            "50",
            "-pix_fmt",
            "yuv420p",
            "-c:a",
            "aac",
            "-shortest",
            str(dest),
        ],
        check=True,
    )
    return dest


def test_transcribe_all_formats(
    cli_env: dict[str, str], shared_media: Path, tmp_path: Path
) -> None:
    proc = reelscribe(
        cli_env,
        "transcribe",
        str(shared_media / "jfk.flac"),
        "--format",
        "srt,vtt,txt,json,md,ass",
        "--out",
        str(tmp_path),
        "--json",
    )
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout)
    assert set(summary["outputs"]) == {"srt", "vtt", "txt", "json", "md", "ass"}
    for path in summary["outputs"].values():
        assert Path(path).is_file()
        assert Path(path).parent == tmp_path
    subs = pysrt.open(summary["outputs"]["srt"])
    assert "fellow americans" in " ".join(s.text for s in subs).lower()
    doc = json.loads(Path(summary["outputs"]["json"]).read_text())
    assert doc["schema"] == "reelscribe.transcript"
    assert doc["version"] == 3
    assert normalise_words(doc["text"])[:4] == ["and", "so", "my", "fellow"]
    assert summary["transcript"]["language"] == "en"


def test_progress_goes_to_stderr(
    cli_env: dict[str, str], shared_media: Path, tmp_path: Path
) -> None:
    proc = reelscribe(cli_env, "transcribe", str(shared_media / "jfk.flac"), "--out", str(tmp_path))
    assert proc.returncode == 0, proc.stderr
    assert "transcribe" in proc.stderr
    assert "100.0%" in proc.stderr
    # stdout carries only results: "<kind>\t<path>" lines
    assert [line.split("\t")[0] for line in proc.stdout.splitlines()] == ["srt"]


def test_transcribe_range_with_clip_and_burn(
    cli_env: dict[str, str], jfk_video: Path, tmp_path: Path
) -> None:
    proc = reelscribe(
        cli_env,
        "transcribe",
        str(jfk_video),
        "--start",
        "00:00:03.5",
        "--end",
        "9",
        "--clip",
        "--burn-in",
        "--clip-mode",
        "exact",
        "--format",
        "srt",
        "--out",
        str(tmp_path),
        "--json",
        "--quiet",
    )
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout)
    assert set(summary["outputs"]) == {"clip", "burned_clip", "srt"}
    assert summary["start"] == pytest.approx(3.5, abs=0.05)
    for key in ("clip", "burned_clip"):
        with av.open(summary["outputs"][key]) as container:
            assert container.duration / 1e6 == pytest.approx(5.5, abs=0.1)
    subs = pysrt.open(summary["outputs"]["srt"])
    # times are relative to the clip: the first cue starts near 0, none past its end
    assert subs[0].start.ordinal < 1500
    assert subs[-1].end.ordinal <= 5600
    text = " ".join(s.text for s in subs).lower()
    assert "fellow" not in text  # said before 3.5 s
    assert "country" in text


def test_clip_command_sidecar(cli_env: dict[str, str], jfk_video: Path, tmp_path: Path) -> None:
    proc = reelscribe(
        cli_env,
        "clip",
        str(jfk_video),
        "--start",
        "3.3",
        "--end",
        "7",
        "--subtitles",
        "sidecar",
        "--out",
        str(tmp_path),
        "--json",
        "--quiet",
    )
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout)
    assert set(summary["outputs"]) == {"clip", "srt", "vtt"}
    # fast mode: the clip starts at the keyframe at or before 3.3 s (GOP 2 s -> 2.0)
    assert summary["clip"]["method"] == "copy"
    assert summary["start"] == pytest.approx(2.0, abs=0.05)


def test_probe_json(cli_env: dict[str, str], jfk_video: Path) -> None:
    proc = reelscribe(cli_env, "probe", str(jfk_video), "--json", "--keyframes")
    assert proc.returncode == 0, proc.stderr
    info = json.loads(proc.stdout)
    assert info["duration"] == pytest.approx(11.0, abs=0.1)
    assert [s["kind"] for s in info["streams"]] == ["video", "audio"]
    assert info["keyframes"][:3] == pytest.approx([0.0, 2.0, 4.0], abs=0.01)


def test_models_lists_packaged_base(cli_env: dict[str, str]) -> None:
    proc = reelscribe(cli_env, "models", "--json")
    assert proc.returncode == 0, proc.stderr
    rows = json.loads(proc.stdout)
    base = next(r for r in rows if r["name"] == "base" and r["source"] == "packaged")
    assert base["verified"] is True


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["transcribe", "/no/such/file.mp4"], "no such file"),
        (["transcribe", "{jfk}", "--start", "10", "--end", "5"], "must be after start"),
        (["transcribe", "{jfk}", "--format", "srt,docx"], "docx"),
        (["transcribe", "{jfk}", "--start", "99"], "beyond the end"),
        (["transcribe", "http://127.0.0.1:9/x.mp4"], "loopback"),
        (["transcribe", "http://169.254.169.254/latest/meta-data/"], "169.254.169.254"),
        (["transcribe", "ftp://example.com/a.mp3"], "ftp"),
        (["transcribe", "{garbage}"], "garbage.mp4"),
        (["transcribe", "{jfk}", "--model", "gigantic-v9"], "unknown model"),
        (["clip", "{jfk}", "--start", "1"], "--end"),
    ],
)
def test_bad_input_one_line(
    cli_env: dict[str, str], shared_media: Path, tmp_path: Path, args: list[str], fragment: str
) -> None:
    garbage = tmp_path / "garbage.mp4"
    garbage.write_bytes(b"this is not a video" * 100)
    args = [a.format(jfk=shared_media / "jfk.flac", garbage=garbage) for a in args]
    proc = reelscribe(cli_env, *args, "--out", str(tmp_path / "out"))
    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    assert fragment.lower() in lines[0].lower()
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())
