"""One encoder pass fewer when faster-whisper's batched pipeline detects the language.

``BatchedInferencePipeline.transcribe(language=None)`` runs the Whisper encoder once
over the first 30 s of speech to detect the language, then encodes that same speech
again as the first chunk of its first batch. On a CPU the encoder is most of the work
(one pass costs about as much as decoding and aligning a whole chunk), so that second
pass is about 5 % of a 3-minute file and a third of the encoder work on a 1-minute one.

:class:`ReuseDetectionEncoding` stands in for the ``WhisperModel`` the pipeline is given:
it detects the language on the first chunk exactly as the pipeline will encode it, keeps
that encoder output, and hands it back when the first batch starts with that chunk.
Everything else is the wrapped model's own. It is used on CPU only: a GPU's encoder is
cheap, and its outputs live in device memory where they cannot be joined with NumPy.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

if TYPE_CHECKING:
    from reelscribe.asr.faster_whisper import LoadedModel


class _FirstFeatures:
    """The model's feature extractor, remembering what it computed first."""

    def __init__(self, extractor: Any) -> None:
        self._extractor = extractor
        self.first: npt.NDArray[np.float32] | None = None

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        features = self._extractor(*args, **kwargs)
        if self.first is None:
            self.first = features
        return features

    def __getattr__(self, name: str) -> Any:
        return getattr(self._extractor, name)


class ReuseDetectionEncoding:
    """A ``WhisperModel`` for one ``BatchedInferencePipeline.transcribe`` call."""

    def __init__(self, whisper: Any) -> None:
        self._whisper = whisper
        self.feature_extractor = _FirstFeatures(whisper.feature_extractor)
        self._window: npt.NDArray[np.float32] | None = (
            None  # the detection window, as the encoder saw it
        )
        self._encoded: Any = None  # a CPU StorageView

    def __getattr__(self, name: str) -> Any:
        return getattr(self._whisper, name)

    def detect_language(self, *args: Any, **kwargs: Any) -> tuple[str, float, Any]:
        from faster_whisper.audio import pad_or_trim

        first = self.feature_extractor.first
        if first is None or args or kwargs.get("language_detection_segments", 1) != 1:
            return self._whisper.detect_language(*args, **kwargs)  # type: ignore[no-any-return]
        # The first chunk as the pipeline will batch it ([..., :-1] and padding are
        # what BatchedInferencePipeline.transcribe applies), rather than the first 30 s
        # of all the speech joined: the same speech, unless the first chunk is shorter
        # than 30 s, and then that chunk alone is what its words are decoded from.
        self._window = pad_or_trim(first[..., :-1])
        self._encoded = self._whisper.encode(self._window)
        # (language token, probability) pairs, most probable first, as the library's
        # detect_language reads them; its threshold only matters across several windows.
        results = self._whisper.model.detect_language(self._encoded)[0]
        probs = [(token[2:-2], prob) for token, prob in results]
        return probs[0][0], probs[0][1], probs

    def encode(self, features: npt.NDArray[np.float32]) -> Any:
        window, encoded = self._window, self._encoded
        if (
            window is None
            or features.ndim != 3
            or features.shape[1:] != window.shape
            or not np.array_equal(features[0], window)
        ):
            return self._whisper.encode(features)
        self._window = self._encoded = None  # only the first batch starts with it
        if len(features) == 1:
            return encoded
        import ctranslate2

        rest = np.asarray(self._whisper.encode(features[1:]))
        return ctranslate2.StorageView.from_array(
            np.ascontiguousarray(np.concatenate([np.asarray(encoded), rest]))
        )


def batched_model(loaded: LoadedModel, language: str | None) -> Any:
    """What to give ``BatchedInferencePipeline``: the model itself, or on CPU when the
    language is still to be detected, the model that encodes the first chunk once."""
    if language is not None or loaded.info.device != "cpu":
        return loaded.whisper
    return ReuseDetectionEncoding(loaded.whisper)
