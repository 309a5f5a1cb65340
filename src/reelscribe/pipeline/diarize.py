"""The diarize stage: 16 kHz samples in, who spoke when out.

The backend (offline models or pyannote.audio) is loaded once per process by
:func:`reelscribe.speakers.load_diarizer`; this stage only checks the input, reports
progress and turns a backend's failure into a :class:`ProcessingError`. Pair it with
:func:`reelscribe.speakers.assign_speakers` to label a transcript of the same samples.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from reelscribe.errors import InvalidInputError, ProcessingError, ReelscribeError
from reelscribe.progress import ProgressCallback, report
from reelscribe.speakers.base import Diarization, DiarizeOptions, load_diarizer

STAGE = "diarize"


def diarize(
    samples: npt.NDArray[np.float32],
    options: DiarizeOptions | None = None,
    progress: ProgressCallback | None = None,
) -> Diarization:
    """Speaker turns of ``samples`` (16 kHz mono float32), times relative to their start."""
    options = options or DiarizeOptions()
    if samples.ndim != 1:
        raise InvalidInputError(f"diarization takes mono samples, got shape {samples.shape}")
    report(progress, STAGE, 0.0, f"loading the {options.backend} speaker models")
    diarizer = load_diarizer(options)
    try:
        result = diarizer.diarize(samples.astype(np.float32, copy=False), options, progress)
    except ReelscribeError:
        raise
    except (RuntimeError, ValueError, MemoryError) as exc:  # torch, numpy, sklearn
        raise ProcessingError(f"diarization failed: {exc}") from exc
    report(progress, STAGE, 1.0, f"{len(result.speakers)} speakers")
    return result
