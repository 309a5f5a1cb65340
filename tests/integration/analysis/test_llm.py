"""The LLM backend against a stand-in OpenAI-compatible server on 127.0.0.1 (real
request and response shapes, no network): chunking with map-reduce, retries (429 with
Retry-After, 5xx, a timeout), errors that must not be retried, and the check that flags
names and numbers the transcript does not contain."""

from __future__ import annotations

import json
import re
from dataclasses import replace
from typing import Any

import pytest

from reelscribe.analysis.llm import LlmClient, chunks, retry_after, transcript_lines, write_notes
from reelscribe.analysis.options import LlmOptions
from reelscribe.errors import NetworkError, ProcessingError
from reelscribe.formats import render
from reelscribe.pipeline.analyze import analyze
from tests.llmserver import ChatServer
from tests.unit.test_cues import CORPUS

INTERVIEW = CORPUS["interview"]


def _user(request: dict[str, Any]) -> str:
    return str(request["messages"][-1]["content"])


def faithful(request: dict[str, Any]) -> str:
    """A well-behaved model: notes are a chunk's first line; the summary quotes a
    sentence of the transcript."""
    text = _user(request)
    if "Transcript part:" in text:
        part = text.split("Transcript part:\n", 1)[1].split("\n\n", 1)[0]
        return json.dumps({"notes": part.splitlines()[0]})
    answer: dict[str, Any] = {
        "summary": "The host welcomes a special guest, who wrote a new book during the pandemic.",
        "action_items": ["Read the new book"],
        "questions": ["What made you write it?"],
    }
    chapters = re.findall(r"^Chapter \d+ ", text, flags=re.MULTILINE)
    if chapters:
        answer["chapter_titles"] = ["Welcome", "The new book", "Pandemic"][: len(chapters)]
    return "```json\n" + json.dumps(answer) + "\n```"


def inventive(request: dict[str, Any]) -> str:
    """A model that makes things up: a number and a name nobody said."""
    del request
    return json.dumps({"summary": "The guest sold 40000 copies of the book, says Oprah Winfrey, "
                                  "and thanks the host for having him."})  # fmt: skip


def options(server: ChatServer, **changes: Any) -> LlmOptions:
    base = LlmOptions(base_url=server.base_url, model="stand-in", api_key="sk-test",
                      timeout=1.0, max_retries=3, max_backoff=0.2)  # fmt: skip
    return replace(base, **changes)


def test_a_short_transcript_is_one_request_and_checks_out() -> None:
    with ChatServer(faithful) as server:
        opts = options(server, action_items=True, questions=True)
        out = analyze(INTERVIEW, None, None, opts)
    assert out.analysis is not None
    notes = out.analysis.llm
    assert notes is not None
    assert notes.summary.startswith("The host welcomes")
    assert notes.action_items == ("Read the new book",)
    assert notes.questions == ("What made you write it?",)
    assert notes.flagged == ()
    (request,) = server.requests
    assert request.headers["Authorization"] == "Bearer sk-test"
    assert request.body["model"] == "stand-in"
    system = request.body["messages"][0]
    assert system["role"] == "system"
    assert "ONLY the transcript" in system["content"]
    # The whole transcript went along, with times and speakers.
    assert "[00:00] SPEAKER_00: Welcome back to the show." in _user(request.body)
    assert "## Summary by stand-in" in render(out, "md")


def test_a_long_transcript_is_mapped_in_chunks_then_reduced() -> None:
    lines = transcript_lines(INTERVIEW)
    with ChatServer(faithful) as server, LlmClient(options(server, chunk_chars=120)) as client:
        notes = write_notes(client, INTERVIEW, options(server, chunk_chars=120))
    *maps, reduce = [r.body for r in server.requests]
    assert len(maps) >= 3
    parts = [_user(m).split("Transcript part:\n", 1)[1].split("\n\n", 1)[0] for m in maps]
    # Whole lines, in order, every line once, no chunk over the limit unless one line is.
    assert [line for p in parts for line in p.splitlines()] == lines
    assert all(len(p) <= 120 or "\n" not in p for p in parts)
    assert [re.search(r"part (\d+) of (\d+)", _user(m)).groups() for m in maps] == [  # type: ignore[union-attr]
        (str(i), str(len(maps))) for i in range(1, len(maps) + 1)
    ]
    for n, part in enumerate(parts, 1):
        assert f"Part {n}: {part.splitlines()[0]}" in _user(reduce)
    assert notes.summary


def test_429_honours_retry_after_and_5xx_and_timeouts_back_off() -> None:
    waits: list[float] = []
    with ChatServer(faithful) as server:
        server.failures += [(429, {"Retry-After": "0.1"}), (429, {"Retry-After": "1"}),
                            (503, {}), (0, {})]  # fmt: skip
        server.stall = 1.5
        opts = options(server, max_retries=4, max_backoff=5.0)
        with LlmClient(opts, sleep=waits.append) as client:
            reply = client.chat([{"role": "user", "content": "Transcript:\n[00:00] hi"}])
    assert json.loads(reply.strip("`json\n"))["summary"]
    assert [r.status for r in server.requests] == [429, 429, 503, 0, 200]
    # "0.1" is not delta-seconds: ordinary backoff; "1" is honoured; then 2 s, 4 s.
    assert waits == [0.5, 1.0, 2.0, 4.0]


def test_backoff_is_capped_and_retries_end() -> None:
    waits: list[float] = []
    with ChatServer(faithful) as server:
        server.failures += [(500, {})] * 3 + [(429, {"Retry-After": "3600"})]
        opts = options(server, max_retries=3, max_backoff=0.2)
        with (
            LlmClient(opts, sleep=waits.append) as client,
            pytest.raises(NetworkError, match="4 times"),
        ):
            client.chat([{"role": "user", "content": "x"}])
    assert waits == [0.2, 0.2, 0.2]
    assert len(server.requests) == 4


def test_a_refusal_is_not_retried() -> None:
    with ChatServer(faithful) as server:
        server.failures.append((401, {}))
        with LlmClient(options(server)) as client, pytest.raises(ProcessingError, match="401"):
            client.chat([{"role": "user", "content": "x"}])
    assert len(server.requests) == 1


def test_an_invented_number_and_name_are_flagged() -> None:
    with ChatServer(inventive) as server:
        out = analyze(INTERVIEW, None, None, options(server))
    assert out.analysis is not None
    assert out.analysis.llm is not None
    flagged = {c.text: c.reason for c in out.analysis.llm.flagged}
    assert flagged == {
        "40000": "number not in the transcript",
        "Oprah Winfrey": "name not in the transcript",
    }
    md = render(out, "md")
    assert "Not found in the transcript: 40000" in md


def test_chapters_get_titles_from_the_model() -> None:
    from reelscribe.analysis import Analysis, Chapter

    chapters = (
        Chapter(0.0, 4.0, "Show, guest", ("Welcome back to the show.",)),
        Chapter(4.0, 9.0, "Book", ("Let's start with your new book.",)),
    )
    titled = replace(INTERVIEW, analysis=Analysis(chapters=chapters))
    with ChatServer(faithful) as server:
        out = analyze(titled, None, None, options(server))
    assert out.analysis is not None
    assert out.analysis.llm is not None
    assert out.analysis.llm.chapter_titles == ("Welcome", "The new book")
    assert out.analysis.chapters == chapters  # the keyphrase titles stay
    prompt = _user(server.requests[0].body)
    assert "Chapter 2 (00:04): Let's start with your new book." in prompt
    assert "- `00:04` **Book** (The new book)" in render(out, "md")


def test_helpers() -> None:
    assert retry_after("7") == 7.0
    assert retry_after(None) is None
    assert retry_after("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0  # in the past
    assert chunks(["a" * 10, "b" * 10, "c" * 30], 25) == ["a" * 10 + "\n" + "b" * 10, "c" * 30]
