"""Chapter metadata in an MP4: ffmpeg's FFMETADATA chapters muxed in by stream copy.

Players (VLC, mpv, QuickTime) and YouTube's uploader read MP4 chapters; the file is
rewritten without re-encoding (a second or less) and replaced atomically.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from reelscribe.analysis.results import Chapter
from reelscribe.media.ffmpeg import run_ffmpeg


def _escape(text: str) -> str:
    # FFMETADATA escapes '=', ';', '#', '\' and newlines with a backslash.
    out = []
    for ch in " ".join(text.split()):
        out.append("\\" + ch if ch in "=;#\\" else ch)
    return "".join(out)


def ffmetadata(chapters: Sequence[Chapter]) -> str:
    lines = [";FFMETADATA1"]
    for c in chapters:
        lines += ["[CHAPTER]", "TIMEBASE=1/1000", f"START={round(c.start * 1000)}",
                  f"END={round(max(c.end, c.start + 0.001) * 1000)}",
                  f"title={_escape(c.title)}"]  # fmt: skip
    return "\n".join(lines) + "\n"


def add_chapters(path: Path, chapters: Sequence[Chapter]) -> None:
    """Writes ``chapters`` into the MP4 at ``path`` (nothing to do without chapters)."""
    if not chapters:
        return
    meta = path.with_name(path.name + ".chapters.txt")
    tmp = path.with_name(path.stem + ".chapters" + path.suffix)
    meta.write_text(ffmetadata(chapters), encoding="utf-8")
    try:
        run_ffmpeg(["-y", "-i", str(path), "-f", "ffmetadata", "-i", str(meta),
                    "-map", "0", "-map_metadata", "0", "-map_chapters", "1", "-c", "copy",
                    "-movflags", "+faststart", str(tmp)], what="ffmpeg (chapters)")  # fmt: skip
        tmp.replace(path)
    finally:
        meta.unlink(missing_ok=True)
        tmp.unlink(missing_ok=True)
