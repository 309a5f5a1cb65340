"""The span arithmetic behind lost-speech warnings and the language re-check."""

from __future__ import annotations

import pydantic
import pytest

from reelscribe.hub.wire import StepEventIn
from reelscribe.models import Segment, TranscriptWarning
from reelscribe.pipeline import coverage, languages
from reelscribe.pipeline.languages import Detection, LanguageCheck


def seg(start: float, end: float, text: str = " words", logprob: float = -0.2) -> Segment:
    return Segment(0, start, end, text, avg_logprob=logprob)


def test_merge_and_subtract_spans() -> None:
    assert coverage.merge_spans([(5, 6), (0, 2), (1.5, 3), (3.4, 4)], gap=0.5) == [
        (0, 4), (5, 6),
    ]  # fmt: skip
    assert coverage.subtract([(0, 10)], [(2, 3), (2.5, 4), (9, 12)]) == [(0, 2), (4, 9)]
    assert coverage.subtract([(0, 1)], []) == [(0, 1)]


def test_uncovered_speech_needs_the_minimum_length_and_ignores_empty_segments() -> None:
    speech = [(0.0, 10.0), (10.3, 20.0), (30.0, 32.0)]
    segments = [seg(0.5, 9.0), seg(12.0, 14.0, text="  ")]  # the second has no text
    # 9.5 (covered to 9.0 + 0.5 edge) .. 20.0; the 0.3 s pause does not split it.
    assert coverage.uncovered_speech(speech, segments, 4.0) == [(9.5, 20.0)]
    assert coverage.uncovered_speech(speech, segments, 11.0) == []
    (warning,) = coverage.uncovered_warnings(speech, segments, 4.0)
    assert (warning.start, warning.end, warning.reason) == (9.5, 20.0, "uncovered_speech")
    assert coverage.describe(warning, offset=60.0).startswith("01:09.500-01:20.000 uncovered")


def test_dropped_warning_lists_the_flags_and_text() -> None:
    w = coverage.dropped_warning(1.0, 2.0, " Thank you. ", ["repetition", "no_speech"])
    assert w == TranscriptWarning(1.0, 2.0, "hallucination_guard",
                                  "dropped (repetition, no_speech): Thank you.")  # fmt: skip


def test_suspect_spans_join_close_ones_and_cut_long_ones_into_windows() -> None:
    segments = [seg(0, 5), seg(5, 20, logprob=-0.9), seg(21, 40, logprob=-0.8), seg(41, 50)]
    dropped = [coverage.dropped_warning(60.0, 62.0, "x", ["empty"])]
    spans = languages.suspect_spans(segments, dropped, [], LanguageCheck())
    assert spans == [(5, 22.5), (22.5, 40), (60, 62)]


def test_regions_merge_neighbours_in_the_same_other_language() -> None:
    found = [
        Detection(0, 10, "en", 0.99),  # the transcript's own language
        Detection(10, 20, "de", 0.9),
        Detection(21, 30, "de", 0.95),
        Detection(40, 50, "fr", 0.3),  # not confident enough
        Detection(50, 60, "fr", 0.8),
    ]
    assert languages.regions(found, "en", LanguageCheck()) == [
        Detection(10, 30, "de", 0.95), Detection(50, 60, "fr", 0.8),
    ]  # fmt: skip


def test_main_language_is_the_one_with_most_time() -> None:
    segments = [
        Segment(0, 0, 5, " a", language="en"),
        Segment(1, 5, 20, " b", language="de"),
    ]
    found = [Detection(5, 20, "de", 0.97)]
    assert languages.main_language(segments, "en", 0.99, found) == ("de", 0.97)
    assert languages.main_language(segments[:1], "en", 0.99, []) == ("en", 0.99)


def test_remote_workers_may_report_the_warnings_event_but_no_transition() -> None:
    event = StepEventIn(kind="progress", data={"warnings": [{"start": 1.0, "end": 6.0}]})
    assert event.data["warnings"][0]["end"] == 6.0
    with pytest.raises(pydantic.ValidationError):
        StepEventIn(kind="transition", data={})  # type: ignore[arg-type]


def test_spot_windows_spread_past_the_first_30_seconds() -> None:
    windows = languages.speech_windows([(0.0, 400.0), (403.0, 900.0)])
    assert all(b - a <= 30.0 for a, b in windows)
    assert windows[0][0] == 0.0
    assert windows[-1][1] == 900.0
    spots = languages.spot_windows(windows, LanguageCheck())
    assert len(spots) == 2  # one per 10 minutes of the ~870 s after the first 30 s
    assert all(a >= 29.0 for a, _ in spots)
    assert spots[-1] == windows[-1]
    short = languages.speech_windows([(0.0, 59.0)])
    assert languages.spot_windows(short, LanguageCheck()) == [w for w in short if w[0] >= 29.0]


def test_no_spot_checks_when_switched_off() -> None:
    windows = languages.speech_windows([(0.0, 900.0)])
    assert languages.spot_windows(windows, LanguageCheck(spot_every=0)) == []
