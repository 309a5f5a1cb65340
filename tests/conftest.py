"""Fixtures shared by every test layer.

The real speech recordings live outside the repository; one setting says where:
``REELSCRIBE_TEST_MEDIA`` (default ``../shared/media`` from the repo root). Tests that
need them report themselves skipped, with the reason, when the folder is missing;
``.ci/run`` refuses to start without it.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from reelscribe.media.ffmpeg import ffmpeg_exe

REPO_ROOT = Path(__file__).resolve().parent.parent
TEST_MEDIA = Path(os.environ.get("REELSCRIBE_TEST_MEDIA", REPO_ROOT.parent / "shared" / "media"))


@pytest.fixture(scope="session")
def shared_media() -> Path:
    """The folder of real speech recordings (see ../shared/media/README.md)."""
    if not (TEST_MEDIA / "jfk.flac").is_file():
        pytest.skip(f"shared test media not found at {TEST_MEDIA} (set REELSCRIBE_TEST_MEDIA)")
    return TEST_MEDIA


def make_media(
    dest: Path,
    *,
    duration: float = 6.0,
    video: bool = True,
    audio: bool = True,
    size: str = "320x240",
    fps: int = 25,
    gop: int = 50,
    bframes: int = 2,
    extra: Sequence[str] = (),
) -> Path:
    """Generates an H.264/AAC MP4 (or audio-only / video-only file) with ffmpeg's lavfi
    sources: a test pattern with a running frame counter and a sine tone."""
    args: list[str] = [ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-y"]
    if video:
        args += ["-f", "lavfi", "-i", f"testsrc2=size={size}:rate={fps}:duration={duration}"]
    if audio:
        args += ["-f", "lavfi", "-i", f"sine=frequency=440:sample_rate=44100:duration={duration}"]
    if video:
        args += [
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-pix_fmt",
            "yuv420p",
            "-g",
            str(gop),
            "-keyint_min",
            str(gop),
            "-sc_threshold",
            "0",
            "-bf",
            str(bframes),
        ]
    if audio:
        args += ["-c:a", "aac", "-b:a", "96k"]
    args += [*extra, str(dest)]
    subprocess.run(args, check=True)
    return dest


@pytest.fixture(scope="session")
def media_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("media")


@pytest.fixture(scope="session")
def sample_av(media_dir: Path) -> Path:
    """10 s 320x240 25 fps H.264 (B-frames, 2 s GOP) + AAC."""
    return make_media(media_dir / "sample_av.mp4", duration=10.0)


@pytest.fixture(scope="session")
def sample_audio_only(media_dir: Path) -> Path:
    return make_media(media_dir / "sample_audio.m4a", duration=6.0, video=False)


@pytest.fixture(scope="session")
def sample_video_only(media_dir: Path) -> Path:
    return make_media(media_dir / "sample_video.mp4", duration=6.0, audio=False)


@pytest.fixture(scope="session")
def models_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where the packaged model is assembled for this test session."""
    configured = os.environ.get("REELSCRIBE_MODELS_DIR")
    return Path(configured) if configured else tmp_path_factory.mktemp("models")


@pytest.fixture(scope="session")
def engine_options(models_dir: Path):  # type: ignore[no-untyped-def]
    from reelscribe.asr.faster_whisper import EngineOptions

    return EngineOptions(model="base", models_dir=models_dir)


def decode_channel(path: Path, channel: int | None = None) -> np.ndarray:
    """16 kHz mono float32 samples of a file (one channel of it when asked)."""
    from reelscribe.pipeline.audio import load_audio

    return load_audio(path, channel=channel)


def normalise_words(text: str) -> list[str]:
    import re

    return re.sub(r"[^\w']+", " ", text.lower()).split()
