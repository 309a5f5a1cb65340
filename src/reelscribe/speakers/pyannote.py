"""The pyannote.audio backend: ``pyannote/speaker-diarization-3.1`` from the Hugging Face hub.

For users who have ``pip install 'reelscribe[pyannote]'`` and a Hugging Face token
with the model's conditions accepted (``REELSCRIBE_HF_TOKEN``). The weights download
on first use and are cached by huggingface_hub, so later runs work offline.

pyannote.audio changed its API between majors; both are handled:

* 3.x: ``from_pretrained(..., use_auth_token=…)``; calling the pipeline returns an
  ``Annotation``;
* 4.x: ``from_pretrained(..., token=…)``; calling it returns a ``DiarizeOutput``
  whose ``speaker_diarization`` is the ``Annotation``.
"""

from __future__ import annotations

import inspect
import threading
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from reelscribe.errors import ExtraNotInstalledError, InvalidInputError, ModelUnavailableError
from reelscribe.progress import ProgressCallback, report
from reelscribe.speakers.base import SAMPLE_RATE, Diarization, DiarizeOptions, SpeakerTurn
from reelscribe.speakers.weights import set_torch_threads, usable_cpus

PIPELINE = "pyannote/speaker-diarization-3.1"
INSTALL_HINT = "pip install 'reelscribe[pyannote]'"
STAGE = "diarize"


@dataclass(slots=True)
class PyannoteDiarizer:
    pipeline: Any  # pyannote.audio.Pipeline (untyped library)
    device: str
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    @classmethod
    def load(cls, options: DiarizeOptions) -> PyannoteDiarizer:
        if not options.hf_token:
            raise InvalidInputError(
                f"the pyannote backend needs a Hugging Face token (REELSCRIBE_HF_TOKEN) with "
                f"the conditions of {PIPELINE} accepted; or use the offline backend 'local'"
            )
        try:
            import torch
            from pyannote.audio import Pipeline
        except ImportError as exc:
            raise ExtraNotInstalledError(
                f"the pyannote backend needs pyannote.audio: {INSTALL_HINT}"
            ) from exc
        pipeline = _from_pretrained(Pipeline, options.hf_token)
        device = options.device
        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        pipeline.to(torch.device(device))
        return cls(pipeline=pipeline, device=device)

    def diarize(
        self,
        samples: npt.NDArray[np.float32],
        options: DiarizeOptions,
        progress: ProgressCallback | None = None,
    ) -> Diarization:
        import torch

        set_torch_threads(usable_cpus(options.cpu_threads))
        duration = len(samples) / SAMPLE_RATE
        audio = {
            "waveform": torch.from_numpy(np.ascontiguousarray(samples, np.float32)).unsqueeze(0),
            "sample_rate": SAMPLE_RATE,
        }
        kwargs: dict[str, Any] = {"hook": _Hook(progress)}
        for name in ("num_speakers", "min_speakers", "max_speakers"):
            if getattr(options, name) is not None:
                kwargs[name] = getattr(options, name)
        with self._lock:
            output = self.pipeline(audio, **kwargs)
        return Diarization(turns=to_turns(output), duration=duration)


def _from_pretrained(pipeline_class: Any, token: str) -> Any:
    params = inspect.signature(pipeline_class.from_pretrained).parameters
    auth = {"token": token} if "token" in params else {"use_auth_token": token}
    try:
        pipeline = pipeline_class.from_pretrained(PIPELINE, **auth)
    except Exception as exc:  # network, auth, gated model: huggingface_hub raises many kinds
        # The token must never reach a message or a log.
        raise ModelUnavailableError(
            f"cannot load {PIPELINE} from the Hugging Face hub ({type(exc).__name__}); check "
            f"the network, the token and that its conditions are accepted on huggingface.co"
        ) from None
    if pipeline is None:  # 3.x returns None instead of raising for a gated model
        raise ModelUnavailableError(
            f"cannot load {PIPELINE}: accept its conditions on huggingface.co with this token"
        )
    return pipeline


#: Where each step of pyannote's pipeline starts and ends in the stage's progress
#: (embeddings take most of the time); steps not listed report no fraction.
_STEPS = {"segmentation": (0.0, 0.3), "embeddings": (0.3, 0.95)}


class _Hook:
    """pyannote's progress hook protocol, forwarded to our callback."""

    def __init__(self, progress: ProgressCallback | None) -> None:
        self.progress = progress

    def __call__(
        self,
        step_name: str,
        step_artifact: Any,
        file: Any = None,
        total: int | None = None,
        completed: int | None = None,
    ) -> None:
        span = _STEPS.get(step_name)
        fraction = None
        if span is not None and total and completed is not None:
            fraction = span[0] + (span[1] - span[0]) * completed / total
        report(self.progress, STAGE, fraction, step_name.replace("_", " "))


def to_turns(output: Any) -> tuple[SpeakerTurn, ...]:
    """pyannote's result (3.x Annotation or 4.x DiarizeOutput) as our turns."""
    annotation = getattr(output, "speaker_diarization", output)
    raw = sorted(
        (float(segment.start), float(segment.end), str(label))
        for segment, _, label in annotation.itertracks(yield_label=True)
    )
    names: dict[str, str] = {}
    return tuple(
        SpeakerTurn(
            start=start, end=end, speaker=names.setdefault(label, f"SPEAKER_{len(names):02d}")
        )
        for start, end, label in raw
        if end > start
    )
