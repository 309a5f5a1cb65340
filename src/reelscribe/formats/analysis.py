"""Writers for the analysis: YouTube-style chapter lines and the moderation report.

Chapter lines follow YouTube's rules: the first at 00:00, one per line, ``MM:SS`` (or
``H:MM:SS`` past an hour) then the title.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from reelscribe.analysis.results import Chapter, ModerationReport
from reelscribe.formats.tokens import normalize
from reelscribe.models import Transcript


def chapter_time(seconds: float) -> str:
    """``75`` -> ``01:15``; ``3725`` -> ``1:02:05`` (whole seconds, rounded down)."""
    total = int(max(0.0, seconds))
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes:02d}:{secs:02d}"


def chapter_line_list(chapters: Sequence[Chapter]) -> list[str]:
    return [f"{chapter_time(c.start)} {normalize(c.title)}" for c in chapters]


def chapter_lines(transcript: Transcript) -> str:
    """The chapters, one ``00:00 Title`` line each (empty when there are none)."""
    chapters = transcript.analysis.chapters if transcript.analysis is not None else ()
    lines = chapter_line_list(chapters)
    return "\n".join(lines) + "\n" if lines else ""


def moderation_doc(report: ModerationReport) -> dict[str, Any]:
    return {
        "verdict": report.verdict,
        "policy": report.policy,
        "frames": report.frames,
        "interval": report.interval,
        "threshold": report.threshold,
        "unsafe_labels": list(report.unsafe_labels),
        "skipped": report.skipped,
        "flags": [
            {
                "time": f.time,
                "unsafe": f.unsafe,
                "detections": [
                    {"label": d.label, "score": d.score, "box": list(d.box)} for d in f.detections
                ],
                "thumbnail": f.thumbnail,
            }
            for f in report.flags
        ],
    }


def moderation_json(report: ModerationReport) -> str:
    return json.dumps(moderation_doc(report), indent=2) + "\n"
