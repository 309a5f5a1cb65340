"""The hosted engine: any server that speaks OpenAI's audio transcription API (OpenAI,
Groq, speaches, a whisper.cpp or vLLM server, another reelscribe's ``/v1``).

- One ``POST {base_url}/audio/transcriptions`` (``/audio/translations`` to translate)
  per piece of audio: multipart ``file``, ``model``, ``language``, ``prompt``,
  ``temperature``, ``response_format=verbose_json`` and ``timestamp_granularities[]``
  word and segment.
- Upload limits: the audio is sent as 16 kHz mono Opus in Ogg (about 180 kB a minute);
  what is still over ``upload_limit`` is cut at quiet moments into pieces that overlap
  by ``overlap`` seconds. Each piece keeps the words whose middle lies between its
  cuts, so a word in the overlap is kept exactly once. A 413 from the server (its limit
  is lower than ours) cuts smaller and starts again.
- At most ``concurrency`` requests at once per engine (that is, per worker process).
- 429, 5xx, timeouts and dropped connections are retried, honouring ``Retry-After``,
  until ``max_retries`` or ``max_wait`` seconds of waiting are spent; other errors fail
  at once.
- Word timings where the server gives them; where it doesn't (translations, servers
  without word granularity) the transcribe stage spreads each segment's words evenly
  and flags them ``interpolated``.
- The API key is sent as a Bearer header and appears in no log line or error message.
"""

from __future__ import annotations

import difflib
import itertools
import logging
import math
import tempfile
import threading
import time
import zlib
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import httpx
import numpy as np
from pydantic import SecretStr

from reelscribe import __version__
from reelscribe.analysis.llm import retry_after
from reelscribe.asr.base import SAMPLE_RATE, AsrSegment, AsrWord, Audio, EngineResult
from reelscribe.config import Settings
from reelscribe.errors import HostedUploadRefusedError, NetworkError, ProcessingError
from reelscribe.media.ffmpeg import run_ffmpeg
from reelscribe.models import ModelInfo
from reelscribe.progress import ProgressCallback, report

if TYPE_CHECKING:
    from reelscribe.pipeline.transcribe import TranscribeOptions

log = logging.getLogger(__name__)

STAGE = "transcribe"
NAME = "openai-compatible"
#: Opus at this bitrate keeps speech recognisable as well as the 16 kHz WAV it replaces
#: (a 16 kHz WAV is ~1.9 MB a minute; this is ~0.18 MB).
BITRATE = "24k"

Sleep = Callable[[float], None]


@dataclass(frozen=True, slots=True)
class HostedOptions:
    base_url: str
    model: str = "whisper-1"
    api_key: SecretStr | None = None
    #: Largest upload in bytes (OpenAI's limit is 25 MB).
    upload_limit: int = 25 * 1024 * 1024
    concurrency: int = 4
    timeout: float = 300.0
    max_retries: int = 4
    #: Most seconds spent waiting between the tries of one request.
    max_wait: float = 120.0
    #: Seconds of audio on both sides of a cut that both pieces carry.
    overlap: float = 1.0

    @classmethod
    def from_settings(cls, settings: Settings) -> HostedOptions | None:
        """The configured hosted engine; None when ``hosted_asr_url`` is not set."""
        if not settings.hosted_asr_url:
            return None
        return cls(
            base_url=settings.hosted_asr_url,
            model=settings.hosted_asr_model,
            api_key=settings.hosted_asr_api_key,
            upload_limit=settings.hosted_asr_upload_limit,
            concurrency=settings.hosted_asr_concurrency,
            timeout=settings.hosted_asr_timeout,
            max_retries=settings.hosted_asr_max_retries,
            max_wait=settings.hosted_asr_max_wait,
        )


@dataclass(frozen=True, slots=True)
class Piece:
    """Samples ``[start, end)`` are uploaded; words with their middle in
    ``[keep_from, keep_to)`` (seconds of the whole audio) are kept."""

    start: int
    end: int
    keep_from: float
    keep_to: float
    data: bytes


class OpenAICompatibleEngine:
    """The hosted engine (see the module docstring). Create one per process and
    :meth:`close` it at the end; it is safe to use from several threads."""

    name = NAME

    def __init__(self, options: HostedOptions, *, sleep: Sleep = time.sleep) -> None:
        self.options = options
        self.sleep = sleep
        self.slots = threading.BoundedSemaphore(options.concurrency)
        self._http: httpx.Client | None = None
        self._lock = threading.Lock()

    @property
    def http(self) -> httpx.Client:
        """The connection pool, opened on first use (again after :meth:`close`)."""
        with self._lock:
            if self._http is None:
                headers = {"User-Agent": f"reelscribe/{__version__}"}
                if self.options.api_key is not None:
                    headers["Authorization"] = f"Bearer {self.options.api_key.get_secret_value()}"
                self._http = httpx.Client(base_url=self.options.base_url.rstrip("/"),
                                          headers=headers,
                                          timeout=self.options.timeout)  # fmt: skip
            return self._http

    def close(self) -> None:
        with self._lock:
            if self._http is not None:
                self._http.close()
                self._http = None

    @property
    def model_info(self) -> ModelInfo:
        # The path names the server only: a URL may carry credentials in its userinfo.
        url = urlsplit(self.options.base_url)
        where = f"{url.scheme}://{url.hostname}{f':{url.port}' if url.port else ''}{url.path}"
        return ModelInfo(name=self.options.model, source="hosted", path=where,
                         device="remote", compute_type="n/a")  # fmt: skip

    def transcribe(
        self, samples: Audio, options: TranscribeOptions, progress: ProgressCallback | None
    ) -> EngineResult:
        info = self.model_info
        report(progress, STAGE, 0.0, f"model {info.name} at {info.path}")
        limit = self.options.upload_limit
        refused: HostedUploadRefusedError | None = None
        for _ in range(4):  # each 413 halves the limit
            with tempfile.TemporaryDirectory(prefix="reelscribe-hosted-") as tmp:
                pieces = plan_pieces(samples, limit, self.options.overlap, Path(tmp))
            try:
                results = self._send_all(pieces, options, progress)
            except HostedUploadRefusedError as exc:
                largest = max(len(p.data) for p in pieces)
                log.warning("hosted ASR: the server refused %d bytes as too large; cutting "
                            "smaller pieces", largest)  # fmt: skip
                limit, refused = largest // 2, exc
                continue
            segments = stitch(pieces, [r[0] for r in results])
            language = options.language or _main_language(pieces, [r[1] for r in results])
            return EngineResult(
                segments=[(0.0, s) for s in segments],
                language=language,
                # The API reports no confidence; 1 when the language was given.
                language_probability=1.0 if options.language else 0.0,
                model=info,
                engine=self.name,
                mode=f"hosted, {len(pieces)} piece{'s' * (len(pieces) > 1)}",
            )
        assert refused is not None
        raise refused

    def _send_all(
        self, pieces: list[Piece], options: TranscribeOptions, progress: ProgressCallback | None
    ) -> list[tuple[list[AsrSegment], str | None]]:
        if len(pieces) == 1:
            return [self.send(pieces[0], options)]
        workers = min(len(pieces), self.options.concurrency)
        results: list[tuple[list[AsrSegment], str | None] | None] = [None] * len(pieces)
        with ThreadPoolExecutor(workers, thread_name_prefix="hosted-asr") as pool:
            futures = {pool.submit(self.send, p, options): i for i, p in enumerate(pieces)}
            try:
                for done, future in enumerate(as_completed(futures), 1):
                    results[futures[future]] = future.result()
                    # Progress is reported from this (the pipeline's) thread only: the
                    # callback may raise to abort the job.
                    report(progress, STAGE, 0.9 * done / len(pieces),
                           f"piece {done} of {len(pieces)}")  # fmt: skip
            except BaseException:
                pool.shutdown(wait=False, cancel_futures=True)
                raise
        return [r for r in results if r is not None]

    def send(self, piece: Piece, options: TranscribeOptions) -> tuple[list[AsrSegment], str | None]:
        """One piece's segments (times relative to the piece) and language code."""
        translate = options.task == "translate"
        fields: dict[str, str | list[str]] = {
            "model": self.options.model,
            "response_format": "verbose_json",
            "temperature": f"{options.temperature:g}",
        }
        if not translate:
            fields["timestamp_granularities[]"] = ["word", "segment"]
            if options.language:
                fields["language"] = options.language
        prompt = " ".join(p for p in (options.initial_prompt, options.hotwords) if p)
        if prompt:
            fields["prompt"] = prompt
        path = "/audio/translations" if translate else "/audio/transcriptions"
        body = self._post(path, fields, piece.data)
        duration = (piece.end - piece.start) / SAMPLE_RATE
        return parse_verbose_json(body, duration)

    def _post(self, path: str, fields: dict[str, str | list[str]], data: bytes) -> Any:
        options = self.options
        waited = 0.0
        last = ""
        for attempt in range(options.max_retries + 1):
            wait: float | None = None
            with self.slots:
                try:
                    files = {"file": ("audio.ogg", data, "audio/ogg")}
                    response = self.http.post(path, data=fields, files=files)
                except (httpx.TimeoutException, httpx.TransportError) as exc:
                    last = self._redact(f"{type(exc).__name__}: {exc}")
                else:
                    if response.status_code == 200:
                        return _json_or_text(response)
                    last = self._redact(f"HTTP {response.status_code}: {response.text[:200]}")
                    if response.status_code == 413:
                        raise HostedUploadRefusedError(
                            f"the hosted ASR API refused the upload: {last}"
                        )
                    if response.status_code == 429 or response.status_code >= 500:
                        wait = _retry_after(response.headers)
                    elif response.status_code != 408:
                        raise ProcessingError(f"the hosted ASR API refused the request: {last}")
            if attempt == options.max_retries:
                break
            delay = max(0.0, min(30.0, 0.5 * 2**attempt) if wait is None else wait)
            if waited + delay > options.max_wait:
                last += f" (retrying would wait {delay:.0f} s, over the limit)"
                break
            log.info("hosted ASR: %s; try %d of %d in %.1f s", last, attempt + 2,
                     options.max_retries + 1, delay)  # fmt: skip
            self.sleep(delay)
            waited += delay
        raise NetworkError(f"the hosted ASR API failed after {attempt + 1} tries; last: {last}")

    def _redact(self, text: str) -> str:
        """``text`` without the API key (a server may echo what it was sent)."""
        key = self.options.api_key
        secret = key.get_secret_value() if key is not None else ""
        return text.replace(secret, "***") if secret else text


def _retry_after(headers: httpx.Headers) -> float | None:
    """Seconds the server asks to wait: ``retry-after-ms`` (OpenAI) or ``Retry-After``."""
    millis = headers.get("retry-after-ms")
    if millis:
        try:
            return float(millis) / 1000.0
        except ValueError:
            pass
    return retry_after(headers.get("Retry-After"))


def _json_or_text(response: httpx.Response) -> Any:
    if "json" in response.headers.get("content-type", ""):
        try:
            return response.json()
        except ValueError as exc:
            raise ProcessingError(f"the hosted ASR API answered invalid JSON: {exc}") from exc
    return {"text": response.text}  # a server that ignored response_format


# --- pieces: encode, cut at quiet moments, stitch -------------------------------------


def encode(samples: Audio, folder: Path) -> bytes:
    """16 kHz mono Opus in Ogg."""
    raw = folder / "piece.f32"
    out = folder / "piece.ogg"
    raw.write_bytes(np.ascontiguousarray(samples, dtype="<f4").tobytes())
    run_ffmpeg(["-y", "-f", "f32le", "-ar", str(SAMPLE_RATE), "-ac", "1", "-i", str(raw),
                "-c:a", "libopus", "-b:a", BITRATE, "-application", "voip", "-f", "ogg",
                str(out)], what="encoding audio for the hosted ASR API")  # fmt: skip
    return out.read_bytes()


def plan_pieces(samples: Audio, limit: int, overlap: float, folder: Path) -> list[Piece]:
    """The audio as one upload, or cut at quiet moments into pieces under ``limit``."""
    total = len(samples)
    whole = encode(samples, folder)
    if len(whole) <= limit:
        return [Piece(0, total, -math.inf, math.inf, whole)]
    count = math.ceil(len(whole) / (limit * 0.9))
    pad = int(overlap * SAMPLE_RATE)
    for _ in range(8):
        cuts = quiet_cuts(samples, count)
        pieces = []
        for i, (a, b) in enumerate(itertools.pairwise(cuts)):
            start, end = max(0, a - pad), min(total, b + pad)
            keep_from = -math.inf if i == 0 else a / SAMPLE_RATE
            keep_to = math.inf if b == total else b / SAMPLE_RATE
            pieces.append(Piece(start, end, keep_from, keep_to,
                                encode(samples[start:end], folder)))  # fmt: skip
        if all(len(p.data) <= limit for p in pieces):
            return pieces
        count = math.ceil(count * 1.5)
    raise ProcessingError(f"cannot cut the audio into pieces under {limit} bytes")


def quiet_cuts(samples: Audio, count: int) -> list[int]:
    """``count + 1`` sample positions from 0 to the end: each inner cut is the middle of
    the quietest 0.2 s within a quarter piece (at most 15 s) of its even position, so a
    cut falls in a pause between words rather than in one."""
    total = len(samples)
    frame = SAMPLE_RATE // 5
    size = total / count
    search = int(min(15 * SAMPLE_RATE, size / 4))
    cuts = [0]
    for i in range(1, count):
        nominal = int(i * size)
        lo = max(cuts[-1] + frame, nominal - search)
        hi = min(total - frame, nominal + search)
        frames = (hi - lo) // frame
        if frames < 1:
            continue
        region = samples[lo : lo + frames * frame].reshape(frames, frame)
        cuts.append(lo + int(np.argmin(np.square(region).mean(axis=1))) * frame + frame // 2)
    cuts.append(total)
    return cuts


def stitch(pieces: list[Piece], results: list[list[AsrSegment]]) -> list[AsrSegment]:
    """The pieces' segments on the whole audio's timeline, each word kept once.

    At each seam both pieces hold the overlap's words whole; the seam is spliced at the
    word both pieces heard (same text, same time) nearest the cut: the first piece's
    words before it, the second's from it on. Whisper's timings at a piece's edge are
    loose (a first word often takes in the silence before it), so a rule by time alone
    drops or doubles words there. Without a common word, a word goes to the piece whose
    cuts hold its middle (also for segments without words)."""
    flats = [_flat(piece, segments) for piece, segments in zip(pieces, results, strict=True)]
    keep = [[0, len(flat)] for flat in flats]
    for k in range(1, len(pieces)):
        keep[k - 1][1], keep[k][0] = _splice(flats[k - 1], flats[k], pieces[k - 1], pieces[k])
        keep[k - 1][1] = max(keep[k - 1][1], keep[k - 1][0])
    out: list[AsrSegment] = []
    for piece, segments, (first, last) in zip(pieces, results, keep, strict=True):
        offset = piece.start / SAMPLE_RATE
        index = 0
        for seg in segments:
            if not seg.words:
                middle = offset + (seg.start + seg.end) / 2
                if piece.keep_from <= middle < piece.keep_to:
                    out.append(_shifted(seg, offset, seg.words))
                continue
            span = range(index, index + len(seg.words))
            index += len(seg.words)
            words = tuple(w for i, w in zip(span, seg.words, strict=True) if first <= i < last)
            if not words:
                continue
            if len(words) < len(seg.words):  # cut: the segment is what is left of it
                text = "".join(w.word for w in words)
                seg = replace(seg, start=words[0].start, end=words[-1].end, text=text)
            out.append(_shifted(seg, offset, words))
    return out


def _flat(piece: Piece, segments: list[AsrSegment]) -> list[tuple[str, float]]:
    """The piece's words in order: (normalised text, middle on the whole timeline)."""
    offset = piece.start / SAMPLE_RATE
    return [
        ("".join(c for c in w.word.lower() if c.isalnum()), offset + (w.start + w.end) / 2)
        for seg in segments
        for w in seg.words or ()
    ]


def _splice(
    a: list[tuple[str, float]], b: list[tuple[str, float]], first: Piece, second: Piece
) -> tuple[int, int]:
    """Where ``a`` ends and ``b`` starts (word indexes) at the seam between them."""
    cut = second.keep_from
    a_end = next((i for i, (_, mid) in enumerate(a) if mid >= cut), len(a))
    b_start = next((j for j, (_, mid) in enumerate(b) if mid >= cut), len(b))
    lo, hi = second.start / SAMPLE_RATE, first.end / SAMPLE_RATE
    ai = [i for i, (_, mid) in enumerate(a) if mid >= lo]
    bj = [j for j, (_, mid) in enumerate(b) if mid <= hi]
    matcher = difflib.SequenceMatcher(
        None, [a[i][0] for i in ai], [b[j][0] for j in bj], autojunk=False
    )
    best: tuple[float, int, int] | None = None
    for block in matcher.get_matching_blocks():
        for n in range(block.size):
            i, j = ai[block.a + n], bj[block.b + n]
            if not a[i][0] or abs(a[i][1] - b[j][1]) > 0.6:  # not the same word heard
                continue
            distance = abs(a[i][1] - cut)
            if best is None or distance < best[0]:
                best = (distance, i, j)
    return (a_end, b_start) if best is None else (best[1], best[2])


def _shifted(seg: AsrSegment, offset: float, words: tuple[AsrWord, ...] | None) -> AsrSegment:
    moved = None
    if words is not None:
        moved = tuple(replace(w, start=w.start + offset, end=w.end + offset) for w in words)
    return replace(seg, start=seg.start + offset, end=seg.end + offset, words=moved)


def _main_language(pieces: list[Piece], languages: list[str | None]) -> str:
    """The language of most of the audio (pieces may detect different ones)."""
    spoken: Counter[str] = Counter()
    for piece, language in zip(pieces, languages, strict=True):
        if language:
            spoken[language] += piece.end - piece.start
    return spoken.most_common(1)[0][0] if spoken else "und"


# --- the response ----------------------------------------------------------------------


def language_code(value: object) -> str | None:
    """OpenAI names the language ("english"); some servers give the code ("en")."""
    from reelscribe.service.openai_formats import LANGUAGES

    if not isinstance(value, str) or not value.strip():
        return None
    name = value.strip().lower()
    if name in LANGUAGES:
        return name
    return next((code for code, known in LANGUAGES.items() if known == name), name)


def parse_verbose_json(body: Any, duration: float) -> tuple[list[AsrSegment], str | None]:
    """Segments (with their words where the server gave them) from ``verbose_json``;
    a plain ``{"text"}`` answer becomes one segment over the whole piece."""
    if not isinstance(body, dict):
        raise ProcessingError("the hosted ASR API's answer is not a JSON object")
    try:
        raw_segments = [s for s in body.get("segments") or [] if isinstance(s, dict)]
        if not raw_segments and str(body.get("text") or "").strip():
            raw_segments = [{"start": 0.0, "end": float(body.get("duration") or duration),
                             "text": str(body["text"])}]  # fmt: skip
        raw_words = [w for w in body.get("words") or [] if isinstance(w, dict)]
        words_of: list[list[dict[str, Any]]] = [[] for _ in raw_segments]
        for w in raw_words:
            if raw_segments:
                words_of[_segment_of(w, raw_segments)].append(w)
        segments = [
            _segment(s, words_of[i], has_words=bool(raw_words)) for i, s in enumerate(raw_segments)
        ]
    except (KeyError, TypeError, ValueError) as exc:
        raise ProcessingError(f"the hosted ASR API's answer is not verbose_json: {exc}") from exc
    return segments, language_code(body.get("language"))


def _segment_of(word: dict[str, Any], segments: list[dict[str, Any]]) -> int:
    middle = (float(word["start"]) + float(word["end"])) / 2

    def distance(i: int) -> float:
        s = segments[i]
        return max(0.0, float(s["start"]) - middle, middle - float(s["end"]))

    return min(range(len(segments)), key=distance)


def _segment(raw: dict[str, Any], words: list[dict[str, Any]], *, has_words: bool) -> AsrSegment:
    text = str(raw.get("text") or "")
    avg_logprob = _number(raw.get("avg_logprob"))
    # Servers that give no word confidence: the segment's mean token probability.
    default_p = min(1.0, math.exp(avg_logprob)) if avg_logprob is not None else 1.0
    timed = None
    if has_words:
        texts = _word_texts(text, [str(w["word"]) for w in words])
        timed = tuple(
            AsrWord(float(w["start"]), float(w["end"]), t,
                    _probability(w.get("probability"), default_p))
            for w, t in zip(words, texts, strict=True)
        )  # fmt: skip
    ratio = _number(raw.get("compression_ratio"))
    return AsrSegment(
        start=float(raw["start"]),
        end=float(raw["end"]),
        text=text,
        words=timed,
        avg_logprob=avg_logprob if avg_logprob is not None else 0.0,
        compression_ratio=ratio if ratio is not None else compression_ratio(text),
        no_speech_prob=_number(raw.get("no_speech_prob")) or 0.0,
    )


def _number(value: object) -> float | None:
    if isinstance(value, int | float) and math.isfinite(value):
        return float(value)
    return None


def _probability(value: object, default: float) -> float:
    number = _number(value)
    return default if number is None else min(1.0, max(0.0, number))


def compression_ratio(text: str) -> float:
    """Whisper's measure of repetitiveness: text bytes over zlib-compressed bytes."""
    data = text.encode("utf-8")
    return len(data) / len(zlib.compress(data)) if data else 0.0


def _word_texts(text: str, words: list[str]) -> list[str]:
    """The words as Whisper writes them (leading space and punctuation attached, so
    they join into the segment's text), found in order in ``text``; words the text does
    not hold in that order are written `` word``."""
    starts: list[int] = []
    cursor = 0
    for word in words:
        found = text.find(word.strip(), cursor) if word.strip() else -1
        if found < 0:
            return [" " + w.strip() for w in words]
        starts.append(found)
        cursor = found + len(word.strip())
    bounds = []
    for i, found in enumerate(starts):
        floor = 0 if i == 0 else starts[i - 1] + len(words[i - 1].strip())
        while found > floor and text[found - 1].isspace():
            found -= 1
        bounds.append(0 if i == 0 else found)
    bounds.append(len(text))
    return [text[a:b] for a, b in itertools.pairwise(bounds)]
