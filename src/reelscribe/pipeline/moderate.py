"""The moderate stage: the clip (or the source's range) in, a moderation report out.

Audio-only media is skipped with a report that says so. Whether an unsafe report stops
the run is the step's decision (see ``pipeline/stages.py``), not this module's.
"""

from __future__ import annotations

from pathlib import Path

from reelscribe.analysis.moderation import frame_size, moderate_video
from reelscribe.analysis.options import ModerationOptions
from reelscribe.analysis.results import ModerationReport
from reelscribe.models import MediaInfo, TimeRange
from reelscribe.pipeline.probe import probe
from reelscribe.progress import ProgressCallback, report

STAGE = "moderate"


def moderate(
    path: Path,
    media: MediaInfo | None,
    span: TimeRange,
    options: ModerationOptions,
    progress: ProgressCallback | None = None,
    *,
    offset: float = 0.0,
) -> ModerationReport:
    """Moderates ``span`` of ``path`` (probed here when ``media`` is None, e.g. a clip
    just cut); flag times are reported on the source's timeline (``offset`` + t)."""
    media = media or probe(path)
    video = media.video
    if video is None or not video.width or not video.height:
        report(progress, STAGE, 1.0, "no video: skipped")
        return ModerationReport(options.policy, 0, options.interval, options.unsafe_labels,
                                options.threshold, skipped="no video")  # fmt: skip
    report(progress, STAGE, 0.0, "sampling frames")
    length = (span.end if span.end is not None else media.duration) - span.start
    result = moderate_video(
        path,
        frame_size(video.width, video.height, video.rotation),
        span,
        options,
        offset=offset,
        length=length,
        on_progress=lambda fraction, message: report(progress, STAGE, fraction, message),
    )
    unsafe = sum(f.unsafe for f in result.flags)
    report(progress, STAGE, 1.0, f"{result.frames} frames over {length:.0f} s, {unsafe} unsafe")
    return result
