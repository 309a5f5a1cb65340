"""Speakers through the real `reelscribe` command: per-channel transcripts, diarization
end to end, and every speaker-aware output read back by a real parser (pysrt, webvtt-py,
pyannote's RTTM loader, ffmpeg)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import numpy as np
import pysrt
import pytest
import webvtt

from tests.acceptance.test_cli import cli_env, reelscribe  # noqa: F401 (fixture)
from tests.conftest import decode_channel, ffmpeg_exe, normalise_words

LEFT = "He began a confused complaint against the wizard, who had vanished behind the curtain on the left."  # noqa: E501
RIGHT = "The horizon seems extremely distant."
SAMPLE_RATE = 16_000
PAUSE = 1.0


@pytest.fixture(scope="module")
def two_speakers(shared_media: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The left channel of stereo_diarization.wav, a pause, then the right, as mono."""
    source = shared_media / "stereo_diarization.wav"
    left, right = decode_channel(source, 0), decode_channel(source, 1)
    mono = np.concatenate([left, np.zeros(int(PAUSE * SAMPLE_RATE), np.float32), right])
    dest = tmp_path_factory.mktemp("speakers") / "two speakers.wav"
    subprocess.run(
        [ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-f", "f32le", "-ar", "16000",
         "-ac", "1", "-i", "pipe:0", str(dest)],
        input=mono.astype("<f4").tobytes(), check=True,
    )  # fmt: skip
    return dest


def test_split_channels_give_both_sentences_word_for_word(
    cli_env: dict[str, str],  # noqa: F811
    shared_media: Path,
    tmp_path: Path,
) -> None:
    done = reelscribe(cli_env, "transcribe", str(shared_media / "stereo_diarization.wav"),
                      "--channels", "split", "-f", "json,txt", "-o", str(tmp_path), "--json",
                      "-q")  # fmt: skip
    assert done.returncode == 0, done.stderr
    outputs = json.loads(done.stdout)["outputs"]
    doc = json.loads(Path(outputs["json"]).read_text())
    said: dict[str, list[str]] = {}
    for seg in doc["segments"]:
        said.setdefault(seg["speaker"], []).extend(normalise_words(seg["text"]))
        assert all(w["speaker"] == seg["speaker"] for w in seg["words"])
    assert said == {"SPEAKER_00": normalise_words(LEFT), "SPEAKER_01": normalise_words(RIGHT)}
    assert sorted((s["id"], s["name"]) for s in doc["speakers"]) == [
        ("SPEAKER_00", "Channel 1"), ("SPEAKER_01", "Channel 2")
    ]  # fmt: skip
    assert all(s["talk_time"] > 1.0 for s in doc["speakers"])


def test_mono_source_refuses_split_channels(
    cli_env: dict[str, str],  # noqa: F811
    two_speakers: Path,
    tmp_path: Path,
) -> None:
    done = reelscribe(cli_env, "transcribe", str(two_speakers), "--channels", "split",
                      "-o", str(tmp_path), "-q")  # fmt: skip
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        "reelscribe: error: channels 'split' needs audio with a speaker per channel; "
        "this source is mono"
    ]


def test_diarized_outputs_read_back_by_real_parsers(
    cli_env: dict[str, str],  # noqa: F811
    two_speakers: Path,
    tmp_path: Path,
) -> None:
    from pyannote.database.util import load_rttm

    done = reelscribe(cli_env, "transcribe", str(two_speakers), "--speakers",
                      "-f", "srt,vtt,txt,json,md,rttm", "-o", str(tmp_path), "--json", "-q",
                      "--speaker-names", "SPEAKER_00=Left Person")  # fmt: skip
    assert done.returncode == 0, done.stderr
    outputs = {k: Path(v) for k, v in json.loads(done.stdout)["outputs"].items()}
    doc = json.loads(outputs["json"].read_text())
    assert doc["version"] == 3
    assert [s["id"] for s in doc["speakers"]] == ["SPEAKER_00", "SPEAKER_01"]
    assert doc["speakers"][0]["name"] == "Left Person"
    assert doc["turns"], "diarization turns are kept"

    # Each sentence's words carry its speaker: the left one ends in the pause after 5 s.
    words = [w for s in doc["segments"] for w in s["words"]]
    left = {w["speaker"] for w in words if (w["start"] + w["end"]) / 2 < 5.0 + PAUSE / 2}
    right = {w["speaker"] for w in words if (w["start"] + w["end"]) / 2 >= 5.0 + PAUSE / 2}
    assert (left, right) == ({"SPEAKER_00"}, {"SPEAKER_01"})
    assert all(s["speaker"] is not None for s in doc["segments"])

    srt = pysrt.open(str(outputs["srt"]))
    assert srt[0].text.startswith("[Left Person] ")
    assert any(item.text.startswith("[SPEAKER_01] ") for item in srt)
    captions = webvtt.read(str(outputs["vtt"])).captions
    assert {c.voice for c in captions} == {"Left Person", "SPEAKER_01"}
    txt = outputs["txt"].read_text()
    assert txt.startswith("Left Person: He began")
    assert "SPEAKER_01: The horizon" in txt
    assert "**Left Person**" in outputs["md"].read_text()

    annotations = load_rttm(str(outputs["rttm"]))
    (annotation,) = annotations.values()
    assert set(annotation.labels()) == {"Left_Person", "SPEAKER_01"}
    assert annotation.get_timeline().extent().end <= doc["duration"] + 0.01

    for sub in ("srt", "vtt"):  # ffmpeg reads the subtitles it supports
        probe = subprocess.run(
            [ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-i", str(outputs[sub]),
             "-f", "ass", "-"], capture_output=True, text=True, check=False,
        )  # fmt: skip
        assert probe.returncode == 0, probe.stderr
        assert "Dialogue:" in probe.stdout
