"""Finding and running ffmpeg.

The system ``ffmpeg`` is used when it is on PATH; otherwise the static build shipped
inside the ``imageio-ffmpeg`` wheel, so a pip-only install works. No ffprobe is
needed anywhere (probing uses PyAV).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Sequence
from functools import lru_cache

from reelscribe.errors import ProcessingError


@lru_cache(maxsize=1)
def ffmpeg_exe() -> str:
    """Path of the ffmpeg binary: ``$REELSCRIBE_FFMPEG``, PATH, then imageio-ffmpeg's."""
    explicit = os.environ.get("REELSCRIBE_FFMPEG")
    if explicit:
        return explicit
    found = shutil.which("ffmpeg")
    if found:
        return found
    try:
        import imageio_ffmpeg
    except ImportError as exc:  # pragma: no cover - it is a hard dependency
        raise ProcessingError("ffmpeg not found: install ffmpeg or imageio-ffmpeg") from exc
    return str(imageio_ffmpeg.get_ffmpeg_exe())


def run_ffmpeg(args: Sequence[str], *, what: str = "ffmpeg") -> None:
    """Runs ``ffmpeg -hide_banner -nostdin <args>``; a failure raises ProcessingError
    carrying the last line of stderr."""
    argv = [ffmpeg_exe(), "-hide_banner", "-nostdin", "-loglevel", "error", *args]
    proc = subprocess.run(argv, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise ProcessingError(f"{what} failed: {last_line(proc.stderr)}")


def last_line(stderr: str) -> str:
    lines = [ln.strip() for ln in stderr.splitlines() if ln.strip()]
    return lines[-1] if lines else "no error output"
