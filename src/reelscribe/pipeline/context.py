"""What the stages of one run share: the request, where to write, and what the stages
before have produced. Stages read and fill a :class:`RunContext`; the runner turns it
into a :class:`PipelineResult` at the end."""

from __future__ import annotations

import threading
from contextlib import AbstractContextManager, nullcontext
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from reelscribe.analysis.results import ModerationReport
from reelscribe.models import MediaInfo, TimeRange, Transcript
from reelscribe.progress import ProgressCallback

if TYPE_CHECKING:
    from reelscribe.asr.routing import Engines
    from reelscribe.pipeline.clip import ClipResult
    from reelscribe.pipeline.fetch import FetchResult
    from reelscribe.pipeline.plan import PipelineRequest


@dataclass(frozen=True, slots=True)
class StageLimits:
    """Caps on how many transcriptions and re-encodes run at once in a process (a
    worker runs several jobs; ASR and x264 each want every core)."""

    asr: AbstractContextManager[Any] = field(default_factory=nullcontext)
    encode: AbstractContextManager[Any] = field(default_factory=nullcontext)

    @classmethod
    def of(cls, asr: int, encode: int) -> StageLimits:
        return cls(threading.Semaphore(asr), threading.Semaphore(encode))


@dataclass
class RunContext:
    request: PipelineRequest
    out_dir: Path
    work_dir: Path
    progress: ProgressCallback | None = None
    limits: StageLimits = field(default_factory=StageLimits)
    fetched: FetchResult | None = None
    media: MediaInfo | None = None
    #: The range to process on the fetched file's own timeline.
    local: TimeRange = field(default_factory=TimeRange)
    stem: str = "media"
    #: 16 kHz mono samples: one array, or one per channel with ``channels: split``.
    #: Dropped by the last stage that needs them (30 minutes are ~115 MB).
    audio: list[npt.NDArray[np.float32]] = field(default_factory=list)
    transcript: Transcript | None = None
    clip: ClipResult | None = None
    burned: ClipResult | None = None
    outputs: dict[str, Path] = field(default_factory=dict)
    #: Where the outputs start on the source's timeline (the real start of a fast cut).
    start: float = 0.0
    end: float | None = None
    #: The moderate stage's report (also put on the transcript's analysis).
    moderation: ModerationReport | None = None
    #: What stages share within a run (the sentence embeddings of the analysis stages).
    scratch: dict[str, Any] = field(default_factory=dict)
    #: The process's ASR engines (None: faster-whisper only, made for this run).
    engines: Engines | None = None

    def need_media(self) -> tuple[FetchResult, MediaInfo]:
        assert self.fetched is not None, "fetch runs first"
        assert self.media is not None, "probe runs first"
        return self.fetched, self.media


@dataclass(slots=True)
class PipelineResult:
    outputs: dict[str, Path]
    fetched: FetchResult
    media: MediaInfo
    transcript: Transcript | None = None
    clip: ClipResult | None = None
    burned: ClipResult | None = None
    #: Where the outputs start on the source's timeline (the real start of a fast cut).
    start: float = 0.0
    end: float | None = None
    timings: dict[str, float] = field(default_factory=dict)
    moderation: ModerationReport | None = None

    def summary(self, *, with_text: bool = False) -> dict[str, Any]:
        """A JSON-ready account of the run (range, media, transcript stats, cut)."""
        payload: dict[str, Any] = {
            "start": self.start,
            "end": self.end,
            "media": {
                "duration": self.media.duration,
                "format": self.media.format_name,
                "has_video": self.media.has_video,
                "has_audio": self.media.has_audio,
                "video_size": _video_size(self.media),
            },
            "timings": self.timings,
        }
        if self.transcript is not None:
            t = self.transcript
            payload["transcript"] = {
                "language": t.language,
                "duration": t.duration,
                "segments": len(t.segments),
                "dropped_segments": t.dropped_segments,
                "languages": list(t.languages),
                # Where speech may have been lost (pipeline/coverage.py).
                "warnings": [asdict(w) for w in t.warnings],
                "model": asdict(t.model),
                "engine": asdict(t.made_by),
                "speakers": [{"id": s, "name": t.speaker_name(s)} for s in t.speakers],
            }
            if with_text:
                payload["transcript"]["text"] = t.text
        analysis = analysis_summary(self.transcript, self.moderation)
        if analysis:
            payload["analysis"] = analysis
        clipped = self.clip or self.burned
        if clipped is not None:
            payload["clip"] = {
                "start": clipped.start,
                "end": clipped.end,
                "duration": clipped.duration,
                "method": clipped.method,
                "encoder": clipped.encoder,
            }
        return payload


def analysis_summary(
    transcript: Transcript | None, moderation: ModerationReport | None
) -> dict[str, Any]:
    """What the recording is about and the moderation verdict, for a job's result (the
    full report, thumbnails included, is the ``moderation`` output)."""
    out: dict[str, Any] = {}
    analysis = transcript.analysis if transcript is not None else None
    if analysis is not None:
        if analysis.summary:
            out["summary"] = [{"start": s.start, "end": s.end, "text": s.text,
                               "speaker": s.speaker} for s in analysis.summary]  # fmt: skip
        if analysis.keywords:
            out["keywords"] = [k.text for k in analysis.keywords]
        if analysis.chapters:
            out["chapters"] = [{"start": c.start, "title": c.title} for c in analysis.chapters]
        if analysis.llm is not None:
            out["llm_summary"] = analysis.llm.summary
        moderation = moderation or analysis.moderation
    if moderation is not None:
        out["moderation"] = {
            "verdict": moderation.verdict,
            "policy": moderation.policy,
            "frames": moderation.frames,
            "flagged": [
                {
                    "time": f.time,
                    "unsafe": f.unsafe,
                    "labels": sorted({d.label for d in f.detections}),
                }
                for f in moderation.flags
            ],
        }
    return out


def _video_size(media: MediaInfo) -> list[int] | None:
    video = media.video
    if video is None or not video.width or not video.height:
        return None
    return [video.width, video.height]
