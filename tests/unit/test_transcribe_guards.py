"""The hallucination guards and word post-processing, on faster-whisper-shaped records."""

from __future__ import annotations

import itertools
from types import SimpleNamespace

from reelscribe.asr.faster_whisper import window_bounds
from reelscribe.models import Word
from reelscribe.pipeline.transcribe import (
    TranscribeOptions,
    _convert,
    _split_at_sentences,
    _words,
)


def raw(
    start: float,
    end: float,
    text: str,
    *,
    cr: float = 1.5,
    nsp: float = 0.01,
    lp: float = -0.2,
    words: list[SimpleNamespace] | None = None,
) -> SimpleNamespace:
    return SimpleNamespace(
        start=start,
        end=end,
        text=text,
        compression_ratio=cr,
        no_speech_prob=nsp,
        avg_logprob=lp,
        words=words,
    )


def test_guards_drop_and_flag() -> None:
    segments = [
        raw(0, 2, " Hello there."),
        raw(2, 4, " Hello there."),  # repeated
        raw(4, 6, " the the the the the the the the", cr=3.1),  # compression ratio
        raw(6, 8, " Thanks for watching!", nsp=0.9, lp=-1.5),  # no speech
        raw(8, 10, " Mumbled words.", lp=-1.2),  # low confidence: kept, flagged
        raw(20, 22, " Invented text."),  # no speech detected there
    ]
    speech = [(0.0, 10.0)]
    kept, dropped = _convert(
        [(0.0, seg) for seg in segments], TranscribeOptions(), 22.0, speech, None
    )
    assert [s.text for s in kept] == ["Hello there.", "Mumbled words."]
    assert kept[1].flags == ("low_confidence",)
    # Each dropped segment is reported (nothing lost silently), with its times.
    assert len(dropped) == 4
    assert {w.reason for w in dropped} == {"hallucination_guard"}
    assert (20.0, 22.0) in {(w.start, w.end) for w in dropped}
    flagged, _ = _convert(
        [(0.0, seg) for seg in segments],
        TranscribeOptions(drop_hallucinations=False),
        22.0,
        speech,
        None,
    )
    assert [s.flags for s in flagged] == [
        (),
        ("repetition",),
        ("high_compression_ratio",),
        ("no_speech", "low_confidence"),
        ("low_confidence",),
        ("outside_speech",),
    ]


def test_words_without_timing_are_interpolated() -> None:
    words = _words(None, 1.0, 3.0, " two words")
    assert [(w.start, w.end, w.interpolated) for w in words] == [(1.0, 2.0, True), (2.0, 3.0, True)]
    raw_words = [
        SimpleNamespace(start=0.5, end=1.5, word=" early", probability=0.9),
        SimpleNamespace(start=1.5, end=2.0, word=" fine", probability=0.8),
    ]
    clamped = _words(raw_words, 1.0, 3.0, " early fine")
    assert clamped[0].start == 1.0
    assert clamped[0].interpolated
    assert not clamped[1].interpolated


def test_split_at_sentences() -> None:
    def w(s: float, e: float, t: str) -> Word:
        return Word(s, e, t, 0.9)

    words = (
        w(0, 0.5, " One."),
        w(0.6, 1.0, " Two"),
        w(1.0, 1.4, " words"),
        w(3.0, 3.5, " after"),
        w(3.5, 4.0, " pause"),
    )
    pieces = _split_at_sentences(words)
    assert [[x.text for x in p] for p in pieces] == [
        [" One."],
        [" Two", " words"],
        [" after", " pause"],
    ]


def test_long_audio_windows_cut_in_silence() -> None:
    import numpy as np

    sr = 16_000
    rng = np.random.default_rng(1)
    audio = (rng.standard_normal(sr * 800) * 0.1).astype(np.float32)
    quiet = [290, 600]  # seconds: one silent half-second near each nominal boundary
    for q in quiet:
        audio[q * sr : q * sr + sr // 2] = 0.0
    bounds = window_bounds(audio, 300.0)
    assert bounds[0][0] == 0
    assert bounds[-1][1] == len(audio)
    assert all(a[1] == b[0] for a, b in itertools.pairwise(bounds))
    cuts = [start / sr for start, _ in bounds[1:]]
    assert len(cuts) == 2
    for cut, q in zip(cuts, quiet, strict=True):
        assert q <= cut <= q + 0.5
    assert window_bounds(audio[: sr * 400], 300.0) == [(0, sr * 400)]
