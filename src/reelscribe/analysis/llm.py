"""An optional LLM backend: any OpenAI-compatible chat endpoint (Ollama, llama.cpp
server, vLLM, OpenAI, Groq) writes an abstractive summary, a title for each chapter
(when the chapters stage ran), and action items or open questions when asked.

- One ``POST {base_url}/chat/completions`` per request, the API's own request and
  response shapes; the URL, model and key come from the operator's settings only.
- Long transcripts are cut into chunks of whole sentences (map: notes per chunk) and
  the notes are merged in one last request (reduce).
- The prompt insists on the transcript alone; the answer is still checked: every
  number, capitalised name and quoted phrase must occur in the transcript, or it is
  listed in ``flagged``.
- 429 (honouring Retry-After), 5xx, timeouts and dropped connections are retried with
  capped exponential backoff; other errors fail at once.

Nothing in the default path needs it.
"""

from __future__ import annotations

import email.utils
import json
import re
import time
from collections.abc import Callable
from types import TracebackType
from typing import Any, Self

import httpx

from reelscribe import __version__
from reelscribe.analysis.options import LlmOptions
from reelscribe.analysis.results import Claim, LlmNotes
from reelscribe.analysis.sentences import sentences
from reelscribe.errors import NetworkError, ProcessingError
from reelscribe.formats.tokens import normalize
from reelscribe.models import Transcript, format_timestamp
from reelscribe.progress import ProgressCallback, report

SYSTEM = (
    "You summarise transcripts of recordings. Use ONLY the transcript you are given: "
    "never add names, numbers, dates, places or facts that it does not contain, and do "
    "not guess what is unclear. Quote names and numbers exactly as the transcript has "
    "them. Reply with JSON only, no other text."
)
MAP_PROMPT = (
    "Here is part {part} of {parts} of a transcript. Write concise notes of what is said "
    "in this part only (main points, decisions, names and numbers as they appear).\n\n"
    "Transcript part:\n{text}\n\n"
    'Reply as JSON: {{"notes": "..."}}'
)
REDUCE_PROMPT = (
    "{source}\n\n"
    "Write a summary of the whole recording in a few sentences.{extras}\n"
    'Reply as JSON: {{"summary": "..."{fields}}}'
)

#: Characters of each chapter's summary shown to the model when it titles chapters.
CHAPTER_EXCERPT = 400

Sleep = Callable[[float], None]


class LlmClient:
    """A small client for ``/chat/completions`` with retries."""

    def __init__(self, options: LlmOptions, *, sleep: Sleep = time.sleep) -> None:
        self.options = options
        self.sleep = sleep
        headers = {"User-Agent": f"reelscribe/{__version__}"}
        if options.api_key:
            headers["Authorization"] = f"Bearer {options.api_key}"
        self.http = httpx.Client(base_url=options.base_url.rstrip("/"), headers=headers,
                                 timeout=options.timeout)  # fmt: skip
        #: Requests made (attempts included), for progress and tests.
        self.attempts = 0

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.http.close()

    def chat(self, messages: list[dict[str, str]]) -> str:
        """The assistant's reply to ``messages``."""
        body = {"model": self.options.model, "messages": messages, "temperature": 0}
        last = ""
        for attempt in range(self.options.max_retries + 1):
            self.attempts += 1
            wait: float | None
            try:
                response = self.http.post("/chat/completions", json=body)
            except (httpx.TimeoutException, httpx.TransportError) as exc:
                last, wait = f"{type(exc).__name__}: {exc}", None
            else:
                if response.status_code == 200:
                    return _content(response)
                last = f"HTTP {response.status_code}: {response.text[:200]}"
                if response.status_code == 429:
                    wait = retry_after(response.headers.get("Retry-After"))
                elif response.status_code >= 500:
                    wait = None
                else:  # 400, 401, 404...: the request or the set-up is wrong
                    raise ProcessingError(f"the LLM endpoint refused the request: {last}")
            if attempt == self.options.max_retries:
                break
            backoff = 0.5 * 2**attempt if wait is None else wait
            self.sleep(min(self.options.max_backoff, max(0.0, backoff)))
        raise NetworkError(
            f"the LLM endpoint failed {self.options.max_retries + 1} times; last: {last}"
        )


def retry_after(value: str | None) -> float | None:
    """Seconds from a Retry-After header (delta seconds or an HTTP date)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def _content(response: httpx.Response) -> str:
    try:
        data = response.json()
        content = data["choices"][0]["message"]["content"]
    except (ValueError, KeyError, IndexError, TypeError) as exc:
        raise ProcessingError(f"the LLM endpoint's reply is not a chat completion: {exc}") from exc
    if not isinstance(content, str):
        raise ProcessingError("the LLM endpoint's reply has no text content")
    return content


# --- the transcript in, notes out --------------------------------------------------------


def transcript_lines(transcript: Transcript) -> list[str]:
    """``[01:15] Name: sentence`` lines: times and speakers let the model keep them."""
    out = []
    for s in sentences(transcript):
        who = f"{transcript.speaker_name(s.speaker)}: " if s.speaker else ""
        out.append(f"[{format_timestamp(s.start, always_hours=False)[:-4]}] {who}{s.text}")
    return out


def chunks(lines: list[str], limit: int) -> list[str]:
    """Whole lines, at most ``limit`` characters a chunk (a longer line is its own)."""
    out: list[str] = []
    current: list[str] = []
    size = 0
    for line in lines:
        if current and size + len(line) + 1 > limit:
            out.append("\n".join(current))
            current, size = [], 0
        current.append(line)
        size += len(line) + 1
    if current:
        out.append("\n".join(current))
    return out


def parse_json(text: str) -> dict[str, Any]:
    """The JSON object in a reply (code fences and chatter around it tolerated)."""
    match = re.search(r"\{.*\}", text, flags=re.DOTALL)
    if match is not None:
        try:
            value = json.loads(match.group(0))
        except ValueError:
            value = None
        if isinstance(value, dict):
            return value
    return {"summary": text.strip()}


def _strings(value: object) -> tuple[str, ...]:
    if isinstance(value, list):
        return tuple(normalize(str(v)) for v in value if str(v).strip())
    return ()


def write_notes(
    client: LlmClient,
    transcript: Transcript,
    options: LlmOptions,
    progress: ProgressCallback | None = None,
) -> LlmNotes:
    parts = chunks(transcript_lines(transcript), options.chunk_chars)
    if len(parts) <= 1:
        source = "Transcript:\n" + (parts[0] if parts else "")
    else:
        notes = []
        for n, part in enumerate(parts, 1):
            report(progress, "llm", (n - 1) / (len(parts) + 1), f"part {n} of {len(parts)}")
            reply = client.chat([
                {"role": "system", "content": SYSTEM},
                {"role": "user", "content": MAP_PROMPT.format(part=n, parts=len(parts), text=part)},
            ])  # fmt: skip
            parsed = parse_json(reply)
            notes.append(str(parsed.get("notes") or parsed.get("summary") or ""))
        source = "Notes on consecutive parts of one transcript:\n" + "\n".join(
            f"Part {n}: {note}" for n, note in enumerate(notes, 1)
        )
    extras, fields = "", ""
    chapters = transcript.analysis.chapters if transcript.analysis is not None else ()
    if chapters:
        source += "\n\nThe recording has these chapters:\n" + "\n".join(
            f"Chapter {n} ({format_timestamp(c.start, always_hours=False)[:-4]}): "
            + " ".join(c.summary)[:CHAPTER_EXCERPT]
            for n, c in enumerate(chapters, 1)
        )
        extras += f" Give each of the {len(chapters)} chapters a short title (2 to 6 words)."
        fields += ', "chapter_titles": ["..."]'
    if options.action_items:
        extras += " List the action items (who does what) that are stated."
        fields += ', "action_items": ["..."]'
    if options.questions:
        extras += " List the questions that are raised and left open."
        fields += ', "questions": ["..."]'
    report(progress, "llm", len(parts) / (len(parts) + 1), "writing the summary")
    reply = client.chat([
        {"role": "system", "content": SYSTEM},
        {"role": "user", "content": REDUCE_PROMPT.format(source=source, extras=extras,
                                                         fields=fields)},
    ])  # fmt: skip
    parsed = parse_json(reply)
    summary = normalize(str(parsed.get("summary") or ""))
    if not summary:
        raise ProcessingError("the LLM endpoint returned no summary")
    action_items = _strings(parsed.get("action_items")) if options.action_items else ()
    questions = _strings(parsed.get("questions")) if options.questions else ()
    titles = _strings(parsed.get("chapter_titles"))[: len(chapters)] if chapters else ()
    if len(titles) != len(chapters):
        titles = ()  # a list that does not match the chapters one to one is useless
    checked = " ".join([summary, *action_items, *questions, *(f"{t}." for t in titles)])
    flagged = unsupported_claims(checked, transcript.text)
    return LlmNotes(options.model, summary, action_items, questions, titles, flagged)


# --- checking the output against the transcript ------------------------------------------

_NUMBER = re.compile(r"\d+(?:[.,:]\d+)*")
_QUOTED = re.compile(r"[\"“”]([^\"“”]{2,80})[\"“”]")
_NAME = re.compile(r"(?<![.!?]\s)(?<!^)\b([A-Z][a-zA-Z'’-]+(?:\s+[A-Z][a-zA-Z'’-]+)*)")
_SMALL = [
    "zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten",
    "eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen",
    "nineteen", "twenty",
]  # fmt: skip
_TENS = {"thirty": 30, "forty": 40, "fifty": 50, "sixty": 60, "seventy": 70, "eighty": 80,
         "ninety": 90, "hundred": 100, "thousand": 1000}  # fmt: skip
#: Capitalised words that are not names (sentence openers the regex cannot see).
_NOT_NAMES = {"I", "I'm", "I've", "I'll", "I'd", "OK", "Okay"}


def _numbers_in(text: str) -> set[str]:
    found = {n.replace(",", "") for n in _NUMBER.findall(text)}
    words = re.findall(r"[a-z]+", text.lower())
    found |= {str(_SMALL.index(w)) for w in words if w in _SMALL}
    found |= {str(_TENS[w]) for w in words if w in _TENS}
    return found


def unsupported_claims(output: str, transcript_text: str) -> tuple[Claim, ...]:
    """Numbers, names and quotes in ``output`` that ``transcript_text`` does not have."""
    source = normalize(transcript_text).lower()
    numbers = _numbers_in(transcript_text)
    claims: dict[str, Claim] = {}
    for number in _NUMBER.findall(output):
        if number.replace(",", "") not in numbers:
            claims.setdefault(number, Claim(number, "number not in the transcript"))
    for quote in _QUOTED.findall(output):
        if normalize(quote).lower().strip(" .,") not in source:
            claims.setdefault(quote, Claim(quote, "quote not in the transcript"))
    for sentence in re.split(r"(?<=[.!?])\s+", output):
        for match in _NAME.finditer(sentence):
            if match.start() == 0:
                continue  # a sentence's first word is capitalised anyway
            name = match.group(1)
            if name in _NOT_NAMES:
                continue
            if not re.search(r"\b" + re.escape(name.lower()) + r"\b", source):
                claims.setdefault(name, Claim(name, "name not in the transcript"))
    return tuple(claims.values())
