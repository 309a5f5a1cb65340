"""`reelscribe demo`: real speech when there is some, and a clear word when there is none."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from reelscribe.demo import NO_SPEECH_HINT, find_speech
from reelscribe.errors import InvalidInputError
from tests.conftest import normalise_words

CLI = str(Path(sys.executable).with_name("reelscribe"))


@pytest.mark.media
def test_demo_finds_the_shared_speech(tmp_path: Path, shared_media: Path, models_dir: Path) -> None:
    # A checkout beside ../shared/media, as the README's layout has it.
    (tmp_path / "shared" / "media").mkdir(parents=True)
    (tmp_path / "shared" / "media" / "jfk.flac").symlink_to(shared_media / "jfk.flac")
    checkout = tmp_path / "reelscribe"
    checkout.mkdir()
    env = dict(os.environ) | {"REELSCRIBE_MODELS_DIR": str(models_dir)}
    done = subprocess.run([CLI, "demo", "--quiet"], cwd=checkout, env=env, capture_output=True,
                          text=True, timeout=600, check=False)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "speech from ../shared/media/jfk.flac" in done.stderr
    assert "warning" not in done.stderr
    outputs = dict(line.split("\t") for line in done.stdout.splitlines())
    assert {"srt", "txt", "clip", "burned_clip"} <= set(outputs)
    text = Path(checkout / outputs["txt"]).read_text(encoding="utf-8")
    assert {"fellow", "country"} <= set(normalise_words(text))


def test_no_speech_source_is_said(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # no ../shared/media here
    monkeypatch.setenv("PATH", str(tmp_path))  # and no espeak-ng
    speech = find_speech()
    assert speech.kind == "tone"
    assert speech.note == NO_SPEECH_HINT
    assert "--speech FILE" in NO_SPEECH_HINT
    assert "espeak-ng" in NO_SPEECH_HINT


def test_given_speech_file(tmp_path: Path) -> None:
    with pytest.raises(InvalidInputError, match="does not exist"):
        find_speech(tmp_path / "missing.wav")
    given = tmp_path / "talk.wav"
    given.write_bytes(b"RIFF")
    assert find_speech(given).path == given
    done = subprocess.run([CLI, "demo", "--speech", str(tmp_path / "missing.wav")],
                          capture_output=True, text=True, timeout=60, check=False)  # fmt: skip
    assert done.returncode == 2
    assert done.stderr.strip().endswith("does not exist")
