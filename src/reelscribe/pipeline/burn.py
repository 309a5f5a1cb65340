"""The burn stage: subtitles drawn into the picture of a whole file.

This is the clip stage's re-encode with an empty cut, so the ffmpeg argv (subtitle
filter escaping, encoder choice, fonts) is built in one place. To burn into a range,
call :func:`~reelscribe.pipeline.clip.clip` with ``ClipOptions(burn_subtitles=...)``:
that cuts and burns in the same pass.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from reelscribe.models import MediaInfo, TimeRange
from reelscribe.pipeline.clip import ClipOptions, clip
from reelscribe.progress import Progress, ProgressCallback


def burn(
    src: Path | str,
    dest: Path | str,
    ass_path: Path | str,
    options: ClipOptions | None = None,
    progress: ProgressCallback | None = None,
    *,
    info: MediaInfo | None = None,
) -> Path:
    """Re-encodes ``src`` into ``dest`` with the ASS subtitles ``ass_path`` burned in."""
    opts = dataclasses.replace(options or ClipOptions(), burn_subtitles=Path(ass_path))

    def relabel(event: Progress) -> None:
        if progress is not None:
            progress(dataclasses.replace(event, stage="burn"))

    return clip(src, dest, TimeRange(), opts, relabel if progress else None, info).path
