"""The JSON transcript document: a versioned, documented schema (docs/json-schema.md).

The document's shape is declared once, as the TypedDicts below; they type the
writer, validate the reader (through pydantic) and generate the JSON Schema, so
the three cannot drift apart. ``version`` changes only when a field is removed,
renamed or changes meaning; new fields may be added within a version, so readers
should ignore fields they do not know.
"""

from __future__ import annotations

import json
import math
from functools import lru_cache
from typing import Annotated, Any, Literal, NotRequired

from pydantic import Field, TypeAdapter, ValidationError
from typing_extensions import TypedDict  # pydantic needs this one before Python 3.12

from reelscribe.analysis.results import (
    Analysis,
    Chapter,
    Claim,
    Detection,
    Keyword,
    LlmNotes,
    ModerationFlag,
    ModerationReport,
    SummarySentence,
)
from reelscribe.errors import InvalidInputError
from reelscribe.formats.options import RenderOptions
from reelscribe.formats.turns import talk_times
from reelscribe.models import (
    EngineInfo,
    ModelInfo,
    Segment,
    SpeakerTurn,
    Transcript,
    TranscriptWarning,
    Word,
)

SCHEMA_NAME = "reelscribe.transcript"
#: 2: ``speakers`` became objects (id, name, talk time) and ``turns`` was added.
#: 3: ``analysis`` (summary, keywords, chapters, moderation, LLM notes) was added.
SCHEMA_VERSION = 3

Seconds = Annotated[float, Field(ge=0, description="Seconds from the start of the clip.")]


class WordDoc(TypedDict):
    """One word with its timing."""

    start: Seconds
    end: Seconds
    text: Annotated[str, Field(description="As the model wrote it, leading space included.")]
    probability: Annotated[float, Field(ge=0, le=1, description="The model's confidence.")]
    interpolated: Annotated[bool, Field(description="Timing spread evenly, not measured.")]
    speaker: Annotated[str | None, Field(description="Speaker id, null without speakers.")]


class SegmentDoc(TypedDict):
    """A stretch of speech as the model decoded it."""

    id: Annotated[int, Field(description="Position of the segment, from 0.")]
    start: Seconds
    end: Seconds
    text: Annotated[str, Field(description="The segment's text as decoded.")]
    speaker: Annotated[
        str | None, Field(description="Speaker id (see speakers), null without speakers.")
    ]
    avg_logprob: Annotated[float | None, Field(description="Mean token log-probability.")]
    compression_ratio: Annotated[float | None, Field(description="gzip ratio of the text.")]
    no_speech_prob: Annotated[float | None, Field(description="Probability of no speech.")]
    flags: Annotated[list[str], Field(description="Quality warnings; empty when clean.")]
    words: Annotated[list[WordDoc], Field(description="Empty without word timestamps.")]
    # Added within version 3: absent from older documents, always written now.
    language: NotRequired[
        Annotated[str | None, Field(description="Spoken language this segment was decoded as.")]
    ]


class WarningDoc(TypedDict):
    """A stretch where speech may have been lost."""

    start: Seconds
    end: Seconds
    reason: Annotated[
        str, Field(description='"uncovered_speech" or "hallucination_guard" (more may come).')
    ]
    detail: Annotated[str, Field(description="What happened, for people (dropped text).")]


class ModelDoc(TypedDict):
    """The Whisper model that made the transcript."""

    name: Annotated[str, Field(description='Model name, e.g. "base".')]
    source: Annotated[str, Field(description='"local", "packaged" or "hub".')]
    path: Annotated[str, Field(description="Where the weights were loaded from.")]
    device: Annotated[str, Field(description='"cpu" or "cuda".')]
    compute_type: Annotated[str, Field(description='CTranslate2 compute type, e.g. "int8".')]


class EngineDoc(TypedDict):
    """The ASR engine that made the transcript."""

    name: Annotated[str, Field(description='"faster-whisper" or "openai-compatible".')]
    model: Annotated[str, Field(description="The model it ran.")]
    fallback_from: Annotated[
        str | None, Field(description="The engine that failed first; null without a fallback.")
    ]


class SpeakerDoc(TypedDict):
    """One speaker: the id segments and words carry, and the name to show."""

    id: Annotated[str, Field(description='Stable id, e.g. "SPEAKER_00".')]
    name: Annotated[str, Field(description="Display name (the id until renamed).")]
    talk_time: Annotated[float, Field(ge=0, description="Seconds this speaker talks.")]


class TurnDoc(TypedDict):
    """A stretch in which one speaker talks; turns may overlap."""

    start: Seconds
    end: Seconds
    speaker: Annotated[str, Field(description="Speaker id.")]


class SummarySentenceDoc(TypedDict):
    """A sentence of the transcript, word for word, picked for the summary."""

    start: Seconds
    end: Seconds
    text: Annotated[str, Field(description="The sentence as the transcript has it.")]
    speaker: Annotated[str | None, Field(description="Speaker id, null without speakers.")]
    score: Annotated[float, Field(ge=0, le=1, description="Centrality, 1 = most central.")]


class KeywordDoc(TypedDict):
    text: Annotated[str, Field(description="A keyword or keyphrase from the transcript.")]
    score: Annotated[float, Field(ge=0, le=1, description="Relevance, higher is better.")]


class ChapterDoc(TypedDict):
    """A topic segment."""

    start: Seconds
    end: Seconds
    title: Annotated[str, Field(description="Built from the chapter's keyphrases.")]
    line: Annotated[str, Field(description='YouTube-style line, e.g. "01:15 Title".')]
    summary: Annotated[list[str], Field(description="The chapter's central sentences.")]
    keywords: Annotated[list[str], Field(description="The chapter's keyphrases.")]


class DetectionDoc(TypedDict):
    label: Annotated[str, Field(description='Detector label, e.g. "FACE_FEMALE".')]
    score: Annotated[float, Field(ge=0, le=1)]
    box: Annotated[list[int], Field(description="x, y, width, height in frame pixels.")]


class FlagDoc(TypedDict):
    """A sampled frame with detections."""

    time: Annotated[float, Field(ge=0, description="Seconds on the source's timeline.")]
    unsafe: Annotated[bool, Field(description="A detection has an unsafe label.")]
    detections: list[DetectionDoc]
    thumbnail: Annotated[str, Field(description="data: URI of a small JPEG, blurred if unsafe.")]


class ModerationDoc(TypedDict):
    """Content moderation of the video's frames."""

    verdict: Annotated[
        Literal["skipped", "safe", "flagged", "blocked"], Field(description="The outcome.")
    ]
    policy: Annotated[Literal["off", "flag", "block"], Field(description="Policy applied.")]
    frames: Annotated[int, Field(ge=0, description="Frames checked.")]
    interval: Annotated[float, Field(gt=0, description="At least one frame every N s.")]
    threshold: Annotated[float, Field(description="Detector score that counts.")]
    unsafe_labels: Annotated[list[str], Field(description="Labels that make a frame unsafe.")]
    skipped: Annotated[str | None, Field(description="Why nothing was checked.")]
    flags: Annotated[list[FlagDoc], Field(description="Frames with detections.")]


class ClaimDoc(TypedDict):
    text: Annotated[str, Field(description="A name or number the LLM wrote.")]
    reason: Annotated[str, Field(description="Why it is flagged.")]


class LlmDoc(TypedDict):
    """What an OpenAI-compatible model wrote; flagged claims are not in the transcript."""

    model: str
    summary: str
    action_items: list[str]
    questions: list[str]
    chapter_titles: Annotated[list[str], Field(description="A title per chapter, in order.")]
    flagged: list[ClaimDoc]


class AnalysisDoc(TypedDict):
    """What the recording is about, and whether it is safe to publish."""

    summary: Annotated[list[SummarySentenceDoc], Field(description="In time order.")]
    keywords: Annotated[list[KeywordDoc], Field(description="Best first.")]
    chapters: Annotated[list[ChapterDoc], Field(description="In time order.")]
    moderation: Annotated[ModerationDoc | None, Field(description="Null when not run.")]
    llm: Annotated[LlmDoc | None, Field(description="Null without an LLM backend.")]
    methods: Annotated[dict[str, str], Field(description="What made each part.")]


class TranscriptDoc(TypedDict):
    """A reelscribe transcript."""

    schema: Annotated[Literal["reelscribe.transcript"], Field(description="Document kind.")]
    version: Annotated[Literal[3], Field(description="Schema version.")]
    language: Annotated[str, Field(description='ISO 639-1 code, e.g. "en".')]
    language_probability: Annotated[
        float, Field(ge=0, le=1, description="Confidence of the language detection.")
    ]
    duration: Annotated[float, Field(ge=0, description="Length of the transcribed audio.")]
    task: Annotated[str, Field(description='"transcribe" or "translate".')]
    source_offset: Annotated[float, Field(ge=0, description="Clip start in the source.")]
    model: Annotated[ModelDoc, Field(description="The model that made the transcript.")]
    engine: Annotated[EngineDoc, Field(description="The engine that made the transcript.")]
    speakers: Annotated[
        list[SpeakerDoc], Field(description="Speakers in order of first appearance.")
    ]
    turns: Annotated[
        list[TurnDoc], Field(description="Who spoke when (diarization); empty without it.")
    ]
    text: Annotated[str, Field(description="The whole transcript as one string.")]
    segments: Annotated[list[SegmentDoc], Field(description="In time order.")]
    dropped_segments: Annotated[int, Field(ge=0, description="Segments removed as unusable.")]
    extra: Annotated[dict[str, str], Field(description="Free-form metadata (e.g. title).")]
    analysis: Annotated[
        AnalysisDoc | None, Field(description="Summary, keywords, chapters, moderation.")
    ]
    # Added within version 3: absent from older documents, always written now.
    languages: NotRequired[
        Annotated[list[str], Field(description="Spoken languages, in order of appearance.")]
    ]
    warnings: NotRequired[
        Annotated[list[WarningDoc], Field(description="Where speech may have been lost.")]
    ]


@lru_cache(maxsize=1)
def _adapter() -> TypeAdapter[TranscriptDoc]:
    return TypeAdapter(TranscriptDoc)


def json_schema() -> dict[str, Any]:
    """JSON Schema (draft 2020-12) of the document; docs/transcript.schema.json is
    this, written by :func:`schema_text` (a test keeps the two equal)."""
    schema = _adapter().json_schema()
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        **schema,
        "title": f"reelscribe transcript, version {SCHEMA_VERSION}",
    }


def schema_text() -> str:
    return json.dumps(json_schema(), indent=2, ensure_ascii=False) + "\n"


def to_document(transcript: Transcript) -> TranscriptDoc:
    m = transcript.model
    return {
        "schema": "reelscribe.transcript",
        "version": 3,
        "language": transcript.language,
        "language_probability": transcript.language_probability,
        "duration": transcript.duration,
        "task": transcript.task,
        "source_offset": transcript.source_offset,
        "model": {
            "name": m.name,
            "source": m.source,
            "path": m.path,
            "device": m.device,
            "compute_type": m.compute_type,
        },
        "engine": _engine_doc(transcript),
        "speakers": [
            {"id": speaker, "name": transcript.speaker_name(speaker), "talk_time": seconds}
            for speaker, seconds in talk_times(transcript).items()
        ],
        "turns": [{"start": t.start, "end": t.end, "speaker": t.speaker} for t in transcript.turns],
        "text": transcript.text,
        "segments": [_segment_doc(s) for s in transcript.segments],
        "dropped_segments": transcript.dropped_segments,
        "extra": dict(transcript.extra),
        "analysis": None if transcript.analysis is None else analysis_doc(transcript.analysis),
        "languages": list(transcript.languages),
        "warnings": [
            {"start": w.start, "end": w.end, "reason": w.reason, "detail": w.detail}
            for w in transcript.warnings
        ],
    }


def _engine_doc(transcript: Transcript) -> EngineDoc:
    engine = transcript.made_by
    return {"name": engine.name, "model": engine.model, "fallback_from": engine.fallback_from}


def analysis_doc(analysis: Analysis) -> AnalysisDoc:
    from reelscribe.formats.analysis import chapter_line_list, moderation_doc

    lines = chapter_line_list(analysis.chapters)
    llm = analysis.llm
    return {
        "summary": [
            {"start": s.start, "end": s.end, "text": s.text, "speaker": s.speaker, "score": s.score}
            for s in analysis.summary
        ],
        "keywords": [{"text": k.text, "score": k.score} for k in analysis.keywords],
        "chapters": [
            {
                "start": c.start,
                "end": c.end,
                "title": c.title,
                "line": line,
                "summary": list(c.summary),
                "keywords": list(c.keywords),
            }
            for c, line in zip(analysis.chapters, lines, strict=True)
        ],
        "moderation": None if analysis.moderation is None else moderation_doc(analysis.moderation),  # type: ignore[typeddict-item]
        "llm": None
        if llm is None
        else {
            "model": llm.model,
            "summary": llm.summary,
            "action_items": list(llm.action_items),
            "questions": list(llm.questions),
            "chapter_titles": list(llm.chapter_titles),
            "flagged": [{"text": c.text, "reason": c.reason} for c in llm.flagged],
        },
        "methods": dict(analysis.methods),
    }


def _finite(value: float | None) -> float | None:
    # JSON has no NaN or infinity; an unknown statistic is null.
    return value if value is not None and math.isfinite(value) else None


def _segment_doc(s: Segment) -> SegmentDoc:
    return {
        "id": s.id,
        "start": s.start,
        "end": s.end,
        "text": s.text,
        "speaker": s.speaker,
        "avg_logprob": _finite(s.avg_logprob),
        "compression_ratio": _finite(s.compression_ratio),
        "no_speech_prob": _finite(s.no_speech_prob),
        "flags": list(s.flags),
        "words": [
            {
                "start": w.start,
                "end": w.end,
                "text": w.text,
                "probability": w.probability,
                "interpolated": w.interpolated,
                "speaker": w.speaker,
            }
            for w in s.words
        ],
        "language": s.language,
    }


def render(transcript: Transcript, options: RenderOptions | None = None) -> str:
    del options  # the document has no presentation options; the signature is shared
    return json.dumps(to_document(transcript), indent=2, ensure_ascii=False) + "\n"


def parse(text: str | bytes) -> Transcript:
    """Reads a document written by :func:`render` (version 3, or an older 1 or 2)."""
    try:
        raw = json.loads(text)
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidInputError(f"not a JSON document: {exc}") from exc
    if not isinstance(raw, dict) or raw.get("schema") != SCHEMA_NAME:
        raise InvalidInputError(f'not a reelscribe transcript (no "schema": "{SCHEMA_NAME}")')
    if raw.get("version") == 1:
        raw = _upgrade_v1(raw)
    if raw.get("version") == 2:
        # Version 3 only added the analysis; a version 2 document has none.
        raw = raw | {"version": SCHEMA_VERSION, "analysis": None}
    if raw.get("version") == SCHEMA_VERSION and "engine" not in raw:
        # Written before engines were recorded: faster-whisper made it.
        model = raw.get("model")
        name = model.get("name") if isinstance(model, dict) else None
        raw = raw | {"engine": {"name": "faster-whisper", "model": name or "",
                                "fallback_from": None}}  # fmt: skip
    if raw.get("version") != SCHEMA_VERSION:
        raise InvalidInputError(
            f"unsupported transcript version {raw.get('version')!r}: "
            f"this reelscribe reads versions 1 to {SCHEMA_VERSION}"
        )
    try:
        doc = _adapter().validate_python(raw, strict=True)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise InvalidInputError(f"invalid transcript at {where}: {first['msg']}") from exc
    return from_document(doc)


def _upgrade_v1(raw: dict[str, Any]) -> dict[str, Any]:
    speakers = raw.get("speakers")
    if isinstance(speakers, list):
        # Version 1 listed bare labels; they become ids named after themselves.
        speakers = [{"id": s, "name": s, "talk_time": 0.0} if isinstance(s, str) else s
                    for s in speakers]  # fmt: skip
    return raw | {"version": 2, "speakers": speakers, "turns": []}


def from_document(doc: TranscriptDoc) -> Transcript:
    m = doc["model"]
    return Transcript(
        segments=tuple(_segment(s) for s in doc["segments"]),
        language=doc["language"],
        language_probability=float(doc["language_probability"]),
        duration=float(doc["duration"]),
        model=ModelInfo(m["name"], m["source"], m["path"], m["device"], m["compute_type"]),
        task=doc["task"],
        source_offset=float(doc["source_offset"]),
        dropped_segments=doc["dropped_segments"],
        extra=dict(doc["extra"]),
        turns=tuple(
            SpeakerTurn(float(t["start"]), float(t["end"]), t["speaker"]) for t in doc["turns"]
        ),
        speaker_names={s["id"]: s["name"] for s in doc["speakers"] if s["name"] != s["id"]},
        analysis=None if doc["analysis"] is None else _analysis(doc["analysis"]),
        engine=_engine(doc["engine"], m["name"]),
        warnings=tuple(
            TranscriptWarning(float(w["start"]), float(w["end"]), w["reason"], w["detail"])
            for w in doc.get("warnings", [])
        ),
    )


def _engine(doc: EngineDoc, model: str) -> EngineInfo | None:
    engine = EngineInfo(doc["name"], doc["model"], doc["fallback_from"])
    # None is how a transcript says "faster-whisper, no fallback" (see Transcript.engine).
    return None if engine == EngineInfo("faster-whisper", model) else engine


def _analysis(doc: AnalysisDoc) -> Analysis:
    moderation = doc["moderation"]
    llm = doc["llm"]
    return Analysis(
        summary=tuple(
            SummarySentence(
                float(s["start"]), float(s["end"]), s["text"], s["speaker"], float(s["score"])
            )
            for s in doc["summary"]
        ),
        keywords=tuple(Keyword(k["text"], float(k["score"])) for k in doc["keywords"]),
        chapters=tuple(
            Chapter(
                float(c["start"]),
                float(c["end"]),
                c["title"],
                tuple(c["summary"]),
                tuple(c["keywords"]),
            )
            for c in doc["chapters"]
        ),
        moderation=None if moderation is None else _moderation(moderation),
        llm=None
        if llm is None
        else LlmNotes(
            model=llm["model"],
            summary=llm["summary"],
            action_items=tuple(llm["action_items"]),
            questions=tuple(llm["questions"]),
            chapter_titles=tuple(llm["chapter_titles"]),
            flagged=tuple(Claim(c["text"], c["reason"]) for c in llm["flagged"]),
        ),
        methods=dict(doc["methods"]),
    )


def _moderation(doc: ModerationDoc) -> ModerationReport:
    return ModerationReport(
        policy=doc["policy"],
        frames=doc["frames"],
        interval=float(doc["interval"]),
        unsafe_labels=tuple(doc["unsafe_labels"]),
        threshold=float(doc["threshold"]),
        skipped=doc["skipped"],
        flags=tuple(
            ModerationFlag(
                time=float(f["time"]),
                detections=tuple(
                    Detection(d["label"], float(d["score"]), _box(d["box"]))
                    for d in f["detections"]
                ),
                unsafe=f["unsafe"],
                thumbnail=f["thumbnail"],
            )
            for f in doc["flags"]
        ),
    )


def _box(values: list[int]) -> tuple[int, int, int, int]:
    if len(values) != 4:
        raise InvalidInputError("a detection box has four numbers: x, y, width, height")
    return (values[0], values[1], values[2], values[3])


def _opt(value: float | None) -> float | None:
    return None if value is None else float(value)


def _segment(s: SegmentDoc) -> Segment:
    return Segment(
        id=s["id"],
        start=float(s["start"]),
        end=float(s["end"]),
        text=s["text"],
        words=tuple(
            Word(
                start=float(w["start"]),
                end=float(w["end"]),
                text=w["text"],
                probability=float(w["probability"]),
                interpolated=w["interpolated"],
                speaker=w["speaker"],
            )
            for w in s["words"]
        ),
        speaker=s["speaker"],
        avg_logprob=_opt(s["avg_logprob"]),
        compression_ratio=_opt(s["compression_ratio"]),
        no_speech_prob=_opt(s["no_speech_prob"]),
        flags=tuple(s["flags"]),
        language=s.get("language"),
    )
