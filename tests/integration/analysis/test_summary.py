"""The offline summary and keywords on real speech: faithful (every sentence and every
keyword is the transcript's own), central, of the length asked for."""

from __future__ import annotations

import re

import pytest

from reelscribe.analysis.options import SummaryOptions
from reelscribe.formats.tokens import normalize
from reelscribe.models import Transcript
from reelscribe.pipeline.analyze import summarize
from reelscribe.progress import Progress


def _plain(text: str) -> str:
    return normalize(text).lower()


def check_faithful(t: Transcript) -> None:
    assert t.analysis is not None
    whole = _plain(t.text)
    for s in t.analysis.summary:
        assert _plain(s.text) in whole, f"not a sentence of the transcript: {s.text!r}"
        assert 0.0 <= s.start < s.end <= t.duration + 1e-6
        # The time points at the sentence: its first word is said then.
        first = next(w for w in t.words if w.start >= s.start - 1e-6)
        assert _plain(s.text).startswith(_plain(first.text).strip(".,?!"))
    starts = [s.start for s in t.analysis.summary]
    assert starts == sorted(starts)
    assert t.analysis.keywords
    for k in t.analysis.keywords:
        pattern = r"\b" + r"\s+".join(map(re.escape, k.text.lower().split())) + r"\b"
        assert re.search(pattern, whole), f"keyword not in the transcript: {k.text!r}"


def test_licence_summary_is_its_central_sentence(licence: Transcript) -> None:
    events: list[Progress] = []
    out = summarize(licence, SummaryOptions(sentences=1), events.append)
    check_faithful(out)
    assert out.analysis is not None
    (only,) = out.analysis.summary
    assert "permission is hereby granted" in _plain(only.text)
    assert only.start < 1.0
    assert {e.stage for e in events} == {"summarize"}
    assert events[-1].fraction == 1.0
    words = {k.text.lower() for k in out.analysis.keywords}
    assert words & {"software", "permission", "copyright notice", "documentation files"}
    # The speech itself is untouched.
    assert out.segments == licence.segments


def test_meeting_summary_keeps_the_username_question(meeting: Transcript) -> None:
    out = summarize(meeting, SummaryOptions(sentences=2))
    check_faithful(out)
    assert out.analysis is not None
    assert len(out.analysis.summary) == 2
    assert any("username" in _plain(s.text) for s in out.analysis.summary)


def test_length_is_a_count_or_a_ratio(meeting: Transcript) -> None:
    from reelscribe.analysis.sentences import sentences

    n = len(sentences(meeting))
    assert n >= 6
    by_ratio = summarize(meeting, SummaryOptions(ratio=0.5))
    assert by_ratio.analysis is not None
    assert len(by_ratio.analysis.summary) == round(n * 0.5)
    everything = summarize(meeting, SummaryOptions(sentences=100))
    assert everything.analysis is not None
    assert len(everything.analysis.summary) <= n


def test_no_point_is_picked_twice(licence: Transcript) -> None:
    """MMR: a sentence repeated word for word is never picked twice."""
    from dataclasses import replace

    doubled = replace(licence, segments=licence.segments + tuple(
        replace(s, id=s.id + 1000, start=s.start + licence.duration,
                end=s.end + licence.duration, words=tuple(
                    replace(w, start=w.start + licence.duration, end=w.end + licence.duration)
                    for w in s.words))
        for s in licence.segments
    ), duration=2 * licence.duration)  # fmt: skip
    out = summarize(doubled, SummaryOptions(sentences=2))
    assert out.analysis is not None
    texts = [_plain(s.text) for s in out.analysis.summary]
    assert len(set(texts)) == len(texts) == 2


def test_bad_lengths_are_refused() -> None:
    from reelscribe.errors import InvalidInputError

    with pytest.raises(InvalidInputError, match=r"1\.\.100"):
        SummaryOptions(sentences=0)
    with pytest.raises(InvalidInputError, match="ratio"):
        SummaryOptions(ratio=1.5)
