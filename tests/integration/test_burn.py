"""Burned-in subtitles: drawn by libass in the same ffmpeg pass as the cut, at
clip-relative times."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from reelscribe.errors import InvalidInputError
from reelscribe.media.ffmpeg import filter_value
from reelscribe.models import ClipMode, TimeRange
from reelscribe.pipeline.clip import ClipOptions, clip
from reelscribe.pipeline.probe import probe
from reelscribe.progress import Progress, ProgressCallback
from tests.integration.test_clip import Frames, decode_frames

FPS = 25


def burn(src: Path, dest: Path, ass: Path, progress: ProgressCallback | None = None) -> Path:
    """A whole file with subtitles burned in: the clip stage's re-encode with no cut
    (what the runner's burn step does for a job without a range)."""
    return clip(src, dest, TimeRange(), ClipOptions(burn_subtitles=ass), progress).path


# One cue from 1.0 to 2.0 s in a large opaque box (BorderStyle 3), so it changes
# many pixels whatever font fontconfig picks.
ASS = """[Script Info]
ScriptType: v4.00+
PlayResX: 320
PlayResY: 240

[V4+ Styles]
Format: Name, Fontname, Fontsize, PrimaryColour, SecondaryColour, OutlineColour, \
BackColour, Bold, Italic, Underline, StrikeOut, ScaleX, ScaleY, Spacing, Angle, \
BorderStyle, Outline, Shadow, Alignment, MarginL, MarginR, MarginV, Encoding
Style: Default,DejaVu Sans,48,&H00FFFFFF,&H000000FF,&H00000000,&H00000000,1,0,0,0,\
100,100,0,0,3,6,0,2,10,10,20,1

[Events]
Format: Layer, Start, End, Style, Name, MarginL, MarginR, MarginV, Effect, Text
Dialogue: 0,0:00:01.00,0:00:02.00,Default,,0,0,0,,HELLO
"""


def write_ass(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(ASS, encoding="utf-8")
    return path


def at(frames: Frames, t: float) -> np.ndarray:
    """The frame shown at ``t`` (seconds from the clip's start)."""
    return next(image for time, image in reversed(frames) if time <= t + 1e-6)


def bottom_diff(a: np.ndarray, b: np.ndarray) -> float:
    # The cue sits at the bottom; the rest of the picture only adds encoder noise.
    rows = a.shape[0] // 2
    return float(np.abs(a[rows:] - b[rows:]).mean())


@pytest.fixture
def ass_file(tmp_path: Path) -> Path:
    return write_ass(tmp_path / "cue.ass")


@pytest.mark.parametrize("start", [0.0, 2.5])
@pytest.mark.parametrize("mode", list(ClipMode))
def test_cue_timed_from_the_clip_start(sample_av: Path, tmp_path: Path, ass_file: Path,
                                       start: float, mode: ClipMode) -> None:  # fmt: skip
    span = TimeRange(start, start + 3.5)
    burned = clip(sample_av, tmp_path / "burned.mp4", span,
                  ClipOptions(mode=mode, burn_subtitles=ass_file))  # fmt: skip
    plain = clip(sample_av, tmp_path / "plain.mp4", span, ClipOptions(mode=ClipMode.EXACT))
    # Always one re-encode pass, cut exactly even in fast mode.
    assert burned.method == "reencode"
    assert burned.encoder == "libx264"
    assert burned.start == plain.start
    assert start <= burned.start < start + 1 / FPS
    ours, theirs = decode_frames(burned.path), decode_frames(plain.path)
    assert len(ours) == len(theirs)
    assert bottom_diff(at(ours, 1.5), at(theirs, 1.5)) > 5.0
    assert bottom_diff(at(ours, 1.04), at(theirs, 1.04)) > 5.0
    for t in (0.5, 0.96, 2.0, 3.0):
        assert bottom_diff(at(ours, t), at(theirs, t)) < 2.0, f"cue visible at {t}s"


def test_burn_whole_file(sample_av: Path, tmp_path: Path, ass_file: Path) -> None:
    events: list[Progress] = []
    dest = burn(sample_av, tmp_path / "out" / "burned.mp4", ass_file, progress=events.append)
    assert dest == tmp_path / "out" / "burned.mp4"
    assert probe(dest).duration == pytest.approx(10.0, abs=1 / FPS)
    assert probe(dest).has_audio
    ours, source = decode_frames(dest), decode_frames(sample_av)
    assert len(ours) == len(source) == 250
    assert bottom_diff(at(ours, 1.5), at(source, 1.5)) > 5.0
    assert bottom_diff(at(ours, 3.0), at(source, 3.0)) < 2.0
    assert {e.stage for e in events} == {"clip"}
    assert events[-1].fraction == 1.0


def test_awkward_paths_are_escaped(sample_av: Path, tmp_path: Path) -> None:
    # Characters that mean something to ffmpeg's filter parser at one level or another.
    odd = tmp_path / "it's [a], b; c:d \\ e"
    subs = write_ass(odd / "cue, 'quoted'.ass")
    fonts = odd / "fonts: here"
    fonts.mkdir()
    out = clip(sample_av, tmp_path / "odd.mp4", TimeRange(0.0, 2.0),
               ClipOptions(burn_subtitles=subs, fonts_dir=fonts))  # fmt: skip
    plain = clip(sample_av, tmp_path / "plain.mp4", TimeRange(0.0, 2.0))
    assert bottom_diff(at(decode_frames(out.path), 1.5), at(decode_frames(plain.path), 1.5)) > 5


def test_filter_value_escapes_both_levels() -> None:
    # Option level: backslash, quote, colon get a backslash; then the filtergraph
    # level escapes backslash, quote, brackets, comma and semicolon once more.
    assert filter_value("a'b:c,d") == "a\\\\\\'b\\\\:c\\,d"
    assert filter_value("plain/path.ass") == "plain/path.ass"


def test_missing_subtitle_file(sample_av: Path, tmp_path: Path) -> None:
    with pytest.raises(InvalidInputError, match="subtitle file not found"):
        burn(sample_av, tmp_path / "x.mp4", tmp_path / "missing.ass")


def test_no_video_to_burn_into(sample_audio_only: Path, tmp_path: Path, ass_file: Path) -> None:
    with pytest.raises(InvalidInputError, match="without video"):
        burn(sample_audio_only, tmp_path / "x.mp4", ass_file)
