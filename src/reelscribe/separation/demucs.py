"""Demucs (Hybrid Transformer Demucs by default), in this process, with torch.

Needs the ``demucs`` extra, and its weights: ``demucs.pretrained.get_model`` downloads
them on first use (into torch's hub cache, ``$TORCH_HOME``), or reads them from a local
folder (``REELSCRIBE_DEMUCS_REPO``, laid out as demucs' ``--repo`` expects: the
``.th`` files and the model's ``.yaml``). Neither works on a machine with no internet
and no such folder: use the Spleeter backend there.
"""

from __future__ import annotations

from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import Any, cast

import numpy as np

from reelscribe.errors import ExtraNotInstalledError, ModelUnavailableError, ProcessingError
from reelscribe.separation.base import CHANNELS, SAMPLE_RATE, Fraction

#: Seconds handed to demucs at a time (it splits further itself): bounds the memory
#: a long file takes and gives progress. Each chunk has context on both sides.
CHUNK_SECONDS = 60.0
PAD_SECONDS = 1.0


class DemucsSeparator:
    def __init__(self, model: str = "htdemucs", repo: Path | None = None,
                 device: str = "auto") -> None:  # fmt: skip
        self._name = model
        self._repo = repo
        self._device = device
        self._model: Any = None

    def load(self) -> Any:
        """The model and its device, loaded on first call (downloads the weights)."""
        if self._model is not None:
            return self._model
        try:
            import torch
            from demucs.pretrained import get_model
        except ImportError as exc:
            raise ExtraNotInstalledError(
                "the demucs separation backend needs the demucs extra: "
                "pip install 'reelscribe[demucs]' (or set REELSCRIBE_SEPARATION_BACKEND=spleeter)"
            ) from exc
        try:
            with _trusting_demucs_classes(torch):
                model = get_model(self._name, repo=self._repo)
        except (SystemExit, Exception) as exc:  # demucs calls fatal() -> SystemExit on a bad repo
            where = f"from {self._repo}" if self._repo else "(downloaded on first use)"
            raise ModelUnavailableError(
                f"cannot load the demucs model {self._name!r} {where}: {exc}; on a machine "
                "without internet set REELSCRIBE_DEMUCS_REPO to a folder of its weights, or "
                "use REELSCRIBE_SEPARATION_BACKEND=spleeter"
            ) from exc
        if model.samplerate != SAMPLE_RATE or model.audio_channels != CHANNELS:
            raise ModelUnavailableError(
                f"demucs model {self._name!r} takes {model.samplerate} Hz, "
                f"{model.audio_channels} channels; reelscribe feeds {SAMPLE_RATE} Hz stereo"
            )
        if "vocals" not in model.sources:
            raise ModelUnavailableError(f"demucs model {self._name!r} has no vocals stem")
        cuda = self._device == "cuda" or (self._device == "auto" and torch.cuda.is_available())
        model.eval()
        self._model = (model, "cuda" if cuda else "cpu")
        return self._model

    def separate(self, mix: Path, vocals: Path, progress: Fraction | None = None) -> None:
        model, device = self.load()
        import torch
        from demucs.apply import apply_model

        samples = np.fromfile(mix, dtype="<f4").reshape(-1, CHANNELS)
        total = len(samples)
        chunk, pad = int(CHUNK_SECONDS * SAMPLE_RATE), int(PAD_SECONDS * SAMPLE_RATE)
        index = model.sources.index("vocals")
        if progress is not None:
            progress(0.0)
        try:
            with vocals.open("wb") as out, torch.inference_mode():
                for start in range(0, total, chunk):
                    end = min(total, start + chunk)
                    lo, hi = max(0, start - pad), min(total, end + pad)
                    wav = torch.from_numpy(np.ascontiguousarray(samples[lo:hi].T))
                    # demucs' own normalisation (demucs.separate): zero mean, unit std.
                    ref = wav.mean(0)
                    mean, std = ref.mean(), ref.std() + 1e-8
                    stems = apply_model(model, ((wav - mean) / std)[None], device=device,
                                        split=True, overlap=0.25, progress=False)[0]  # fmt: skip
                    voice = (stems[index] * std + mean)[:, start - lo : end - lo]
                    out.write(voice.T.contiguous().cpu().numpy().astype("<f4").tobytes())
                    if progress is not None:
                        progress(end / total)
        except RuntimeError as exc:  # torch: out of memory, bad shapes
            raise ProcessingError(f"vocal separation (demucs) failed: {exc}") from exc


def _trusting_demucs_classes(torch: Any) -> AbstractContextManager[Any]:
    """Lets ``torch.load`` (weights-only by default since torch 2.6) read demucs' files:
    they name their model class. Only demucs' own model classes are allowed, no other
    code; older torch loads them as it always did."""
    safe_globals = getattr(torch.serialization, "safe_globals", None)
    if safe_globals is None:
        return nullcontext()
    from demucs.demucs import Demucs
    from demucs.hdemucs import HDemucs
    from demucs.htdemucs import HTDemucs

    return cast("AbstractContextManager[Any]", safe_globals([Demucs, HDemucs, HTDemucs]))
