"""Settings reach media/: the ffmpeg binary, the H.264 encoder and the VAAPI device
come from Settings (environment or .env), never from os.environ read by media/."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from reelscribe.config import Settings
from reelscribe.media import encoders
from reelscribe.media.ffmpeg import MediaTools, configure, ffmpeg_exe, run_ffmpeg, tools
from reelscribe.pipeline.fetch import FetchOptions


@pytest.fixture
def restore_tools() -> Iterator[MediaTools]:
    before = tools()
    yield before
    configure(before)


def wrapper(tmp_path: Path) -> tuple[Path, Path]:
    """An ffmpeg that records each call, then runs the real one."""
    log = tmp_path / "calls.log"
    real = ffmpeg_exe()
    script = tmp_path / "my-ffmpeg"
    script.write_text(f'#!/bin/sh\necho "$@" >> {log}\nexec {real} "$@"\n')
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return script, log


def test_dotenv_settings_reach_media(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, restore_tools: object
) -> None:
    script, log = wrapper(tmp_path)
    for name in ("REELSCRIBE_FFMPEG", "REELSCRIBE_H264_ENCODER", "REELSCRIBE_VAAPI_DEVICE"):
        monkeypatch.delenv(name, raising=False)
    env_file = tmp_path / ".env"
    env_file.write_text(
        f"REELSCRIBE_FFMPEG={script}\nREELSCRIBE_H264_ENCODER=libx264\n"
        "REELSCRIBE_VAAPI_DEVICE=/dev/dri/renderD129\n"
    )
    settings = Settings(_env_file=env_file)  # type: ignore[call-arg]
    FetchOptions.from_settings(settings)  # what every pipeline entry point builds first
    assert ffmpeg_exe() == str(script)
    assert tools().h264_encoder == "libx264"
    assert encoders.H264Encoder("h264_vaapi").input_args() == [
        "-vaapi_device", "/dev/dri/renderD129",
    ]  # fmt: skip
    assert encoders.select_h264_encoder().name == "libx264"
    run_ffmpeg(["-f", "lavfi", "-i", "sine=duration=0.1", "-f", "null", "-"])
    assert "sine=duration=0.1" in log.read_text()


def test_media_does_not_read_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, restore_tools: object
) -> None:
    configure(MediaTools())
    monkeypatch.setenv("REELSCRIBE_FFMPEG", "/nonexistent/ffmpeg")
    monkeypatch.setenv("REELSCRIBE_VAAPI_DEVICE", "/dev/dri/renderD200")
    assert ffmpeg_exe() != "/nonexistent/ffmpeg"
    assert "/dev/dri/renderD200" not in encoders.H264Encoder("h264_vaapi").input_args()
    src = Path(__file__).resolve().parents[3] / "src" / "reelscribe" / "media"
    for path in src.glob("*.py"):
        assert "os.environ" not in path.read_text(), path


@pytest.mark.anyio
async def test_the_runtime_hands_settings_to_media(
    tmp_path: Path, models_dir: Path, restore_tools: object
) -> None:
    from reelscribe.service.runtime import Runtime
    from tests.integration.service.conftest import service_settings

    script, _ = wrapper(tmp_path)
    settings = service_settings(tmp_path, models_dir, ffmpeg=str(script),
                                vaapi_device="/dev/dri/renderD130")  # fmt: skip
    async with Runtime(settings):
        assert ffmpeg_exe() == str(script)
        assert tools().vaapi_device == "/dev/dri/renderD130"
    assert os.access(script, os.X_OK)
