"""The probe stage against generated media (PyAV; there is no ffprobe)."""

from __future__ import annotations

from pathlib import Path

import av
import pytest

from reelscribe.errors import MediaError, SourceNotFoundError
from reelscribe.pipeline.probe import probe, scan_video
from tests.conftest import make_media


@pytest.fixture(scope="module")
def gop48(media_dir: Path) -> Path:
    """8 s, 25 fps, a keyframe every 48 frames (1.92 s), B-frames."""
    return make_media(media_dir / "probe_gop48.mp4", duration=8.0, gop=48)


def test_audio_video_facts(sample_av: Path) -> None:
    info = probe(sample_av)
    assert info.duration == pytest.approx(10.0, abs=0.05)
    assert info.start_time == pytest.approx(0.0, abs=0.05)
    assert info.size == sample_av.stat().st_size
    assert info.format_name.startswith("mov")
    assert [s.kind for s in info.streams] == ["video", "audio"]
    video, audio = info.video, info.audio
    assert video is not None
    assert audio is not None
    assert (video.codec, video.width, video.height) == ("h264", 320, 240)
    assert video.fps == pytest.approx(25.0)
    assert video.pix_fmt == "yuv420p"
    assert video.profile == "Main"  # ultrafast + B-frames: CABAC off, but B-frames need Main
    assert video.rotation == 0
    assert video.duration == pytest.approx(10.0, abs=0.05)
    assert (audio.codec, audio.sample_rate, audio.channels) == ("aac", 44100, 1)
    assert info.keyframes == ()  # not asked for


def test_keyframes_sit_at_the_gop_positions(gop48: Path) -> None:
    info = probe(gop48, keyframes=True)
    assert info.keyframes == pytest.approx([0.0, 1.92, 3.84, 5.76, 7.68], abs=1e-6)


def test_keyframes_are_relative_to_the_container_start(media_dir: Path) -> None:
    # MPEG-TS timestamps start near 1.4 s; the source timeline still starts at 0.
    ts = make_media(media_dir / "probe.ts", duration=4.0, gop=25)
    info = probe(ts, keyframes=True)
    assert info.start_time > 1.0
    assert info.keyframes[0] == pytest.approx(0.0, abs=0.05)
    assert [b - a for a, b in zip(info.keyframes, info.keyframes[1:], strict=False)] == (
        pytest.approx([1.0, 1.0, 1.0], abs=1e-3)
    )


def test_video_only(sample_video_only: Path) -> None:
    info = probe(sample_video_only, keyframes=True)
    assert info.has_video
    assert not info.has_audio
    assert info.duration == pytest.approx(6.0, abs=0.05)
    assert info.keyframes == pytest.approx([0.0, 2.0, 4.0], abs=1e-6)


def test_audio_only(sample_audio_only: Path) -> None:
    info = probe(sample_audio_only, keyframes=True)
    assert not info.has_video
    assert info.has_audio
    assert info.duration == pytest.approx(6.0, abs=0.05)
    assert info.keyframes == ()


def test_rotation_from_the_display_matrix(sample_video_only: Path, tmp_path: Path) -> None:
    rotated = tmp_path / "rotated.mp4"
    # PyAV writes the display matrix the way phones do (ffmpeg's -display_rotation is
    # missing from older ffmpeg builds). 90° counter-clockwise = 270° clockwise.
    with av.open(str(sample_video_only)) as src, av.open(str(rotated), "w") as dst:
        in_stream = src.streams.video[0]
        out_stream = dst.add_stream_from_template(in_stream)
        out_stream.set_display_rotation(90)
        for packet in src.demux(in_stream):
            if packet.dts is None:
                continue
            packet.stream = out_stream
            dst.mux(packet)
    video = probe(rotated).video
    assert video is not None
    assert video.rotation == 270


def test_scan_video_lists_packets_from_a_keyframe_before_the_start(gop48: Path) -> None:
    scan = scan_video(gop48, 3.37, 5.0)
    first = scan.packets[0]
    assert first.keyframe
    assert first.idr
    assert first.pts <= 3.37
    shown = sorted(p.pts for p in scan.packets)
    assert shown[0] == pytest.approx(1.92) or shown[0] == pytest.approx(0.0)
    # Every frame up to the end is there, once.
    inside = [t for t in shown if 3.37 <= t < 5.0]
    assert len(inside) == len(set(inside)) == 40  # 3.40, 3.44 … 4.96
    assert scan.level is not None


@pytest.mark.parametrize(
    "content",
    [b"", b"hello, not a video\n", bytes(range(256)) * 200],
    ids=["empty", "text", "garbage"],
)
def test_unreadable_input_is_a_media_error(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "broken.mp4"
    path.write_bytes(content)
    with pytest.raises(MediaError, match=r"broken\.mp4"):
        probe(path)


def test_truncated_file_is_a_media_error(sample_av: Path, tmp_path: Path) -> None:
    path = tmp_path / "truncated.mp4"
    path.write_bytes(sample_av.read_bytes()[:2000])  # the moov atom is at the end
    with pytest.raises(MediaError):
        probe(path)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(SourceNotFoundError, match="not found"):
        probe(tmp_path / "nope.mp4")
