"""The writers: each output read back by a real parser (pysrt, webvtt-py, ffmpeg,
libass, jsonschema) and checked against the transcript it came from."""

from __future__ import annotations

import html
import json
import subprocess
from dataclasses import replace
from pathlib import Path

import jsonschema
import pysrt
import pytest
import webvtt

from reelscribe.errors import InvalidInputError
from reelscribe.formats import (
    FORMATS,
    AssStyle,
    CueOptions,
    RenderOptions,
    ass,
    build_cues,
    json_doc,
    markdown,
    parse_formats,
    render,
    speaker_labeller,
    vtt,
)
from reelscribe.media.ffmpeg import ffmpeg_exe
from reelscribe.models import Segment, Transcript, TranscriptWarning, Word, format_timestamp
from tests.unit.test_cues import CORPUS, INTERVIEW, MODEL, speech, timed

REPO_ROOT = Path(__file__).resolve().parents[2]

TRICKY = timed(
    (0.5, 0.9, "Use", "Ann"), (0.95, 1.3, "{braces},", "Ann"), (1.35, 1.9, "back\\slashes", "Ann"),
    (1.95, 2.2, "&", "Ann"), (2.25, 2.8, "<tags>", "Ann"), (2.85, 3.3, "-->", "Ann"),
    (3.35, 3.9, "\\N", "Ann"), (4.0, 4.4, "Okay.", "Bob, Jr."),
)  # fmt: skip
CASES = {**CORPUS, "tricky": TRICKY}


def ffmpeg(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [ffmpeg_exe(), "-hide_banner", "-nostdin", "-loglevel", "error", *args],
        capture_output=True, cwd=cwd, check=False,
    )  # fmt: skip


def ms(seconds: float) -> int:
    return round(seconds * 1000)


# --- SRT and VTT: read back by real parsers -------------------------------------------


@pytest.mark.parametrize("name", sorted(CASES))
def test_srt_reads_back_with_pysrt(name: str) -> None:
    transcript = CASES[name]
    cues = build_cues(transcript, label=speaker_labeller(transcript, "bracket"))
    items = pysrt.from_string(render(transcript, "srt"))
    assert len(items) == len(cues)
    for number, (item, cue) in enumerate(zip(items, cues, strict=True), start=1):
        assert item.index == number
        assert item.text == cue.text
        assert (item.start.ordinal, item.end.ordinal) == (ms(cue.start), ms(cue.end))


@pytest.mark.parametrize("name", sorted(CASES))
def test_vtt_reads_back_with_webvtt(name: str) -> None:
    transcript = CASES[name]
    cues = build_cues(transcript)
    text = render(transcript, "vtt")
    assert text.startswith("WEBVTT\n\n")
    captions = webvtt.from_string(text).captions
    assert len(captions) == len(cues)
    for caption, cue in zip(captions, cues, strict=True):
        # webvtt-py leaves character references as they are in the file.
        assert html.unescape(caption.text) == cue.text
        assert caption.voice == cue.speaker
        assert (caption.start, caption.end) == (
            format_timestamp(cue.start),
            format_timestamp(cue.end),
        )


def test_vtt_escapes_markup_and_tags_speakers() -> None:
    text = render(TRICKY, "vtt")
    assert "<v Ann>Use {braces}, back\\slashes &amp; &lt;tags&gt;" in text
    assert "--&gt;" in text
    assert "<v Bob, Jr.>Okay." in text
    assert "<v " not in render(CORPUS["lecture"], "vtt")  # no speakers, no voice tags


def test_vtt_escape() -> None:
    assert vtt.escape("a<b>&c") == "a&lt;b&gt;&amp;c"


# --- ffmpeg reads every subtitle format -------------------------------------------------


@pytest.mark.parametrize("fmt", ["srt", "vtt", "ass"])
def test_ffmpeg_reads_the_subtitles(fmt: str, tmp_path: Path) -> None:
    path = tmp_path / f"subs.{fmt}"
    path.write_text(render(CORPUS["interview"], fmt), encoding="utf-8")
    # -f null needs a stream it can take: copy the subtitle stream through.
    proc = ffmpeg("-i", str(path), "-map", "0", "-c", "copy", "-f", "null", "-")
    assert proc.returncode == 0, proc.stderr.decode()


@pytest.mark.parametrize("fmt", ["srt", "vtt"])
def test_ffmpeg_converts_to_ass_keeping_the_text(fmt: str, tmp_path: Path) -> None:
    source = tmp_path / f"subs.{fmt}"
    source.write_text(render(CORPUS["lecture"], fmt), encoding="utf-8")
    proc = ffmpeg("-y", "-i", str(source), str(tmp_path / "out.ass"))
    assert proc.returncode == 0, proc.stderr.decode()
    out = (tmp_path / "out.ass").read_text(encoding="utf-8")
    dialogue = [line for line in out.splitlines() if line.startswith("Dialogue:")]
    cues = build_cues(CORPUS["lecture"])
    assert len(dialogue) == len(cues)
    for line, cue in zip(dialogue, cues, strict=True):
        assert line.endswith(",," + "\\N".join(cue.lines))


def _frame(ass_file: Path, at: float) -> bytes:
    """One grey 320x180 frame at ``at`` seconds with the subtitles burned in by libass."""
    proc = ffmpeg(
        "-f", "lavfi", "-i", "color=c=gray:s=320x180:r=10:d=6",
        "-vf", f"subtitles={ass_file.name}", "-ss", str(at), "-frames:v", "1",
        "-f", "rawvideo", "-pix_fmt", "gray", "-",
        cwd=ass_file.parent,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr.decode()
    assert len(proc.stdout) == 320 * 180
    return proc.stdout


def test_libass_burns_the_ass_in(tmp_path: Path) -> None:
    transcript = timed((1.0, 1.5, "Hello"), (1.55, 2.2, "world."), duration=6.0)
    path = tmp_path / "subs.ass"
    path.write_text(
        render(transcript, "ass", RenderOptions(video_size=(320, 180))), encoding="utf-8"
    )
    blank, shown = _frame(path, 4.5), _frame(path, 1.6)
    assert set(blank) == {blank[0]}  # nothing drawn outside the cue
    # Inside it: white text (and its dark outline) on grey, in the bottom half only.
    assert max(shown) > 240
    assert min(shown) < 60
    assert shown[: 320 * 90] == blank[: 320 * 90]


# --- ASS ----------------------------------------------------------------------------------


def _events(text: str) -> list[list[str]]:
    return [
        line.split(": ", 1)[1].split(",", 9)
        for line in text.splitlines()
        if line.startswith("Dialogue:")
    ]


def _style(text: str) -> dict[str, str]:
    fields = next(ln for ln in text.splitlines() if ln.startswith("Format: Name"))[8:].split(", ")
    values = next(ln for ln in text.splitlines() if ln.startswith("Style: "))[7:].split(",")
    return dict(zip(fields, values, strict=True))


def test_ass_events_match_the_cues() -> None:
    text = render(CORPUS["interview"], "ass")
    cues = build_cues(CORPUS["interview"], label=speaker_labeller(CORPUS["interview"], "bracket"))
    events = _events(text)
    assert len(events) == len(cues)
    for event, cue in zip(events, cues, strict=True):
        assert event[1:5] == [
            ass.ass_time(cue.start),
            ass.ass_time(cue.end),
            "Default",
            cue.speaker,
        ]
        assert event[9] == "\\N".join(cue.lines)


def test_ass_escapes_text_and_keeps_fields_apart() -> None:
    events = _events(render(TRICKY, "ass"))
    assert events[0][9].startswith("[Ann] Use \\{braces\\},")  # the label, then the text
    assert "back\\\u2060slashes & <tags> --> \\\u2060N" in events[0][9]
    assert events[1][4] == "Bob Jr."  # commas would shift the fields
    assert ass.escape("a\nb\r\n{x}") == "a\\Nb\\N\\{x\\}"


def test_ass_time_counts_centiseconds() -> None:
    assert ass.ass_time(0.0) == "0:00:00.00"
    assert ass.ass_time(3725.456) == "1:02:05.46"
    assert ass.ass_time(59.994) == "0:00:59.99"
    assert ass.ass_time(59.995) == "0:01:00.00"


def test_ass_default_style_and_size() -> None:
    text = render(CORPUS["lecture"], "ass")
    assert "PlayResX: 1280\nPlayResY: 720\n" in text
    style = _style(text)
    assert style["Fontname"] == "DejaVu Sans"
    assert style["Fontsize"] == "44"
    assert (style["PrimaryColour"], style["OutlineColour"]) == ("&H00FFFFFF", "&H00000000")
    assert style["Alignment"] == "2"


@pytest.mark.parametrize(
    ("size", "font", "margin"),
    [((1920, 1080), "66", "60"), ((1080, 1920), "66", "60"), ((640, 360), "22", "20")],
)
def test_ass_scales_to_the_video(size: tuple[int, int], font: str, margin: str) -> None:
    text = render(CORPUS["lecture"], "ass", RenderOptions(video_size=size))
    assert f"PlayResX: {size[0]}\nPlayResY: {size[1]}\n" in text
    style = _style(text)
    assert (style["Fontsize"], style["MarginV"]) == (font, margin)


def test_ass_custom_style() -> None:
    style = AssStyle(
        font_name="Liberation Sans", font_size=30, primary_colour="#FFD700",
        outline_colour="#10203040", outline=0, shadow=0, bold=True, position="top", margin_v=10,
    )  # fmt: skip
    fields = _style(render(CORPUS["lecture"], "ass", RenderOptions(ass_style=style)))
    assert fields["Fontname"] == "Liberation Sans"
    assert fields["PrimaryColour"] == "&H0000D7FF"
    assert fields["OutlineColour"] == "&HBF302010"  # opacity 0x40 is ASS alpha 0xBF
    assert (fields["Bold"], fields["Outline"], fields["Shadow"]) == ("-1", "0", "0")
    assert (fields["Alignment"], fields["MarginV"]) == ("8", "10")
    assert (
        _style(
            render(CORPUS["lecture"], "ass", RenderOptions(ass_style=AssStyle(position="middle")))
        )["Alignment"]
        == "5"
    )


@pytest.mark.parametrize(
    "kwargs",
    [
        {"primary_colour": "white"},
        {"outline_colour": "#12345"},
        {"position": "left"},
        {"font_size": 0},
        {"outline": -1},
        {"font_name": "A, B"},
    ],
)
def test_ass_style_refuses_bad_values(kwargs: dict[str, object]) -> None:
    with pytest.raises(InvalidInputError):
        AssStyle(**kwargs)  # type: ignore[arg-type]


def test_invalid_video_size_is_refused() -> None:
    with pytest.raises(InvalidInputError):
        RenderOptions(video_size=(0, 720))


# --- JSON -----------------------------------------------------------------------------


def _rich() -> Transcript:
    words = (
        Word(0.0, 0.4, " Hello,", 0.91, speaker="SPEAKER_00"),
        Word(0.4, 0.9, " world.", 0.5, interpolated=True, speaker="SPEAKER_01"),
    )
    return Transcript(
        (
            Segment(0, 0.0, 0.9, " Hello, world.", words, speaker="SPEAKER_00", avg_logprob=-0.2,
                    compression_ratio=1.1, no_speech_prob=0.02, flags=("low_confidence",)),
            Segment(1, 1.5, 3.0, " Ünïcödé and \"quotes\"."),
        ),
        "de", 0.875, 3.5, MODEL, task="translate", source_offset=12.25, dropped_segments=2,
        extra={"title": "A talk", "source_url": "https://example.com/v"},
    )  # fmt: skip


@pytest.mark.parametrize("name", [*sorted(CASES), "rich"])
def test_json_round_trips_and_validates(name: str) -> None:
    transcript = _rich() if name == "rich" else CASES[name]
    text = render(transcript, "json")
    assert json_doc.parse(text) == transcript
    assert json_doc.parse(text.encode()) == transcript
    document = json.loads(text)
    jsonschema.Draft202012Validator.check_schema(json_doc.json_schema())
    jsonschema.Draft202012Validator(json_doc.json_schema()).validate(document)
    assert document["schema"] == "reelscribe.transcript"
    assert document["version"] == 3
    assert document["text"] == transcript.text
    assert [s["id"] for s in document["speakers"]] == list(transcript.speakers)


def test_json_document_fields() -> None:
    document = json.loads(render(_rich(), "json"))
    assert list(document) == [
        "schema", "version", "language", "language_probability", "duration", "task",
        "source_offset", "model", "engine", "speakers", "turns", "text", "segments",
        "dropped_segments", "extra", "analysis", "languages", "warnings",
    ]  # fmt: skip
    segment = document["segments"][0]
    assert list(segment) == [
        "id", "start", "end", "text", "speaker", "avg_logprob", "compression_ratio",
        "no_speech_prob", "flags", "words", "language",
    ]  # fmt: skip
    assert segment["words"][1] == {
        "start": 0.4, "end": 0.9, "text": " world.", "probability": 0.5,
        "interpolated": True, "speaker": "SPEAKER_01",
    }  # fmt: skip
    assert document["model"] == {
        "name": "base", "source": "packaged", "path": "/models/base",
        "device": "cpu", "compute_type": "int8",
    }  # fmt: skip
    assert document["segments"][1]["avg_logprob"] is None


def test_json_writes_non_finite_statistics_as_null() -> None:
    segment = Segment(0, 0.0, 1.0, " x", avg_logprob=float("-inf"), no_speech_prob=float("nan"))
    document = json.loads(render(Transcript((segment,), "en", 1.0, 1.0, MODEL), "json"))
    assert document["segments"][0]["avg_logprob"] is None
    assert document["segments"][0]["no_speech_prob"] is None


def _broken(**changes: object) -> str:
    document = json.loads(render(_rich(), "json"))
    document.update(changes)
    return json.dumps(document)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{not json", "not a JSON document"),
        ("[]", "not a reelscribe transcript"),
        (_broken(schema="other"), "not a reelscribe transcript"),
        (_broken(version=4), "unsupported transcript version 4"),
        (_broken(duration="3.5"), "invalid transcript at duration"),
        (_broken(segments=[{"id": 0}]), "invalid transcript at segments.0"),
        (_broken(language_probability=1.5), "invalid transcript at language_probability"),
    ],
)
def test_json_parse_refuses_bad_documents(text: str, message: str) -> None:
    with pytest.raises(InvalidInputError, match=message):
        json_doc.parse(text)


def test_json_schema_rejects_what_parse_rejects() -> None:
    validator = jsonschema.Draft202012Validator(json_doc.json_schema())
    for bad in (_broken(version=4), _broken(duration=-1), _broken(segments=[{"id": 0}])):
        assert not validator.is_valid(json.loads(bad))
    document = json.loads(render(_rich(), "json"))
    del document["segments"][0]["words"][0]["probability"]
    assert not validator.is_valid(document)


def test_the_published_schema_is_current() -> None:
    published = REPO_ROOT / "docs" / "transcript.schema.json"
    assert published.read_text(encoding="utf-8") == json_doc.schema_text(), (
        "regenerate: python -c 'from reelscribe.formats.json_doc import schema_text; "
        'open("docs/transcript.schema.json", "w").write(schema_text())\''
    )
    assert json.loads(published.read_text(encoding="utf-8"))["$schema"].endswith("/2020-12/schema")


def test_every_schema_field_is_documented() -> None:
    doc = (REPO_ROOT / "docs" / "json-schema.md").read_text(encoding="utf-8")
    schema = json_doc.json_schema()
    objects = [schema, *schema["$defs"].values()]
    for obj in objects:
        for field in obj["properties"]:
            assert f"`{field}`" in doc, field


# --- plain text and Markdown ------------------------------------------------------------


def test_txt_is_the_text_in_paragraphs() -> None:
    transcript = CORPUS["lecture"]
    text = render(transcript, "txt")
    assert text.endswith("\n")
    assert "[" not in text
    assert " ".join(text.split()) == transcript.text


def test_txt_starts_a_paragraph_at_a_long_silence() -> None:
    segments = (
        Segment(0, 0.0, 0.5, " First."),
        Segment(1, 0.6, 1.0, " Still."),
        Segment(2, 4.0, 4.5, " Later."),
    )
    transcript = Transcript(segments, "en", 1.0, 5.0, MODEL)
    assert render(transcript, "txt") == "First. Still.\n\nLater.\n"


def test_txt_labels_speaker_turns() -> None:
    text = render(CORPUS["interview"], "txt")
    paragraphs = text.strip().split("\n\n")
    assert len(paragraphs) == len(INTERVIEW)
    for paragraph, (speaker, said) in zip(paragraphs, INTERVIEW, strict=True):
        assert paragraph == f"{speaker}: {said}"


def test_txt_splits_a_segment_by_word_speakers() -> None:
    words = (Word(0.0, 0.5, " Hi.", 0.9, speaker="A"), Word(0.6, 1.0, " Hey.", 0.9, speaker="B"))
    transcript = Transcript(
        (Segment(0, 0.0, 1.0, " Hi. Hey.", words, speaker="A"),), "en", 1, 2, MODEL
    )
    assert render(transcript, "txt") == "A: Hi.\n\nB: Hey.\n"


def test_markdown_has_title_metadata_text_and_timestamps() -> None:
    transcript = _rich()
    text = render(transcript, "md")
    lines = text.splitlines()
    assert lines[0] == "# A talk"
    assert lines[2] == (
        "*Language: de (88%) · Duration: 00:03.500 · Model: base (cpu, int8) · Task: translate"
        " · Starts at 00:12.250 in the source*"
    )
    assert "## Transcript" in lines
    assert "## Timestamped segments" in lines
    assert "- `00:00.000 → 00:00.900` **SPEAKER\\_00:** Hello, world. _(low\\_confidence)_" in lines
    assert '- `00:01.500 → 00:03.000` **Unknown:** Ünïcödé and "quotes".' in lines
    assert "## Words" not in text


def test_markdown_contains_the_full_text() -> None:
    transcript = CORPUS["lecture"]
    text = render(transcript, "md")
    body = text.split("## Transcript\n\n", 1)[1].split("\n\n## Timestamped segments", 1)[0]
    assert " ".join(body.split()) == transcript.text
    assert text.startswith("# Transcript\n")
    for seg in transcript.segments:
        start, end = (format_timestamp(t, always_hours=False) for t in (seg.start, seg.end))
        assert f"- `{start} → {end}` {seg.text.strip()}" in text


def test_markdown_groups_by_speaker_turn() -> None:
    turns = [
        ("Alice", "Good morning. How are you?"),
        ("Alice", "Sorry, I mean today."),
        ("Bob", "Fine."),
    ]
    transcript = speech(turns, turn_pause=0.2)
    body = (
        render(transcript, "md").split("## Transcript\n\n", 1)[1].split("\n\n## Timestamped", 1)[0]
    )
    paragraphs = body.split("\n\n")
    # Alice's two turns in a row are one turn: one label, one paragraph.
    assert len(paragraphs) == 2
    assert paragraphs[0].startswith(
        "**Alice** (00:00.400): Good morning. How are you? Sorry, I mean today."
    )
    assert paragraphs[1].startswith("**Bob** (")
    assert paragraphs[1].endswith("): Fine.")


def test_markdown_words_section() -> None:
    text = render(_rich(), "md", RenderOptions(words_in_markdown=True))
    assert "## Words" in text
    assert "| 00:00.000 | 00:00.400 | Hello, | 0.91 |" in text
    assert "| 00:00.400 | 00:00.900 | world. (interpolated) | 0.50 |" in text


def test_markdown_escapes_markup() -> None:
    assert markdown.escape("*bold* _x_ [link](y) <b> a|b #1") == (
        "\\*bold\\* \\_x\\_ \\[link\\](y) \\<b\\> a\\|b \\#1"
    )
    assert markdown.escape("1. first") == "1\\. first"
    assert markdown.escape("- item") == "\\- item"
    assert markdown.escape("well - fine") == "well - fine"


# --- the registry -----------------------------------------------------------------------


def test_formats_registry() -> None:
    assert {name: f.extension for name, f in FORMATS.items()} == {
        "srt": ".srt", "vtt": ".vtt", "txt": ".txt", "json": ".json", "md": ".md", "ass": ".ass",
        "rttm": ".rttm",
    }  # fmt: skip
    for name, fmt in FORMATS.items():
        assert fmt.render(CORPUS["interview"], None) == render(CORPUS["interview"], name)


def test_render_passes_cue_options_to_every_subtitle_format() -> None:
    opts = RenderOptions(cue=CueOptions(max_chars_per_line=20, max_lines=1))
    cues = build_cues(CORPUS["lecture"], opts.cue)
    assert len(pysrt.from_string(render(CORPUS["lecture"], "srt", opts))) == len(cues)
    assert len(webvtt.from_string(render(CORPUS["lecture"], "vtt", opts)).captions) == len(cues)
    assert len(_events(render(CORPUS["lecture"], "ass", opts))) == len(cues)


def test_empty_transcript_renders_everywhere() -> None:
    empty = Transcript((), "en", 0.0, 0.0, MODEL)
    assert render(empty, "srt") == ""
    assert render(empty, "vtt") == "WEBVTT\n"
    assert render(empty, "txt") == ""
    assert json_doc.parse(render(empty, "json")) == empty
    assert "[Events]" in render(empty, "ass")
    assert render(empty, "md").startswith("# Transcript\n")
    assert render(empty, "rttm") == ""


def test_unknown_format_is_refused_with_the_valid_names() -> None:
    with pytest.raises(
        InvalidInputError,
        match="unknown format 'docx': choose from srt, vtt, txt, json, md, ass, rttm",
    ):
        render(CORPUS["lecture"], "docx")


def test_parse_formats() -> None:
    assert parse_formats("srt,vtt") == ("srt", "vtt")
    assert parse_formats(" SRT , markdown,.vtt,srt ") == ("srt", "md", "vtt")
    with pytest.raises(InvalidInputError, match="unknown format 'pdf'"):
        parse_formats("srt,pdf")
    with pytest.raises(InvalidInputError, match="no format given"):
        parse_formats(" , ")


def test_the_documented_example_is_a_valid_document() -> None:
    doc = (REPO_ROOT / "docs" / "json-schema.md").read_text(encoding="utf-8")
    example = doc.split("```json\n", 1)[1].split("```", 1)[0]
    jsonschema.Draft202012Validator(json_doc.json_schema()).validate(json.loads(example))
    assert json_doc.parse(example).segments[0].words[1].text == " so,"


def _mixed() -> Transcript:
    """English, then German, with a warning."""
    rich = _rich()
    return replace(
        rich,
        segments=(
            replace(rich.segments[0], language="de"),
            replace(rich.segments[1], language="en"),
        ),
        warnings=(TranscriptWarning(3.0, 3.5, "hallucination_guard", "dropped (repetition): x"),),
    )


def test_json_languages_and_warnings_are_written_and_older_documents_still_read() -> None:
    text = render(_mixed(), "json")
    assert json_doc.parse(text) == _mixed()
    jsonschema.Draft202012Validator(json_doc.json_schema()).validate(json.loads(text))
    document = json.loads(text)
    assert document["languages"] == ["de", "en"]
    assert [s["language"] for s in document["segments"]] == ["de", "en"]
    assert document["warnings"] == [
        {"start": 3.0, "end": 3.5, "reason": "hallucination_guard",
         "detail": "dropped (repetition): x"},
    ]  # fmt: skip
    # A version-3 document written before segments had languages and before warnings.
    del document["languages"], document["warnings"]
    for segment in document["segments"]:
        del segment["language"]
    older = json_doc.parse(json.dumps(document))
    assert older.warnings == ()
    assert all(s.language is None for s in older.segments)
    assert older.languages == ("de",)  # the transcript's language stands in


def test_markdown_marks_a_change_of_language_and_lists_warnings() -> None:
    text = render(_mixed(), "md")
    assert "Languages: de, en" in text
    de, en = text.index("*Language: de*"), text.index("*Language: en*")
    assert de < text.index("Hello,", de) < en < text.index("Ünïcödé", en)
    assert "## Warnings" in text
    assert "hallucination\\_guard: dropped (repetition): x" in text
