"""The cue builder behind SRT, VTT and ASS: limits, word integrity, split choice, timing.

Transcripts are built by hand with Whisper-like word timings (leading spaces, a
word's length in proportion to its letters, short gaps between words, longer
ones after punctuation); property checks run the same invariants over many of
them, including generated ones.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Sequence

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reelscribe.errors import InvalidInputError
from reelscribe.formats.cues import Cue, CueOptions, build_cues
from reelscribe.models import ModelInfo, Segment, Transcript, Word

MODEL = ModelInfo("base", "packaged", "/models/base", "cpu", "int8")
OPTS = CueOptions()


# --- building transcripts -----------------------------------------------------------


def speech(
    turns: Sequence[tuple[str | None, str]],
    *,
    start: float = 0.4,
    pace: float = 1.0,
    seed: int = 0,
    turn_pause: float = 0.3,
    language: str = "en",
) -> Transcript:
    """Turns of (speaker, text) as Whisper would time them: one segment per sentence,
    words with leading spaces. ``pace`` > 1 is slower speech."""
    rng = random.Random(seed)
    segments: list[Segment] = []
    t = start
    for speaker, text in turns:
        for sentence in _sentences(text):
            words: list[Word] = []
            for raw in sentence.split():
                length = (0.055 * len(raw) + 0.1) * pace
                words.append(Word(t, t + length, " " + raw, rng.uniform(0.6, 1.0), speaker=speaker))
                t += length + rng.uniform(0.03, 0.15) * pace
            t += rng.uniform(0.1, 0.4) * pace  # breath between sentences, under pause_split
            segments.append(_segment(len(segments), words, speaker))
        t += turn_pause
    return Transcript(tuple(segments), language, 0.97, round(t + 1.0, 3), MODEL)


def _sentences(text: str) -> list[str]:
    out: list[str] = []
    current: list[str] = []
    for word in text.split():
        current.append(word)
        if word[-1] in ".!?":
            out.append(" ".join(current))
            current = []
    if current:
        out.append(" ".join(current))
    return out


def _segment(index: int, words: Sequence[Word], speaker: str | None = None) -> Segment:
    return Segment(
        index,
        words[0].start,
        words[-1].end,
        "".join(w.text for w in words),
        tuple(words),
        speaker=speaker,
        avg_logprob=-0.25,
        compression_ratio=1.4,
        no_speech_prob=0.01,
    )


def timed(
    *items: tuple[float, float, str] | tuple[float, float, str, str], duration: float = 0
) -> Transcript:
    """Words at exact times: (start, end, text[, speaker]), one segment per speaker run."""
    words = [Word(i[0], i[1], " " + i[2], 0.9, speaker=i[3] if len(i) > 3 else None) for i in items]
    segments: list[Segment] = []
    run: list[Word] = []
    for word in words:
        if run and word.speaker != run[-1].speaker:
            segments.append(_segment(len(segments), run, run[0].speaker))
            run = []
        run.append(word)
    segments.append(_segment(len(segments), run, run[0].speaker))
    return Transcript(tuple(segments), "en", 0.97, duration or words[-1].end + 2.0, MODEL)


LECTURE = (
    "So the thing about subtitles is that they need to be readable, which means short lines. "
    "And you also want them to break at natural points! Otherwise viewers get confused, and "
    "they stop watching. Isn't that right? Yes it is. Now let me tell you about the history "
    "of captioning, which goes back much further than most people think, to the silent film "
    "era and the intertitles that told audiences what the actors were saying."
)
INTERVIEW = [
    ("SPEAKER_00", "Welcome back to the show. Today we have a very special guest with us."),
    ("SPEAKER_01", "Thanks for having me. It's great to be here."),
    ("SPEAKER_00", "Let's start with your new book. What made you write it?"),
    ("SPEAKER_01", "Honestly, I had been thinking about it for years, and the pandemic finally "
                   "gave me the time to sit down and do it."),
    ("SPEAKER_00", "Right."),
    ("SPEAKER_01", "Yes."),
]  # fmt: skip
LONG_WORD = "Pneumonoultramicroscopicsilicovolcanoconiosis-antidisestablishmentarianism"
CORPUS = {
    "lecture": speech([(None, LECTURE)]),
    "lecture_slow": speech([(None, LECTURE)], pace=1.6, seed=3),
    "lecture_fast": speech([(None, LECTURE)], pace=0.6, seed=4),
    "interview": speech(INTERVIEW, seed=1),
    "long_word": speech([(None, f"The doctor said the word {LONG_WORD} twice, then left.")]),
    "no_punctuation": speech([(None, " ".join(["and then we went over there"] * 8))], seed=2),
}


# --- invariants -----------------------------------------------------------------------


def cue_words(cue: Cue) -> list[str]:
    return " ".join(cue.lines).split()


def check_invariants(transcript: Transcript, cues: list[Cue], opts: CueOptions = OPTS) -> None:
    words = [w for w in transcript.words if w.text.strip()]
    # Words are never split, dropped, reordered or merged.
    assert [x for c in cues for x in cue_words(c)] == [w.text.strip() for w in words]
    assert " ".join(" ".join(c.lines) for c in cues) == " ".join(w.text.strip() for w in words)

    position = 0
    for k, cue in enumerate(cues):
        own = words[position : position + len(cue_words(cue))]
        position += len(own)
        assert 1 <= len(cue.lines) <= opts.max_lines
        for line in cue.lines:
            # Only a lone over-long word may exceed the line length.
            assert len(line) <= opts.max_chars_per_line or " " not in line, line
        # One speaker per cue: a speaker change always starts a new cue.
        assert {w.speaker for w in own} == {cue.speaker}
        # A long silence always ends a cue.
        for a, b in itertools.pairwise(own):
            assert b.start - a.end < opts.pause_split
        assert cue.start < cue.end
        assert cue.end - cue.start <= opts.max_duration + 1e-9
        # A cue starts with its first word; only words sharing a start time (as
        # Whisper emits) push a cue 1 ms later to keep cues strictly ordered.
        earliest = cues[k - 1].start + 0.001 if k else 0.0
        assert cue.start == pytest.approx(max(own[0].start, earliest), abs=5e-4)
        limit = cues[k + 1].start - opts.gap if k + 1 < len(cues) else transcript.duration
        limit = max(min(limit, cue.start + opts.max_duration), cue.start + 0.001)
        # The cue shows its words to the end unless the next cue (or its time limit) comes first.
        assert cue.end >= min(own[-1].end, limit) - 5e-4
        # Too short or too fast to read: only where the end was pushed as far as it may go.
        chars = len(" ".join(cue.lines))
        if (
            cue.end - cue.start < opts.min_duration - 1e-9
            or chars / (cue.end - cue.start) > opts.max_cps + 1e-6
        ):
            assert cue.end == pytest.approx(limit, abs=1e-3), cue
        if k + 1 < len(cues):
            nxt = cues[k + 1]
            assert cue.end <= nxt.start  # never overlapping, in order
            assert nxt.start - cue.end >= opts.gap - 1e-9 or cue.end - cue.start <= 0.001 + 1e-9
        # Times are whole milliseconds, so every writer prints them exactly.
        assert round(cue.start * 1000) == pytest.approx(cue.start * 1000, abs=1e-6)
        assert round(cue.end * 1000) == pytest.approx(cue.end * 1000, abs=1e-6)
    assert position == len(words)


@pytest.mark.parametrize("name", sorted(CORPUS))
@pytest.mark.parametrize(
    "opts",
    [
        OPTS,
        CueOptions(max_chars_per_line=32, max_lines=1, max_cps=20, gap=0.08),
        CueOptions(max_chars_per_line=20, max_lines=3, max_duration=3.0, pause_split=0.3),
    ],
    ids=["default", "one-line", "narrow"],
)
def test_invariants_hold_on_the_corpus(name: str, opts: CueOptions) -> None:
    transcript = CORPUS[name]
    cues = build_cues(transcript, opts)
    assert len(cues) >= 2
    check_invariants(transcript, cues, opts)


@pytest.mark.parametrize("name", ["lecture", "lecture_slow", "interview", "no_punctuation"])
def test_normal_speech_is_readable_and_long_enough(name: str) -> None:
    # At a normal pace every limit is achievable, so every cue meets all of them.
    cues = build_cues(CORPUS[name])
    for cue in cues:
        duration = cue.end - cue.start
        assert len(" ".join(cue.lines)) / duration <= OPTS.max_cps + 1e-9, cue
        assert OPTS.min_duration - 1e-9 <= duration <= OPTS.max_duration, cue
        assert all(len(line) <= OPTS.max_chars_per_line for line in cue.lines)


VOCABULARY = [
    "the", "a", "we", "subtitle", "readable", "reelscribe", "transcription",
    "hello,", "well,", "so;", "yes.", "no!", "really?", "okay.", "\"quoted.\"",
    "extraordinarily", "incomprehensibilities", LONG_WORD, "don't", "co-operate",
]  # fmt: skip


@st.composite
def transcripts(draw: st.DrawFn) -> Transcript:
    t = draw(st.floats(0, 5))
    items: list[tuple[float, float, str, str]] = []
    for _ in range(draw(st.integers(1, 60))):
        word = draw(st.sampled_from(VOCABULARY))
        speaker = draw(st.sampled_from(["A", "A", "A", "B"]))
        length = draw(st.floats(0.0, 1.2))
        items.append((round(t, 3), round(t + length, 3), word, speaker))
        t += length + draw(st.sampled_from([0.0, 0.02, 0.1, 0.3, 0.59, 0.6, 1.5]))
    return timed(*items)


@settings(max_examples=150, deadline=None)
@given(
    transcripts(),
    st.builds(
        CueOptions,
        max_chars_per_line=st.integers(10, 50),
        max_lines=st.integers(1, 3),
        max_cps=st.floats(8, 25),
        min_duration=st.floats(0, 1.5),
        max_duration=st.floats(2, 8),
        pause_split=st.floats(0.2, 1.0),
        gap=st.sampled_from([0.0, 0.05, 0.2]),
    ),
)
def test_invariants_hold_on_generated_transcripts(transcript: Transcript, opts: CueOptions) -> None:
    check_invariants(transcript, build_cues(transcript, opts), opts)


# --- where cues split -----------------------------------------------------------------


def texts(cues: list[Cue]) -> list[str]:
    return [" ".join(c.lines) for c in cues]


def test_splits_at_the_end_of_a_sentence() -> None:
    transcript = speech(
        [(None, "I went to the store yesterday afternoon with my sister. "
                "Then we bought some bread and a little bit of cheese for dinner tonight.")]
    )  # fmt: skip
    assert texts(build_cues(transcript)) == [
        "I went to the store yesterday afternoon with my sister.",
        "Then we bought some bread and a little bit of cheese for dinner tonight.",
    ]


def test_splits_at_a_comma_when_no_sentence_ends() -> None:
    transcript = speech(
        [(None, "When the weather is nice and warm outside in the early summer months, "
                "we like to walk along the river and look at all the boats")]
    )  # fmt: skip
    cues = texts(build_cues(transcript))
    assert cues[0].endswith("summer months,")
    assert len(cues) == 2


def test_a_cue_does_not_end_in_a_sentence_it_started() -> None:
    transcript = speech(
        [(None, "Right. So when we finally got to the station, the train had already left "
                "and there was nobody around to help us at all.")]
    )  # fmt: skip
    cues = texts(build_cues(transcript))
    # Not "Right. So when we finally got to the station," then the rest.
    assert cues[:2] == ["Right.", "So when we finally got to the station,"]


def test_splits_at_a_pause_when_there_is_no_punctuation() -> None:
    words = [
        "we", "walked", "along", "the", "old", "river", "path", "for", "a", "very", "long",
        "time", "and", "then", "we", "sat", "down", "on", "a", "bench", "near", "the",
        "water", "to", "rest", "our", "tired", "feet", "for", "a", "while",
    ]  # fmt: skip
    items = []
    t = 0.0
    for index, word in enumerate(words):
        items.append((t, t + 0.3, word))
        # One clear (but short) pause after "time", nothing anywhere else.
        t += 0.3 + (0.45 if word == "time" and index < 15 else 0.05)
    cues = texts(build_cues(timed(*items)))
    assert cues[0].endswith("a very long time")


def test_a_long_silence_always_ends_a_cue() -> None:
    transcript = timed((0.0, 0.3, "Hello"), (0.35, 0.7, "there"), (1.4, 1.8, "friend"))
    assert texts(build_cues(transcript)) == ["Hello there", "friend"]
    # Under pause_split the same words share one cue.
    assert texts(build_cues(transcript, CueOptions(pause_split=1.0))) == ["Hello there friend"]


def test_a_speaker_change_always_starts_a_new_cue() -> None:
    transcript = timed(
        (0.0, 0.3, "Are", "A"), (0.32, 0.6, "you", "A"), (0.62, 1.0, "there?", "A"),
        (1.02, 1.3, "Yes,", "B"), (1.32, 1.6, "I", "B"), (1.62, 2.0, "am.", "B"),
    )  # fmt: skip
    cues = build_cues(transcript)
    assert [(c.speaker, " ".join(c.lines)) for c in cues] == [
        ("A", "Are you there?"),
        ("B", "Yes, I am."),
    ]
    assert cues[0].end <= cues[1].start


def test_two_lines_are_balanced_and_break_at_punctuation() -> None:
    transcript = speech(
        [(None, "we could take the train to the coast and spend the whole weekend there")]
    )
    (cue,) = build_cues(transcript)
    assert len(cue.lines) == 2
    assert abs(len(cue.lines[0]) - len(cue.lines[1])) <= 8
    transcript = speech(
        [(None, "If the weather holds tomorrow, we could take the train to the coast")]
    )
    (cue,) = build_cues(transcript)
    assert cue.lines == ("If the weather holds tomorrow,", "we could take the train to the coast")


def test_short_text_stays_on_one_line() -> None:
    (cue,) = build_cues(speech([(None, "Thanks for having me.")]))
    assert cue.lines == ("Thanks for having me.",)


def test_an_over_long_word_stands_alone_and_whole() -> None:
    cues = build_cues(CORPUS["long_word"])
    lines = [line for c in cues for line in c.lines]
    assert LONG_WORD in lines
    assert all(len(line) <= 42 for line in lines if line != LONG_WORD)


# --- timing ---------------------------------------------------------------------------


def test_fast_speech_extends_into_the_following_silence() -> None:
    # 32 characters spoken in 1.2 s (27 cps), then 3 s of silence.
    words = ["This", "is", "very", "fast", "speech", "indeed."]
    items = [(1.0 + 0.2 * i, 1.0 + 0.2 * i + 0.18, w) for i, w in enumerate(words)]
    (cue,) = build_cues(timed(*items, duration=10.0))
    assert cue.start == 1.0
    assert cue.end == pytest.approx(1.0 + 32 / 17, abs=1e-3)


def test_extension_stops_at_the_next_cue() -> None:
    words = ["This", "is", "very", "fast", "speech", "indeed."]
    items = [(1.0 + 0.2 * i, 1.0 + 0.2 * i + 0.18, w) for i, w in enumerate(words)]
    # 0.62 s after the last word: its own cue, starting before 32/17 s are over.
    items.append((2.8, 3.4, "Next."))
    first, second = build_cues(timed(*items))
    assert first.end == second.start == 2.8
    gapped = build_cues(timed(*items), CueOptions(gap=0.1))
    assert gapped[0].end == pytest.approx(2.7)


def test_a_short_cue_lasts_min_duration_where_there_is_room() -> None:
    (cue,) = build_cues(timed((2.0, 2.15, "Yes.")))
    assert cue.end - cue.start == pytest.approx(0.7)
    # Another speaker answers 0.5 s in: there is room for 0.5 s only.
    first, _ = build_cues(timed((2.0, 2.15, "Yes.", "A"), (2.5, 3.0, "Right.", "B")))
    assert first.end == 2.5


def test_slow_speech_is_cut_at_max_duration() -> None:
    # Unpunctuated, evenly paced below pause_split: only max_duration can end a cue.
    items = [(i * 0.8, i * 0.8 + 0.3, "go") for i in range(30)]
    cues = build_cues(timed(*items))
    assert len(cues) >= 4
    assert all(c.end - c.start <= 7.0 for c in cues)


def test_a_word_longer_than_max_duration_is_clamped() -> None:
    (cue,) = build_cues(timed((0.0, 12.0, "Hmmmmmm")))
    assert (cue.start, cue.end) == (0.0, 7.0)


def test_the_last_cue_never_runs_past_the_end() -> None:
    (cue,) = build_cues(timed((0.0, 0.2, "Bye."), duration=0.5))
    assert cue.end == 0.5


def test_garbled_word_times_still_give_ordered_cues() -> None:
    transcript = timed(
        (1.0, 1.5, "A", "X"), (0.9, 1.2, "B", "Y"), (0.9, 0.9, "C", "X"), (3.0, 2.0, "D", "X")
    )
    cues = build_cues(transcript)
    assert texts(cues) == ["A", "B", "C", "D"]
    for a, b in itertools.pairwise(cues):
        assert a.start < a.end
        assert a.start < b.start
        # Only two speakers talking at once may overlap (X's "A" runs into Y's "B").
        assert a.end <= b.start or a.speaker != b.speaker


def test_two_speakers_at_once_get_overlapping_cues() -> None:
    transcript = timed(
        (0.0, 1.0, "Left", "L"), (1.0, 2.0, "talks.", "L"),
        (0.5, 1.5, "Right", "R"), (1.5, 3.0, "too.", "R"),
    )  # fmt: skip
    first, second = build_cues(transcript)
    assert (first.speaker, second.speaker) == ("L", "R")
    assert first.end >= 2.0 > second.start  # the left speaker's cue lasts its words
    assert second.end >= 3.0


# --- inputs ---------------------------------------------------------------------------


def test_segments_without_words_are_shared_out_by_characters() -> None:
    transcript = Transcript(
        (
            Segment(0, 0.0, 4.0, " The first segment has no word timings at all."),
            Segment(1, 5.0, 6.0, "  Nor   does\nthis one. "),
        ),
        "en", 0.9, 7.0, MODEL,
    )  # fmt: skip
    cues = build_cues(transcript)
    assert texts(cues) == ["The first segment has no word timings at all.", "Nor does this one."]
    assert (cues[0].start, cues[1].start) == (0.0, 5.0)
    assert cues[0].end <= 5.0


def test_words_without_leading_spaces_in_an_unspaced_language() -> None:
    words = (Word(0.0, 0.3, "今日", 0.9), Word(0.3, 0.5, "は", 0.9), Word(0.5, 1.0, "晴れ。", 0.9))
    transcript = Transcript((Segment(0, 0.0, 1.0, "今日は晴れ。", words),), "ja", 0.9, 2.0, MODEL)
    assert [c.lines for c in build_cues(transcript)] == [("今日は晴れ。",)]


def test_empty_transcript_has_no_cues() -> None:
    assert build_cues(Transcript((), "en", 0.0, 0.0, MODEL)) == []
    blank = Transcript(
        (Segment(0, 0.0, 1.0, "  ", (Word(0.0, 1.0, " ", 0.1),)),), "en", 0, 1, MODEL
    )
    assert build_cues(blank) == []


@pytest.mark.parametrize(
    "kwargs",
    [
        {"max_chars_per_line": 0},
        {"max_lines": 0},
        {"max_cps": 0},
        {"min_duration": 8.0},
        {"max_duration": 0},
        {"gap": -0.1},
        {"pause_split": 0},
    ],
)
def test_invalid_options_are_refused(kwargs: dict[str, float]) -> None:
    with pytest.raises(InvalidInputError):
        CueOptions(**kwargs)  # type: ignore[arg-type]
