"""The diarization contract: options in, speaker turns out, one loader for every backend.

A backend is anything with a ``diarize(samples, options, progress)`` method that takes
16 kHz mono float32 samples and answers who spoke when. ``"local"`` runs offline on the
models shipped in the ``speakers`` extra (:mod:`reelscribe.speakers.local`);
``"pyannote"`` runs pyannote.audio's pipeline, which needs a Hugging Face token
(:mod:`reelscribe.speakers.pyannote`). Loaded backends are kept per process, like the
Whisper models (:mod:`reelscribe.asr.faster_whisper`): loading costs seconds.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Literal, Protocol

import numpy as np
import numpy.typing as npt

from reelscribe.errors import InvalidInputError
from reelscribe.models import SpeakerTurn as SpeakerTurn  # one turn type everywhere
from reelscribe.progress import ProgressCallback

SAMPLE_RATE = 16_000
Backend = Literal["local", "pyannote"]
_BACKENDS: tuple[Backend, ...] = ("local", "pyannote")
_DEVICES = ("auto", "cpu", "cuda")


@dataclass(frozen=True, slots=True)
class Diarization:
    #: Sorted by start; turns of different speakers may overlap (people talk at once).
    turns: tuple[SpeakerTurn, ...]
    duration: float

    @property
    def speakers(self) -> tuple[str, ...]:
        """Speaker labels in order of first appearance."""
        return tuple(dict.fromkeys(t.speaker for t in self.turns))


@dataclass(frozen=True, slots=True)
class DiarizeOptions:
    backend: Backend = "local"
    #: The exact number of speakers when known; otherwise estimated, within the bounds.
    num_speakers: int | None = None
    min_speakers: int | None = None
    max_speakers: int | None = None
    device: str = "auto"  # "auto", "cpu", "cuda"
    #: Hugging Face token for the pyannote backend; never logged or shown.
    hf_token: str | None = field(default=None, repr=False)
    #: CPU cores to use; 0 = all this process may use.
    cpu_threads: int = 0

    def __post_init__(self) -> None:
        if self.backend not in _BACKENDS:
            raise InvalidInputError(
                f"unknown diarization backend {self.backend!r}: use one of {', '.join(_BACKENDS)}"
            )
        if self.device not in _DEVICES:
            raise InvalidInputError(
                f"unknown device {self.device!r}: use one of {', '.join(_DEVICES)}"
            )
        if self.cpu_threads < 0:
            raise InvalidInputError("cpu_threads must be >= 0")
        for name in ("num_speakers", "min_speakers", "max_speakers"):
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or value < 1):
                raise InvalidInputError(f"{name} must be at least 1, got {value!r}")
        low, high, num = self.min_speakers, self.max_speakers, self.num_speakers
        if low is not None and high is not None and low > high:
            raise InvalidInputError(f"min_speakers ({low}) is more than max_speakers ({high})")
        if num is not None and (
            (low is not None and num < low) or (high is not None and num > high)
        ):
            raise InvalidInputError(
                f"num_speakers ({num}) is outside min_speakers..max_speakers ({low}..{high})"
            )

    def speaker_bounds(self) -> tuple[int, int | None]:
        """The allowed speaker counts as (at least, at most or ``None`` for no limit)."""
        if self.num_speakers is not None:
            return self.num_speakers, self.num_speakers
        return self.min_speakers or 1, self.max_speakers


Samples = npt.NDArray[np.float32]


class Diarizer(Protocol):
    def diarize(
        self,
        samples: Samples,
        options: DiarizeOptions,
        progress: ProgressCallback | None = None,
    ) -> Diarization: ...


_cache: dict[tuple[str, str], Diarizer] = {}
_lock = threading.Lock()


def load_diarizer(options: DiarizeOptions) -> Diarizer:
    """The process-wide diarizer for ``options.backend`` on ``options.device``, loaded once."""
    key = (options.backend, options.device)
    with _lock:
        diarizer = _cache.get(key)
        if diarizer is None:
            diarizer = _load(options)
            _cache[key] = diarizer
    return diarizer


def _load(options: DiarizeOptions) -> Diarizer:
    # Imported here: each backend pulls torch (and pyannote.audio) only when chosen.
    if options.backend == "pyannote":
        from reelscribe.speakers.pyannote import PyannoteDiarizer

        return PyannoteDiarizer.load(options)
    from reelscribe.speakers.local import LocalDiarizer

    return LocalDiarizer.load(options)


def clear_cache() -> None:
    with _lock:
        _cache.clear()
