"""assign_speakers on hand-built transcripts and turns: labels, splits, gaps, text."""

from __future__ import annotations

import pytest

from reelscribe.errors import InvalidInputError
from reelscribe.models import ModelInfo, Segment, Transcript, Word
from reelscribe.speakers import Diarization, DiarizeOptions, SpeakerTurn, assign_speakers

INFO = ModelInfo(name="base", source="packaged", path="/m", device="cpu", compute_type="int8")


def w(start: float, end: float, text: str) -> Word:
    return Word(start=start, end=end, text=text, probability=0.9)


def transcript(*segments: Segment, language: str = "en") -> Transcript:
    return Transcript(
        segments=segments,
        language=language,
        language_probability=0.99,
        duration=20.0,
        model=INFO,
        source_offset=12.5,
        extra={"mode": "sequential"},
    )


def diarization(*turns: tuple[float, float, str]) -> Diarization:
    return Diarization(turns=tuple(SpeakerTurn(s, e, who) for s, e, who in turns), duration=20.0)


def test_a_segment_spanning_a_change_of_speaker_is_split_at_the_word() -> None:
    words = (
        w(0.0, 0.5, " Hello"),
        w(0.6, 1.0, " there."),
        w(1.2, 1.6, " Hi,"),
        w(1.7, 2.0, " you."),
    )
    seg = Segment(0, 0.0, 2.1, " Hello there. Hi, you.", words, avg_logprob=-0.2, flags=("x",))
    later = Segment(1, 3.0, 4.0, " Bye.", (w(3.0, 3.9, " Bye."),))
    t = transcript(seg, later)
    out = assign_speakers(t, diarization((0.0, 1.1, "SPEAKER_00"), (1.1, 5.0, "SPEAKER_01")))

    assert [s.id for s in out.segments] == [0, 1, 2]
    assert [s.text for s in out.segments] == ["Hello there.", "Hi, you.", " Bye."]
    assert [s.speaker for s in out.segments] == ["SPEAKER_00", "SPEAKER_01", "SPEAKER_01"]
    first, second, _third = out.segments
    # Outer bounds stay the segment's, the inner ones fall on word edges.
    assert (first.start, first.end) == (0.0, 1.0)
    assert (second.start, second.end) == (1.2, 2.1)
    assert all(x.speaker == s.speaker for s in out.segments for x in s.words)
    assert [x.text for x in out.words] == [x.text for x in t.words]
    # Decoding facts carry over to every piece; the transcript's own fields stay.
    assert first.avg_logprob == second.avg_logprob == -0.2
    assert second.flags == ("x",)
    assert (out.language, out.source_offset, out.extra) == ("en", 12.5, {"mode": "sequential"})
    assert out.speakers == ("SPEAKER_00", "SPEAKER_01")


def test_a_word_goes_to_the_speaker_it_overlaps_most() -> None:
    # Overlapping turns: the word 1.0-2.0 lies 0.8 s in B's turn, 0.3 s in A's.
    t = transcript(Segment(0, 1.0, 2.0, " word", (w(1.0, 2.0, " word"),)))
    out = assign_speakers(t, diarization((0.0, 1.3, "A"), (1.2, 3.0, "B")))
    assert out.words[0].speaker == "B"
    assert out.segments[0].speaker == "B"
    # A speaker's several short turns add up against one longer turn of another.
    t = transcript(Segment(0, 0.0, 1.0, " x", (w(0.0, 1.0, " x"),)))
    out = assign_speakers(t, diarization((0.0, 0.3, "A"), (0.3, 0.65, "B"), (0.65, 1.0, "A")))
    assert out.words[0].speaker == "A"


def test_a_word_in_a_pause_takes_the_nearest_turn() -> None:
    words = (w(0.0, 0.4, " one"), w(1.6, 1.8, " two"), w(2.8, 3.0, " three"))
    t = transcript(Segment(0, 0.0, 3.0, " one two three", words))
    out = assign_speakers(t, diarization((0.0, 1.0, "A"), (3.1, 5.0, "B")))
    assert [x.speaker for x in out.words] == ["A", "A", "B"]
    assert [s.text for s in out.segments] == ["one two", "three"]


def test_segments_without_words_take_the_largest_overlap_or_the_nearest_turn() -> None:
    t = transcript(
        Segment(0, 0.0, 2.0, " no words"),
        Segment(1, 2.0, 5.0, " mostly B"),
        Segment(2, 9.0, 9.5, " in a gap"),
    )
    out = assign_speakers(t, diarization((0.0, 2.5, "A"), (2.5, 6.0, "B"), (10.0, 11.0, "C")))
    assert [s.speaker for s in out.segments] == ["A", "B", "C"]
    assert [s.text for s in out.segments] == [" no words", " mostly B", " in a gap"]


def test_unspaced_languages_join_split_words_without_spaces() -> None:
    words = (w(0.0, 0.3, "你"), w(0.3, 0.6, "好"), w(1.0, 1.3, "再"), w(1.3, 1.6, "见"))
    t = transcript(Segment(0, 0.0, 1.6, "你好再见", words), language="zh")
    out = assign_speakers(t, diarization((0.0, 0.8, "A"), (0.8, 2.0, "B")))
    assert [s.text for s in out.segments] == ["你好", "再见"]


def test_without_turns_the_transcript_is_unchanged() -> None:
    t = transcript(Segment(0, 0.0, 1.0, " hi", (w(0.0, 1.0, " hi"),)))
    assert assign_speakers(t, Diarization(turns=(), duration=20.0)) == t


def test_speakers_are_listed_in_first_appearance_order() -> None:
    d = diarization((0.0, 1.0, "SPEAKER_00"), (0.5, 2.0, "SPEAKER_01"), (2.0, 3.0, "SPEAKER_00"))
    assert d.speakers == ("SPEAKER_00", "SPEAKER_01")


@pytest.mark.parametrize(
    "kwargs",
    [
        {"num_speakers": 0},
        {"min_speakers": 0},
        {"max_speakers": -1},
        {"min_speakers": 3, "max_speakers": 2},
        {"num_speakers": 5, "max_speakers": 4},
        {"num_speakers": 1, "min_speakers": 2},
        {"backend": "cloud"},
        {"device": "tpu"},
        {"cpu_threads": -1},
    ],
)
def test_invalid_options_are_refused(kwargs: dict[str, object]) -> None:
    with pytest.raises(InvalidInputError):
        DiarizeOptions(**kwargs)  # type: ignore[arg-type]


def test_options_bounds_and_token_stays_out_of_repr() -> None:
    assert DiarizeOptions().speaker_bounds() == (1, None)
    assert DiarizeOptions(num_speakers=3).speaker_bounds() == (3, 3)
    assert DiarizeOptions(min_speakers=2, max_speakers=4).speaker_bounds() == (2, 4)
    assert "secret" not in repr(DiarizeOptions(backend="pyannote", hf_token="secret"))
