"""The analysis in the outputs: JSON version 3 (round trip, schema, versions 1 and 2
still read), Markdown's summary, keywords and chapters, YouTube chapter lines, and the
sentences a summary is cut from."""

from __future__ import annotations

import itertools
import json
import re
from dataclasses import replace

import jsonschema
import pytest

from reelscribe.analysis import (
    Analysis,
    Chapter,
    Detection,
    Keyword,
    LlmNotes,
    ModerationFlag,
    ModerationReport,
    SummarySentence,
)
from reelscribe.analysis.results import Claim
from reelscribe.analysis.sentences import sentences
from reelscribe.formats import json_doc, render
from reelscribe.formats.analysis import chapter_lines, chapter_time, moderation_json
from tests.unit.test_cues import CORPUS

INTERVIEW = CORPUS["interview"]

ANALYSIS = Analysis(
    summary=(SummarySentence(0.4, 2.1, "Welcome back to the show.", "SPEAKER_00", 1.0),),
    keywords=(Keyword("new book", 0.9), Keyword("special guest", 0.7)),
    chapters=(
        Chapter(0.0, 65.0, "Welcome, special guest", ("Welcome back to the show.",), ("show",)),
        Chapter(65.0, 3725.0, "New book", (), ("new book",)),
        Chapter(3725.0, 3800.0, "Pandemic *time*", (), ()),
    ),
    moderation=ModerationReport(
        policy="flag",
        frames=12,
        interval=2.0,
        unsafe_labels=("FACE_FEMALE",),
        threshold=0.5,
        flags=(
            ModerationFlag(
                4.0,
                (Detection("FACE_FEMALE", 0.72, (10, 20, 30, 40)),),
                True,
                "data:image/jpeg;base64,AAAA",
            ),
        ),
    ),
    llm=LlmNotes(
        "stub",
        "A show about a book.",
        action_items=("Read it",),
        questions=("When?",),
        chapter_titles=("Hello", "The book", "Time"),
        flagged=(Claim("1999", "number not in the transcript"),),
    ),
    methods={"summary": "extractive"},
)


def test_json_v3_round_trips_the_analysis_and_validates() -> None:
    transcript = replace(INTERVIEW, analysis=ANALYSIS)
    text = render(transcript, "json")
    assert json_doc.parse(text) == transcript
    document = json.loads(text)
    jsonschema.Draft202012Validator(json_doc.json_schema()).validate(document)
    assert document["version"] == 3
    analysis = document["analysis"]
    assert [c["line"] for c in analysis["chapters"]] == [
        "00:00 Welcome, special guest", "01:05 New book", "1:02:05 Pandemic *time*"
    ]  # fmt: skip
    assert analysis["moderation"]["verdict"] == "flagged"
    assert analysis["summary"][0]["speaker"] == "SPEAKER_00"
    # Without an analysis the field is null (and still valid).
    plain = json.loads(render(INTERVIEW, "json"))
    assert plain["analysis"] is None
    jsonschema.Draft202012Validator(json_doc.json_schema()).validate(plain)


def test_versions_1_and_2_are_still_read() -> None:
    document = json.loads(render(INTERVIEW, "json"))
    v2 = {k: v for k, v in document.items() if k != "analysis"} | {"version": 2}
    assert json_doc.parse(json.dumps(v2)) == INTERVIEW
    v1 = v2 | {"version": 1, "speakers": [s["id"] for s in document["speakers"]]}
    del v1["turns"]
    assert json_doc.parse(json.dumps(v1)).segments == INTERVIEW.segments
    bad = document | {"analysis": {"summary": "no"}}
    with pytest.raises(Exception, match="invalid transcript at analysis"):
        json_doc.parse(json.dumps(bad))


def test_markdown_opens_with_summary_keywords_and_chapters() -> None:
    md = render(replace(INTERVIEW, analysis=ANALYSIS), "md")
    head, _, rest = md.partition("## Transcript")
    assert rest, "the transcript follows the analysis"
    assert head.index("## Summary") < head.index("**Keywords:**") < head.index("## Chapters")
    assert "- `00:00.400` **SPEAKER\\_00:** Welcome back to the show." in head
    assert "**Keywords:** new book, special guest" in head
    assert "- `01:05` **New book** (The book)" in head
    assert r"Pandemic \*time\*" in head  # escaped: shows as written
    assert "Moderation: flagged (12 frames, policy flag)" in head
    assert "Not found in the transcript: 1999" in head
    assert "## Summary" not in render(INTERVIEW, "md")


def test_chapter_lines_are_youtube_style() -> None:
    lines = chapter_lines(replace(INTERVIEW, analysis=ANALYSIS)).splitlines()
    assert lines[0].startswith("00:00 ")
    assert all(re.match(r"^(\d+:)?\d\d:\d\d \S", line) for line in lines)
    assert chapter_time(59.99) == "00:59"
    assert chapter_time(3600) == "1:00:00"
    assert chapter_lines(INTERVIEW) == ""


def test_moderation_report_is_json() -> None:
    assert ANALYSIS.moderation is not None
    doc = json.loads(moderation_json(ANALYSIS.moderation))
    assert doc["flags"][0]["detections"][0] == {
        "label": "FACE_FEMALE", "score": 0.72, "box": [10, 20, 30, 40]
    }  # fmt: skip
    blocked = replace(ANALYSIS.moderation, policy="block")
    assert blocked.blocked
    assert blocked.verdict == "blocked"
    assert not replace(blocked, flags=()).blocked


def test_sentences_follow_punctuation_and_speakers() -> None:
    found = sentences(INTERVIEW)
    texts = [s.text for s in found]
    assert texts[:3] == [
        "Welcome back to the show.", "Today we have a very special guest with us.",
        "Thanks for having me.",
    ]  # fmt: skip
    assert found[2].speaker == "SPEAKER_01"
    assert found[0].speaker == "SPEAKER_00"
    assert all(a.end <= b.start + 1e-6 for a, b in itertools.pairwise(found))
    assert found[2].gap_before > 0
