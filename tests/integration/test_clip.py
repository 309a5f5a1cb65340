"""The clip stage with real ffmpeg on generated media.

The main source is 25 fps H.264 with B-frames and a keyframe every 48 frames
(0, 1.92, 3.84, 5.76, 7.68 s), so a cut at 3.37 s falls mid-GOP. Its audio is seeded
white noise, which has exactly one alignment with itself, so audio sync is measured
by cross-correlation. Frame content is checked against the source by mean absolute
pixel difference: testsrc2 moves every frame, so the right source frame is the
closest one by a wide margin.
"""

from __future__ import annotations

import io
import subprocess
from collections.abc import Sequence
from pathlib import Path

import av
import numpy as np
import numpy.typing as npt
import pytest

from reelscribe.errors import InvalidInputError, MediaError, ProcessingError
from reelscribe.media import encoders
from reelscribe.media.ffmpeg import ffmpeg_exe, parse_progress, run_ffmpeg
from reelscribe.models import ClipMode, TimeRange
from reelscribe.pipeline.audio import load_audio
from reelscribe.pipeline.clip import ClipOptions, ClipResult, clip
from reelscribe.pipeline.probe import probe
from reelscribe.progress import Progress

FPS = 25
FRAME = 1 / FPS
Frames = list[tuple[float, npt.NDArray[np.int16]]]


def make_source(dest: Path, *, duration: float = 8.0, gop: int = 48,
                extra: Sequence[str] = (), audio_delay: float = 0.0) -> Path:  # fmt: skip
    """Like conftest.make_media, with noise instead of a sine (for sync checks);
    ``audio_delay`` makes the audio track start that much after the video."""
    subprocess.run(
        [ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-y",
         "-f", "lavfi", "-i", f"testsrc2=size=160x120:rate={FPS}:duration={duration}",
         "-itsoffset", str(audio_delay),
         "-f", "lavfi", "-i", f"anoisesrc=d={duration - audio_delay}:r=48000:seed=7:a=0.5",
         "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-g", str(gop),
         "-keyint_min", str(gop), "-sc_threshold", "0", "-bf", "2",
         "-c:a", "aac", "-b:a", "96k", *extra, str(dest)],
        check=True,
    )  # fmt: skip
    return dest


@pytest.fixture(scope="module")
def source(media_dir: Path) -> Path:
    return make_source(media_dir / "clip_src.mp4")


@pytest.fixture(scope="module")
def source_frames(source: Path) -> Frames:
    return decode_frames(source)


def decode_frames(path: Path) -> Frames:
    """(time on the file's timeline, grey pixels) of every frame, in display order."""
    with av.open(str(path)) as container:
        start = (container.start_time or 0) / 1e6
        return [
            (float(frame.time or 0.0) - start, frame.to_ndarray(format="gray").astype(np.int16))
            for frame in container.decode(video=0)
        ]


def decode_errors(path: Path) -> str:
    """What ffmpeg complains about while decoding every frame (empty when clean)."""
    proc = subprocess.run(
        [ffmpeg_exe(), "-v", "error", "-i", str(path), "-f", "null", "-"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    return proc.stderr.strip()


def assert_frames_match_source(result: ClipResult, source: Frames) -> Frames:
    """Every clip frame is the source frame at ``result.start`` + its time."""
    frames = decode_frames(result.path)
    times = np.array([t for t, _ in source])
    for t, image in frames:
        want = int(np.argmin(np.abs(times - (result.start + t))))
        assert abs(times[want] - (result.start + t)) < 1e-3, f"no source frame at {t}"
        window = range(max(0, want - 2), min(len(source), want + 3))
        diffs = {i: float(np.abs(image - source[i][1]).mean()) for i in window}
        assert min(diffs, key=diffs.__getitem__) == want, f"frame at {t:.3f}s: {diffs}"
    return frames


def expected_frames(start: float, end: float, source: Frames) -> list[float]:
    return [t for t, _ in source if start - 1e-6 <= t < end - 1e-6]


def audio_lag(clip_path: Path, source: Path, start: float) -> int:
    """Samples (16 kHz) by which the clip's audio is late against the source at ``start``."""
    ours = load_audio(clip_path)[:8000]
    theirs = load_audio(source)
    at, search = round(start * 16000), 400
    window = theirs[at - search : at + search + len(ours)]
    scores = [float(np.dot(ours, window[i : i + len(ours)])) for i in range(2 * search)]
    return search - int(np.argmax(scores))


# --- fast -----------------------------------------------------------------------------


def test_fast_starts_at_the_keyframe_before_the_cut(source: Path, source_frames: Frames,
                                                    tmp_path: Path) -> None:  # fmt: skip
    info = probe(source, keyframes=True)
    result = clip(source, tmp_path / "fast.mp4", TimeRange(3.37, 6.5),
                  ClipOptions(mode=ClipMode.FAST), info=info)  # fmt: skip
    assert result.method == "copy"
    assert result.encoder is None
    assert result.start == max(k for k in info.keyframes if k <= 3.37) == pytest.approx(1.92)
    # Copying ends on whole packets: a frame or two over at most.
    assert result.duration == pytest.approx(6.5 - result.start, abs=3 * FRAME)
    frames = assert_frames_match_source(result, source_frames)
    assert frames[0][0] == pytest.approx(0.0, abs=1e-6)  # no pre-roll hidden by an edit list
    assert abs(audio_lag(result.path, source, result.start)) <= 2


def test_fast_probes_keyframes_itself(source: Path, tmp_path: Path) -> None:
    info = probe(source)  # without keyframes
    result = clip(source, tmp_path / "fast.mp4", TimeRange(6.0, 7.0),
                  ClipOptions(mode=ClipMode.FAST), info=info)  # fmt: skip
    assert result.start == pytest.approx(5.76)


# --- exact ----------------------------------------------------------------------------


def test_exact_smart_cut_is_frame_accurate(source: Path, source_frames: Frames,
                                           tmp_path: Path) -> None:  # fmt: skip
    result = clip(source, tmp_path / "exact.mp4", TimeRange(3.37, 6.5), ClipOptions())
    assert result.method == "smart"
    assert result.encoder == "libx264"
    assert 3.37 <= result.start < 3.37 + FRAME  # the first frame at or after the cut
    assert result.duration == pytest.approx(6.5 - 3.37, abs=FRAME)
    assert result.end == pytest.approx(result.start + result.duration)
    assert decode_errors(result.path) == ""
    frames = assert_frames_match_source(result, source_frames)
    assert len(frames) == len(expected_frames(3.37, 6.5, source_frames)) == 78
    assert frames[0][0] == pytest.approx(0.0, abs=1e-6)
    assert np.all(np.diff([t for t, _ in frames]) == pytest.approx(FRAME))
    assert abs(audio_lag(result.path, source, result.start)) <= 2  # 1/8 ms
    # Only the partial GOPs were re-encoded: the copied body is bit-identical, so its
    # frames match the source far more closely than re-encoded ones would.
    info = probe(result.path)
    assert info.video is not None
    assert info.video.profile == "Main"
    assert info.audio is not None


@pytest.mark.parametrize(
    ("start", "end", "method"),
    [
        (3.84, 7.68, "copy"),  # keyframe to keyframe: plain copy
        (3.84, 6.5, "smart"),  # only the tail re-encoded
        (3.37, None, "smart"),  # to the end of the source
        (1.0, 1.5, "reencode"),  # shorter than a GOP
        (3.37, 5.76, "smart"),  # only the head re-encoded: the end is a keyframe
        (3.37, 5.5, "reencode"),  # no whole GOP inside
    ],
)
def test_exact_cut_shapes(source: Path, source_frames: Frames, tmp_path: Path,
                          start: float, end: float | None, method: str) -> None:  # fmt: skip
    result = clip(source, tmp_path / "exact.mp4", TimeRange(start, end))
    stop = 8.0 if end is None else end
    assert result.method == method
    assert result.duration == pytest.approx(stop - start, abs=FRAME)
    assert decode_errors(result.path) == ""
    frames = assert_frames_match_source(result, source_frames)
    assert len(frames) == len(expected_frames(start, stop, source_frames))


def test_exact_from_mpeg_ts(media_dir: Path, tmp_path: Path) -> None:
    # TS seeks land on any packet and its timestamps start near 1.4 s.
    ts = make_source(media_dir / "clip_src.ts", gop=30)
    source_frames = decode_frames(ts)
    result = clip(ts, tmp_path / "from_ts.mp4", TimeRange(2.3, 5.5))
    assert result.method == "smart"
    assert decode_errors(result.path) == ""
    frames = assert_frames_match_source(result, source_frames)
    assert len(frames) == len(expected_frames(2.3, 5.5, source_frames))
    assert abs(audio_lag(result.path, ts, result.start)) <= 2


@pytest.mark.parametrize("mode", list(ClipMode))
def test_audio_stays_in_sync_when_it_starts_late(media_dir: Path, tmp_path: Path,
                                                 mode: ClipMode) -> None:  # fmt: skip
    late = make_source(media_dir / "clip_late_audio.mp4", audio_delay=0.3)
    result = clip(late, tmp_path / "late.mp4", TimeRange(3.37, 6.5), ClipOptions(mode=mode))
    assert result.method == ("copy" if mode is ClipMode.FAST else "smart")
    assert abs(audio_lag(result.path, late, result.start)) <= 2


@pytest.mark.parametrize("mode", list(ClipMode))
def test_unseekable_matroska_is_reencoded(media_dir: Path, tmp_path: Path, mode: ClipMode) -> None:
    # Matroska written to a pipe has no cues and no duration: ffmpeg cannot seek in
    # it and would silently copy from the start.
    piped = media_dir / "clip_piped.mkv"
    if not piped.exists():
        with piped.open("wb") as out:
            subprocess.run(
                [ffmpeg_exe(), "-hide_banner", "-loglevel", "error",
                 "-f", "lavfi", "-i", f"testsrc2=size=160x120:rate={FPS}:duration=8",
                 "-c:v", "libx264", "-preset", "ultrafast", "-g", "48", "-bf", "2",
                 "-f", "matroska", "pipe:1"],
                stdout=out, check=True,
            )  # fmt: skip
    assert probe(piped).duration == pytest.approx(8.0, abs=0.05)
    result = clip(piped, tmp_path / "piped.mp4", TimeRange(3.37, 6.5), ClipOptions(mode=mode))
    assert result.method == "reencode"
    frames = assert_frames_match_source(result, decode_frames(piped))
    assert len(frames) == 78


def test_exact_open_gop_falls_back_to_reencode(media_dir: Path, tmp_path: Path) -> None:
    # Open-GOP keyframes are not IDR and their leading B-frames look back across them:
    # copying from one would corrupt the first frames.
    src = make_source(media_dir / "clip_open_gop.mp4", gop=30,
                      extra=["-x264-params", "open-gop=1", "-bf", "3"])  # fmt: skip
    source_frames = decode_frames(src)
    result = clip(src, tmp_path / "open.mp4", TimeRange(1.5, 5.0))
    assert result.method == "reencode"
    frames = assert_frames_match_source(result, source_frames)
    assert len(frames) == len(expected_frames(1.5, 5.0, source_frames))


def test_exact_video_only(sample_video_only: Path, tmp_path: Path) -> None:
    result = clip(sample_video_only, tmp_path / "v.mp4", TimeRange(0.5, 4.5))
    assert result.method == "smart"
    info = probe(result.path)
    assert info.has_video
    assert not info.has_audio
    assert decode_errors(result.path) == ""
    assert len(decode_frames(result.path)) == 100


def rotate(src: Path, dest: Path, degrees: int) -> Path:
    """A copy of ``src`` with a display matrix, as phones write it."""
    with av.open(str(src)) as inp, av.open(str(dest), "w") as out:
        streams = {s.index: out.add_stream_from_template(s) for s in inp.streams}
        streams[inp.streams.video[0].index].set_display_rotation(degrees)  # type: ignore[attr-defined]
        for packet in inp.demux():
            if packet.dts is None:
                continue
            packet.stream = streams[packet.stream_index]
            out.mux(packet)
    return dest


@pytest.mark.parametrize("mode", list(ClipMode))
def test_rotated_source(source: Path, tmp_path: Path, mode: ClipMode) -> None:
    rotated = rotate(source, tmp_path / "rotated.mp4", 90)
    result = clip(rotated, tmp_path / "clip.mp4", TimeRange(3.37, 6.5), ClipOptions(mode=mode))
    video = probe(result.path).video
    assert video is not None
    if mode is ClipMode.FAST:
        # Copied as it is, display matrix included.
        assert (result.method, video.width, video.height, video.rotation) == ("copy", 160, 120, 270)
    else:
        # Re-encoded upright: a smart cut would mix rotated and unrotated parts.
        assert (result.method, video.width, video.height, video.rotation) == (
            "reencode", 120, 160, 0,
        )  # fmt: skip
        assert result.duration == pytest.approx(6.5 - 3.37, abs=FRAME)


@pytest.mark.parametrize("mode", list(ClipMode))
def test_audio_only_source(sample_audio_only: Path, tmp_path: Path, mode: ClipMode) -> None:
    result = clip(sample_audio_only, tmp_path / "a.m4a", TimeRange(1.0, 3.5),
                  ClipOptions(mode=mode))  # fmt: skip
    info = probe(result.path)
    assert not info.has_video
    assert info.has_audio
    assert result.start == 1.0
    assert result.method == ("copy" if mode is ClipMode.FAST else "reencode")
    tolerance = 0.05 if mode is ClipMode.FAST else 0.005  # copy: whole AAC packets
    assert result.duration == pytest.approx(2.5, abs=tolerance)


@pytest.mark.parametrize(("name", "codec"), [("jfk.flac", "flac"), ("hotwords.mp3", "mp3")])
def test_real_speech_files_cut_into_m4a(
    shared_media: Path, tmp_path: Path, name: str, codec: str
) -> None:
    """M4A takes only AAC and ALAC: FLAC and MP3 are re-encoded (ffmpeg's .m4a muxer
    refuses FLAC), and the cut is still where it was asked."""
    source_audio = probe(shared_media / name).audio
    assert source_audio is not None
    assert source_audio.codec.startswith(codec)  # PyAV may name the decoder (mp3float)
    result = clip(shared_media / name, tmp_path / "speech.m4a", TimeRange(1.0, 4.0))
    audio = probe(result.path).audio
    assert audio is not None
    assert audio.codec == "aac"
    assert result.duration == pytest.approx(3.0, abs=0.05)


def test_audio_of_a_video_source_into_m4a(source: Path, tmp_path: Path) -> None:
    result = clip(source, tmp_path / "sound.m4a", TimeRange(2.0, 4.0))
    info = probe(result.path)
    assert not info.has_video
    assert result.duration == pytest.approx(2.0, abs=0.005)
    assert abs(audio_lag(result.path, source, 2.0)) <= 2


# --- ranges and errors --------------------------------------------------------------------


def test_end_beyond_duration_is_clamped(source: Path, tmp_path: Path) -> None:
    result = clip(source, tmp_path / "c.mp4", TimeRange(6.0, 60.0))
    assert result.duration == pytest.approx(2.0, abs=FRAME)
    assert result.end == pytest.approx(8.0, abs=FRAME)


@pytest.mark.parametrize("mode", list(ClipMode))
def test_start_beyond_duration(source: Path, tmp_path: Path, mode: ClipMode) -> None:
    with pytest.raises(InvalidInputError, match="beyond the end"):
        clip(source, tmp_path / "c.mp4", TimeRange(8.5, 9.0), ClipOptions(mode=mode))
    assert not (tmp_path / "c.mp4").exists()


def test_ffmpeg_failure_carries_the_last_stderr_line(source: Path, tmp_path: Path) -> None:
    with pytest.raises(ProcessingError, match=r"^stream-copy cut failed: \S") as caught:
        clip(source, tmp_path / "clip.unknownext", TimeRange(1.0, 2.0),
             ClipOptions(mode=ClipMode.FAST))  # fmt: skip
    assert "\n" not in str(caught.value)
    assert list(tmp_path.iterdir()) == []  # no partial output left behind


def test_corrupt_source_is_a_media_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"\x00" * 5000)
    with pytest.raises(MediaError):
        clip(bad, tmp_path / "out.mp4", TimeRange(0.0, 1.0))


@pytest.mark.parametrize(
    "kwargs",
    [
        {"mode": "sideways"},
        {"crf": 60},
        {"preset": "warp"},
        {"audio_bitrate": 128},
        {"encoder": "h265_magic"},
    ],
)
def test_invalid_options(kwargs: dict[str, object]) -> None:
    with pytest.raises(InvalidInputError):
        ClipOptions(**kwargs)  # type: ignore[arg-type]


def test_options_accept_plain_strings() -> None:
    options = ClipOptions(mode="fast", burn_subtitles="subs.ass")  # type: ignore[arg-type]
    assert options.mode is ClipMode.FAST
    assert options.burn_subtitles == Path("subs.ass")


def test_progress_reaches_one_with_an_eta(source: Path, tmp_path: Path) -> None:
    events: list[Progress] = []
    clip(source, tmp_path / "p.mp4", TimeRange(0.5, 7.9), progress=events.append)
    fractions = [e.fraction for e in events if e.fraction is not None]
    assert {e.stage for e in events} == {"clip"}
    assert fractions[0] == 0.0
    assert fractions[-1] == 1.0
    assert fractions == sorted(fractions)
    assert events[-1].eta == 0.0


# --- ffmpeg plumbing and encoder choice ------------------------------------------------------


def test_parse_progress_turns_blocks_into_fractions() -> None:
    stream = io.BytesIO(
        b"frame=10\nout_time_us=N/A\nprogress=continue\n"
        b"frame=20\nout_time_us=1000000\nprogress=continue\n"
        b"out_time_us=3000000\nprogress=continue\n"
        b"out_time_us=4000000\nprogress=end\n"
    )
    assert list(parse_progress(stream, 4.0)) == [0.0, 0.25, 0.75, 1.0]


def test_run_ffmpeg_reports_progress(tmp_path: Path) -> None:
    seen: list[float] = []
    run_ffmpeg(["-f", "lavfi", "-i", "sine=duration=3", "-f", "null", "-"],
               duration=3.0, on_progress=seen.append)  # fmt: skip
    assert seen
    assert seen[-1] == 1.0


def test_encoder_detection_prefers_a_working_hardware_encoder() -> None:
    """Whatever this host has: "auto" picks the first hardware encoder whose test
    encode works (being listed proves nothing), else libx264."""
    assert "libx264" in encoders.listed_encoders()
    assert encoders.encoder_works("libx264")
    working = [name for name in encoders.HARDWARE if encoders.encoder_works(name)]
    expected = working[0] if working else "libx264"
    assert encoders.select_h264_encoder().name == expected
    assert not encoders.encoder_works("h264_not_listed")


def test_encoder_detection_falls_back_to_libx264(monkeypatch: pytest.MonkeyPatch) -> None:
    """Listed hardware encoders whose test encode fails are skipped."""
    real = encoders.encoder_works
    monkeypatch.setattr(encoders, "encoder_works", lambda name: name == "libx264" and real(name))
    assert encoders.select_h264_encoder().name == "libx264"


def test_forcing_an_encoder(monkeypatch: pytest.MonkeyPatch) -> None:
    from reelscribe.media.ffmpeg import MediaTools, configure, tools

    before = tools()
    monkeypatch.setattr(
        encoders, "encoder_works", lambda name: name == "libx264"
    )  # fmt: skip - no hardware here
    try:
        configure(MediaTools(h264_encoder="libx264"))
        assert encoders.select_h264_encoder("auto").name == "libx264"
        with pytest.raises(InvalidInputError, match="does not work"):
            encoders.select_h264_encoder("h264_nvenc")
        with pytest.raises(InvalidInputError, match="unknown"):
            encoders.select_h264_encoder("h264_magic")
        configure(MediaTools(h264_encoder="h264_vaapi"))
        with pytest.raises(InvalidInputError, match="h264_vaapi"):
            encoders.select_h264_encoder()
    finally:
        configure(before)


def test_hardware_encoder_arguments() -> None:
    nvenc = encoders.H264Encoder("h264_nvenc").output_args(crf=23, preset="veryfast")
    assert nvenc[:4] == ["-c:v", "h264_nvenc", "-preset", "p2"]
    assert "-cq" in nvenc
    vaapi = encoders.H264Encoder("h264_vaapi")
    assert vaapi.input_args()[0] == "-vaapi_device"
    assert vaapi.filters() == ["format=nv12", "hwupload"]
    assert encoders.H264Encoder("libx264").output_args(crf=20, preset="fast") == [
        "-c:v", "libx264", "-preset", "fast", "-crf", "20",
    ]  # fmt: skip
