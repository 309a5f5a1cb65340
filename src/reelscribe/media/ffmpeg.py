"""Finding and running ffmpeg.

Which ffmpeg, which H.264 encoder and which VAAPI device come from
:class:`~reelscribe.config.Settings` (``REELSCRIBE_FFMPEG``, ``REELSCRIBE_H264_ENCODER``,
``REELSCRIBE_VAAPI_DEVICE``, from the environment or ``.env``): the entry points hand
them over once with :func:`configure` (``MediaTools.from_settings(settings)``); this
package never reads the environment itself. Without a configured path the system
``ffmpeg`` is used when it is on PATH; otherwise the static build shipped inside the
``imageio-ffmpeg`` wheel, so a pip-only install works. No ffprobe is needed anywhere
(probing uses PyAV).

Every ffmpeg process goes through :func:`run_ffmpeg` (or :func:`ffmpeg_output` when
its stdout is the product), so failures always surface the same way: a
:class:`~reelscribe.errors.ProcessingError` carrying stderr's last line. Both can be
interrupted: inside :func:`abort_check` (a worker's pipeline thread), the check runs
every :data:`POLL_SECONDS` while ffmpeg works; when it raises, ffmpeg is killed and the
exception propagates (a cancelled job stops within a fraction of a second).
"""

from __future__ import annotations

import logging
import math
import os
import shlex
import shutil
import subprocess
import tempfile
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache
from typing import IO, TYPE_CHECKING

from reelscribe.errors import ProcessingError

if TYPE_CHECKING:
    from reelscribe.config import Settings

log = logging.getLogger(__name__)

#: Called with the fraction (0–1) of one ffmpeg run that is done.
FractionCallback = Callable[[float], None]


@dataclass(frozen=True, slots=True)
class MediaTools:
    """The media tools this process uses (see the module docstring)."""

    #: The ffmpeg binary; None: ffmpeg on PATH, else imageio-ffmpeg's.
    ffmpeg: str | None = None
    #: ``"auto"`` or an encoder name: what ``ClipOptions(encoder="auto")`` resolves to.
    h264_encoder: str = "auto"
    vaapi_device: str = "/dev/dri/renderD128"

    @classmethod
    def from_settings(cls, settings: Settings) -> MediaTools:
        return cls(
            ffmpeg=settings.ffmpeg or None,
            h264_encoder=settings.h264_encoder.strip() or "auto",
            vaapi_device=settings.vaapi_device,
        )


_tools = MediaTools()


def configure(tools: MediaTools) -> None:
    """Sets the process's media tools (forgetting what was probed with the old ones)."""
    global _tools
    if tools == _tools:
        return
    _tools = tools
    ffmpeg_exe.cache_clear()
    from reelscribe.media import encoders  # imports this module: not at the top

    encoders.forget_probes()


def tools() -> MediaTools:
    """The media tools :func:`configure` set (defaults until then)."""
    return _tools


@lru_cache(maxsize=1)
def ffmpeg_exe() -> str:
    """Path of the ffmpeg binary: the configured one, PATH's, then imageio-ffmpeg's."""
    if _tools.ffmpeg:
        return _tools.ffmpeg
    found = shutil.which("ffmpeg")
    if found:
        return found
    try:
        import imageio_ffmpeg
    except ImportError as exc:  # pragma: no cover - it is a hard dependency
        raise ProcessingError("ffmpeg not found: install ffmpeg or imageio-ffmpeg") from exc
    return str(imageio_ffmpeg.get_ffmpeg_exe())


#: How often a running ffmpeg is checked for an abort (seconds).
POLL_SECONDS = 0.1
_abort = threading.local()


@contextmanager
def abort_check(check: Callable[[], None]) -> Iterator[None]:
    """Within the block, in this thread, ffmpeg runs call ``check`` every
    :data:`POLL_SECONDS`; what it raises kills ffmpeg and propagates."""
    previous = getattr(_abort, "check", None)
    _abort.check = check
    try:
        yield
    finally:
        _abort.check = previous


def check_abort() -> None:
    """Runs this thread's abort check, if any (raises what it raises)."""
    check = getattr(_abort, "check", None)
    if check is not None:
        check()


def _wait(proc: subprocess.Popen[bytes]) -> int:
    """Waits for ``proc``, running the abort check meanwhile; kills it when that raises."""
    while True:
        try:
            return proc.wait(timeout=POLL_SECONDS)
        except subprocess.TimeoutExpired:
            _check_or_kill(proc)


def _check_or_kill(proc: subprocess.Popen[bytes]) -> None:
    try:
        check_abort()
    except BaseException:
        _kill(proc)
        raise


def _kill(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.kill()
    proc.wait()


def _argv(args: Sequence[str]) -> list[str]:
    return [ffmpeg_exe(), "-hide_banner", "-nostdin", "-loglevel", "error", *args]


def run_ffmpeg(
    args: Sequence[str],
    *,
    what: str = "ffmpeg",
    duration: float | None = None,
    on_progress: FractionCallback | None = None,
) -> None:
    """Runs ``ffmpeg -hide_banner -nostdin <args>``; a failure raises ProcessingError
    carrying the last line of stderr.

    With ``on_progress`` and the expected output ``duration`` (seconds), ffmpeg's
    ``-progress pipe:1`` reports are turned into fractions as the run goes.
    """
    log.debug("running %s: %s", what, shlex.join(args))
    # stderr goes to a file, not a pipe: reading stdout line by line while a full
    # stderr pipe blocks ffmpeg would deadlock.
    with tempfile.TemporaryFile(mode="w+b") as err:
        if on_progress is None or not duration or duration <= 0:
            with subprocess.Popen(_argv(args), stdout=subprocess.DEVNULL, stderr=err) as proc:
                returncode = _wait(proc)
        else:
            argv = _argv(["-progress", "pipe:1", "-stats_period", str(POLL_SECONDS * 2),
                          "-nostats", *args])  # fmt: skip
            with subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=err) as proc:
                assert proc.stdout is not None
                try:
                    for fraction in parse_progress(proc.stdout, duration):
                        check_abort()
                        on_progress(fraction)
                except BaseException:  # aborted: don't wait for ffmpeg to finish
                    _kill(proc)
                    raise
                returncode = _wait(proc)
        if returncode != 0:
            err.seek(0)
            raise ProcessingError(
                f"{what} failed: {last_line(err.read().decode('utf-8', 'replace'))}"
            )


def ffmpeg_output(args: Sequence[str], *, what: str = "ffmpeg") -> bytearray:
    """Runs ffmpeg and returns what it wrote to stdout (e.g. ``-f f32le pipe:1``).

    stdout is read into one growing buffer rather than joined from chunks at the end,
    so a large output (30 min of float32 audio is 115 MB) is held once, not twice."""
    with tempfile.TemporaryFile() as errors:
        proc = subprocess.Popen(_argv(args), stdout=subprocess.PIPE, stderr=errors)
        assert proc.stdout is not None
        buffer = bytearray()
        try:
            with proc.stdout:
                # os.read returns what is there: the abort check runs between reads
                # even when ffmpeg writes slowly.
                while chunk := os.read(proc.stdout.fileno(), 1 << 20):
                    buffer += chunk
                    check_abort()
        except BaseException:
            _kill(proc)
            raise
        code = _wait(proc)
        if code != 0:
            errors.seek(0)
            message = last_line(errors.read().decode("utf-8", "replace"))
            raise ProcessingError(f"{what} failed: {message}")
    return buffer


def parse_progress(stream: IO[bytes], duration: float) -> Iterator[float]:
    """Yields the fraction done from ffmpeg's ``-progress`` key=value blocks.

    Each block ends with ``progress=continue`` (or ``progress=end``, which yields 1.0);
    ``out_time_us`` is the output position in microseconds, ``N/A`` before the first
    frame.
    """
    position = 0.0
    for raw in stream:
        key, _, value = raw.decode("ascii", "replace").strip().partition("=")
        if key == "out_time_us":
            try:
                position = max(position, int(value) / 1e6)
            except ValueError:
                continue
        elif key == "progress":
            yield 1.0 if value == "end" else min(1.0, position / duration)


def last_line(stderr: str) -> str:
    lines = [ln.strip() for ln in stderr.splitlines() if ln.strip()]
    return lines[-1] if lines else "no error output"


def seconds_arg(seconds: float, *, rounding: str = "nearest") -> str:
    """Formats seconds for ``-ss``/``-t`` with microsecond precision (ffmpeg's own).

    ``rounding="up"``/``"down"`` matter when the value is a frame's timestamp: a
    seek must not land a fraction of a microsecond before (or after) that frame.
    """
    micros = seconds * 1e6
    if rounding == "up":
        value = math.ceil(micros - 1e-3)
    elif rounding == "down":
        value = math.floor(micros + 1e-3)
    else:
        value = round(micros)
    return f"{value / 1e6:.6f}"


def filter_value(text: str) -> str:
    """Escapes a filter option value for ``-vf`` (ffmpeg-filters(1), "Quoting and
    escaping"): once for the option parser (``\\ ' :``), then once more for the
    filtergraph parser (``\\ ' [ ] , ;``)."""
    for char in "\\':":
        text = text.replace(char, "\\" + char)
    for char in "\\'[],;":
        text = text.replace(char, "\\" + char)
    return text
