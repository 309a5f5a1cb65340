"""Chapters on real speech: three recordings on different topics joined end to end (the
MIT licence, JFK's inaugural line, a meeting about project documents) must be cut where
they were joined, with different titles."""

from __future__ import annotations

import re

from reelscribe.analysis.options import ChapterOptions
from reelscribe.formats.analysis import chapter_lines
from reelscribe.models import Transcript
from reelscribe.pipeline.analyze import chapters


def test_boundaries_fall_on_the_joins(joined: tuple[Transcript, list[float]]) -> None:
    transcript, joins = joined
    out = chapters(transcript, ChapterOptions(min_seconds=8.0))
    assert out.analysis is not None
    found = out.analysis.chapters
    starts = [c.start for c in found]
    assert starts[0] == 0.0
    assert len(found) == len(joins) + 1, starts
    for start, join in zip(starts[1:], joins, strict=True):
        assert abs(start - join) <= 3.0, (starts, joins)
    titles = [c.title.lower() for c in found]
    assert len(set(titles)) == len(titles), titles
    # Every chapter has a title and a short summary drawn from its own time.
    for c in found:
        assert c.title.strip()
        assert c.summary
        assert c.end > c.start
    lines = chapter_lines(out).splitlines()
    assert len(lines) == len(found)
    assert lines[0].startswith("00:00 ")
    assert all(re.match(r"^\d\d:\d\d \S", line) for line in lines)


def test_short_or_single_topic_recordings_have_no_chapters(
    licence: Transcript, meeting: Transcript
) -> None:
    out = chapters(licence, ChapterOptions(min_seconds=20.0))
    assert out.analysis is not None
    assert out.analysis.chapters == ()
    assert chapters(meeting, ChapterOptions(min_seconds=30.0)).analysis.chapters == ()  # type: ignore[union-attr]
