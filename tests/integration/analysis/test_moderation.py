"""Content moderation with the real NudeNet detector on real and generated frames: a
photograph of a person (skimage's astronaut, made into a short video) shows a face and
nothing unsafe; colour bars show nothing; a deployment that counts faces as unsafe
blocks it, with a blurred thumbnail; audio-only media is skipped."""

from __future__ import annotations

import base64
import subprocess
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from reelscribe.analysis.options import ModerationOptions
from reelscribe.media.ffmpeg import ffmpeg_exe
from reelscribe.models import TimeRange
from reelscribe.pipeline.moderate import moderate
from reelscribe.progress import Progress
from tests.conftest import make_media


def photo_video(dest: Path, seconds: float = 6.0, gop: int = 250) -> Path:
    """skimage's astronaut photograph (a real photo inside the wheel) as an H.264 video
    with a tone, after two seconds of colour bars: a scene change at 2 s."""
    import cv2
    from skimage import data

    still = dest.with_suffix(".png")
    cv2.imwrite(str(still), data.astronaut()[:, :, ::-1])
    subprocess.run([
        ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-y",
        "-f", "lavfi", "-i", "smptebars=size=512x512:rate=25:duration=2",
        "-loop", "1", "-framerate", "25", "-t", str(seconds - 2), "-i", str(still),
        "-f", "lavfi", "-i", f"sine=frequency=440:duration={seconds}",
        "-filter_complex", "[0:v][1:v]concat=n=2:v=1:a=0,format=yuv420p[v]",
        "-map", "[v]", "-map", "2:a", "-c:v", "libx264", "-preset", "ultrafast", "-g", str(gop),
        "-c:a", "aac", "-shortest", str(dest),
    ], check=True)  # fmt: skip
    return dest


@pytest.fixture(scope="module")
def astronaut(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return photo_video(tmp_path_factory.mktemp("moderation") / "astronaut.mp4")


@pytest.fixture(scope="module")
def bars(tmp_path_factory: pytest.TempPathFactory) -> Path:
    dest = tmp_path_factory.mktemp("moderation") / "bars.mp4"
    subprocess.run([
        ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-y",
        "-f", "lavfi", "-i", "smptebars=size=640x360:rate=25:duration=8",
        "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", str(dest),
    ], check=True)  # fmt: skip
    return dest


def _sharpness(data_uri: str) -> float:
    import cv2

    jpeg = base64.b64decode(data_uri.split(",", 1)[1])
    image = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_GRAYSCALE)
    assert image is not None
    assert image.shape[1] == 160
    return float(cv2.Laplacian(image, cv2.CV_64F).var())


def test_a_photographed_face_is_found_and_nothing_unsafe(astronaut: Path) -> None:
    events: list[Progress] = []
    report = moderate(astronaut, None, TimeRange(), ModerationOptions(interval=2.0),
                      events.append, offset=100.0)  # fmt: skip
    # Every 2 s, plus the cut from the bars to the photo.
    assert report.frames >= 3
    assert report.verdict == "safe"
    assert not report.unsafe
    faces = [f for f in report.flags if any(d.label == "FACE_FEMALE" for d in f.detections)]
    assert faces, report.flags
    # On the source's timeline (offset 100 s), and only once the photo is on screen.
    assert all(102.0 - 0.1 <= f.time <= 106.0 for f in faces)
    face = next(d for d in faces[0].detections if d.label == "FACE_FEMALE")
    assert face.score >= 0.5
    x, y, w, h = face.box
    assert w > 20
    assert h > 20
    assert x + w <= 512
    assert y + h <= 512
    assert _sharpness(faces[0].thumbnail) > 0
    assert events[-1].stage == "moderate"
    assert events[-1].fraction == 1.0


def test_colour_bars_show_nothing(bars: Path) -> None:
    report = moderate(bars, None, TimeRange(), ModerationOptions(interval=2.0))
    assert report.frames >= 4
    assert report.flags == ()
    assert report.verdict == "safe"


def test_a_label_list_that_counts_faces_blocks_and_blurs(astronaut: Path) -> None:
    """No frame NudeNet calls unsafe can be had honestly here, so the block path is
    driven by the deployment's label list (REELSCRIBE_MODERATION_UNSAFE_LABELS)."""
    options = ModerationOptions(policy="block", interval=2.0, unsafe_labels=("FACE_FEMALE",))
    report = moderate(astronaut, None, TimeRange(), options)
    assert report.unsafe
    assert report.blocked
    assert report.verdict == "blocked"
    flagged = replace(options, policy="flag")
    assert moderate(astronaut, None, TimeRange(), flagged).verdict == "flagged"
    unsafe = next(f for f in report.flags if f.unsafe)
    safe = moderate(astronaut, None, TimeRange(), ModerationOptions(interval=2.0))
    clear = next(f for f in safe.flags if abs(f.time - unsafe.time) < 1e-6)
    # The unsafe thumbnail is blurred: far less detail than the same frame unblurred.
    assert _sharpness(unsafe.thumbnail) < 0.2 * _sharpness(clear.thumbnail)


def test_dense_keyframes_are_the_sample_and_find_the_same(tmp_path: Path) -> None:
    """With a keyframe every second only keyframes are decoded; with one every 10 s
    (libx264's default here) every frame is, to keep a frame every 2 s."""
    from reelscribe.analysis.moderation import covers, sample_frames

    dense = photo_video(tmp_path / "dense.mp4", seconds=8.0, gop=25)
    sparse = photo_video(tmp_path / "sparse.mp4", seconds=8.0)
    options = ModerationOptions(interval=2.0)
    keyed = sample_frames(dense, (320, 320), TimeRange(), options, 8.0)
    assert covers([f.time for f in keyed], 8.0, 2.0)
    assert 4 <= len(keyed) <= 6  # 0, 2 (the cut), 4, 6 (+ keyframes 1 s apart skipped)
    full = sample_frames(sparse, (320, 320), TimeRange(), options, 8.0)
    assert covers([f.time for f in full], 8.0, 2.0)
    assert not covers([0.0], 8.0, 2.0)
    dense_report = moderate(dense, None, TimeRange(), options)
    sparse_report = moderate(sparse, None, TimeRange(), options)
    labels = {d.label for f in dense_report.flags for d in f.detections}
    assert labels == {d.label for f in sparse_report.flags for d in f.detections}
    assert "FACE_FEMALE" in labels


def test_a_range_is_sampled_alone(astronaut: Path) -> None:
    report = moderate(astronaut, None, TimeRange(0.0, 1.5), ModerationOptions(interval=0.5))
    assert report.flags == ()  # only the bars are in range
    assert report.frames >= 3


def test_audio_only_is_skipped(media_dir: Path) -> None:
    audio = make_media(media_dir / "moderation_audio.m4a", duration=2.0, video=False)
    report = moderate(audio, None, TimeRange(), ModerationOptions(policy="block"))
    assert report.verdict == "skipped"
    assert report.skipped == "no video"
    assert not report.blocked
