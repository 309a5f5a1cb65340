"""Corrected segment text: unchanged words keep their measured timings, corrected and
inserted ones are spread over the time they take, in proportion to their length."""

from __future__ import annotations

import pytest

from reelscribe.errors import InvalidInputError
from reelscribe.formats.corrections import correct_segment, correct_transcript, realign_words
from reelscribe.models import ModelInfo, Segment, Transcript, Word


def _segment(*words: tuple[str, float, float], start: float = 0.0, end: float = 4.0) -> Segment:
    timed = tuple(Word(s, e, f" {t}", 0.9, False, "SPEAKER_00") for t, s, e in words)
    text = "".join(w.text for w in timed)
    return Segment(0, start, end, text, timed, speaker="SPEAKER_00")


SEG = _segment(("ask", 0.0, 0.5), ("not", 0.5, 1.0), ("what", 1.2, 1.6),
               ("your", 1.6, 2.0), ("country", 2.0, 2.8))  # fmt: skip


def test_unchanged_words_keep_their_timings_and_a_replaced_word_takes_its_place() -> None:
    words = realign_words(SEG, "ask not what our country")
    assert [w.text for w in words] == [" ask", " not", " what", " our", " country"]
    for kept in (0, 1, 2, 4):
        assert words[kept] == SEG.words[kept]
    assert (words[3].start, words[3].end) == (1.6, 2.0)
    assert words[3].interpolated
    assert not words[2].interpolated
    assert words[3].speaker == "SPEAKER_00"


def test_a_replacement_is_spread_by_length_over_the_replaced_span() -> None:
    words = realign_words(SEG, "ask not what thy homeland")  # 2 words for 2
    assert [w.text for w in words[3:]] == [" thy", " homeland"]
    thy, homeland = words[3:]
    assert thy.start == 1.6
    assert homeland.end == 2.8
    assert thy.end == homeland.start
    # 3 characters against 8: the longer word gets the longer share.
    assert homeland.end - homeland.start > 2 * (thy.end - thy.start)


def test_an_insertion_fills_the_gap_and_deletions_leave_the_rest_alone() -> None:
    words = realign_words(SEG, "ask not now what country")  # "now" inserted, "your" deleted
    assert [w.text.strip() for w in words] == ["ask", "not", "now", "what", "country"]
    now = words[2]
    assert (now.start, now.end) == (1.0, 1.2)  # the pause between "not" and "what"
    assert now.interpolated
    assert words[4] == SEG.words[4]
    times = [t for w in words for t in (w.start, w.end)]
    assert times == sorted(times)


def test_case_and_punctuation_keep_the_timing_but_take_the_new_spelling() -> None:
    words = realign_words(SEG, "Ask not, what your country")
    assert [w.text for w in words][:2] == [" Ask", " not,"]
    assert [(w.start, w.end, w.interpolated) for w in words] == [
        (w.start, w.end, False) for w in SEG.words
    ]


def test_a_segment_without_word_timings_gets_its_words_spread_over_it() -> None:
    bare = Segment(0, 10.0, 12.0, " hello", ())
    words = realign_words(bare, "hello there world")
    assert words[0].start == 10.0
    assert words[-1].end == 12.0
    assert all(w.interpolated for w in words)


def test_correct_segment_changes_text_and_keeps_the_rest() -> None:
    same = correct_segment(SEG, "  ask not what   your country ")
    assert same is SEG  # whitespace is not an edit
    fixed = correct_segment(SEG, "ask not what your nation")
    assert fixed.text == " ask not what your nation"
    assert (fixed.start, fixed.end, fixed.speaker, fixed.id) == (0.0, 4.0, "SPEAKER_00", 0)
    assert correct_segment(SEG, "").words == ()


def test_correct_transcript_by_index_and_refuses_unknown_indexes() -> None:
    model = ModelInfo("base", "packaged", "/m", "cpu", "int8")
    second = Segment(
        1, 4.0, 6.0, " for you", (Word(4.0, 4.5, " for", 0.9), Word(4.5, 5.0, " you", 0.9))
    )
    transcript = Transcript((SEG, second), "en", 1.0, 6.0, model)
    fixed = correct_transcript(transcript, {1: "for us"})
    assert fixed.segments[0] is SEG
    assert fixed.text == "ask not what your country for us"
    with pytest.raises(InvalidInputError, match="no segment 2"):
        correct_transcript(transcript, {2: "x"})
