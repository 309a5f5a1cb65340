"""The local engine: faster-whisper (CTranslate2) on this machine's CPU or GPU.

Loading a model costs seconds and hundreds of MB, so loaded models are kept in a small
process-wide cache keyed by what makes them different (least recently used evicted
first). :class:`FasterWhisperEngine` chooses how to decode (batched inference with VAD
for long audio, sequential decoding for short clips); the transcript rules run on its
segments in :mod:`reelscribe.pipeline.transcribe`.
"""

from __future__ import annotations

import contextlib
import itertools
import subprocess
import threading
from collections import OrderedDict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from reelscribe.asr.base import SAMPLE_RATE, Audio, EngineResult
from reelscribe.asr.catalog import ResolvedModel, resolve, unavailable_hint
from reelscribe.config import Settings
from reelscribe.errors import InvalidInputError, ModelUnavailableError
from reelscribe.models import ModelInfo
from reelscribe.progress import ProgressCallback, report

if TYPE_CHECKING:
    from reelscribe.pipeline.transcribe import TranscribeOptions

STAGE = "transcribe"


@dataclass(frozen=True, slots=True)
class EngineOptions:
    model: str = "base"
    device: str = "auto"  # "auto", "cpu", "cuda"
    compute_type: str = "default"  # "default": int8 on CPU, float16 on CUDA
    cpu_threads: int = 0
    models_dir: Path = Path("~/.cache/reelscribe/models")
    #: Models a process keeps loaded (``REELSCRIBE_MODEL_CACHE_SIZE``); each costs
    #: hundreds of MB to GBs, so loading one more evicts the least recently used.
    cache_size: int = 2

    @classmethod
    def from_settings(cls, settings: Settings, model: str | None = None) -> EngineOptions:
        """The configured engine; ``model`` (a name or directory) replaces the default."""
        return cls(
            model=model or settings.model,
            cache_size=settings.model_cache_size,
            device=settings.device,
            compute_type=settings.compute_type,
            cpu_threads=settings.cpu_threads,
            models_dir=settings.models_dir,
        )


@dataclass(frozen=True, slots=True)
class LoadedModel:
    whisper: Any  # faster_whisper.WhisperModel (untyped library)
    info: ModelInfo


#: Loaded models, least recently used first (an OrderedDict as an LRU list).
_cache: OrderedDict[tuple[str, str, str, int], LoadedModel] = OrderedDict()
_lock = threading.Lock()


def cuda_available() -> bool:
    try:
        import ctranslate2
    except ImportError:  # pragma: no cover - hard dependency
        return False
    try:
        return int(ctranslate2.get_cuda_device_count()) > 0
    except Exception:  # a broken CUDA install must not stop CPU work
        return False


def pick_device(device: str) -> str:
    if device == "auto":
        return "cuda" if cuda_available() else "cpu"
    return device


#: Memory set aside per batch item on a GPU: generous for large-v3 in float16, so the batch
#: fits beside the model; base needs far less.
_GPU_BYTES_PER_ITEM = 512 * 1024 * 1024


def cuda_free_bytes() -> int | None:
    """Free memory on the current GPU, or None when it cannot be read (no torch, no
    nvidia-smi)."""
    with contextlib.suppress(Exception):  # torch is optional (the speakers extra)
        import torch

        if torch.cuda.is_available():
            return int(torch.cuda.mem_get_info()[0])
    try:
        out = subprocess.run(
            ["nvidia-smi", "--query-gpu=memory.free", "--format=csv,noheader,nounits"],
            capture_output=True, text=True, timeout=5, check=True,
        ).stdout  # fmt: skip
        return int(out.split()[0]) * 1024 * 1024
    except (OSError, subprocess.SubprocessError, ValueError, IndexError):
        return None


def _batch_size(device: str) -> int:
    return default_batch_size(device, cuda_free_bytes() if device == "cuda" else None)


def default_batch_size(device: str, free_bytes: int | None = None) -> int:
    """The batched pipeline's batch size when ``REELSCRIBE_BATCH_SIZE`` is 0.

    CPU: 4 (the encoder is the bound on 2-4 cores; larger batches only cost memory).
    CUDA: from free memory, between 8 and 32. Never 4 on a GPU: on an H200 in float16,
    batch 4 dropped a whole passage of the benchmark (WER 17.6 %), 8 to 64 did not
    (docs/benchmarks.md); with free memory unknown, 16.
    """
    if device != "cuda":
        return 4
    if free_bytes is None:
        return 16
    return max(8, min(32, free_bytes // _GPU_BYTES_PER_ITEM))


def pick_compute_type(device: str, compute_type: str) -> str:
    if compute_type != "default":
        return compute_type
    # int8 is the fastest and smallest on CPU (float32 is not faster there);
    # float16 is the usual choice on GPUs.
    return "float16" if device == "cuda" else "int8"


def load_model(options: EngineOptions) -> LoadedModel:
    """Returns the process-wide instance of the requested model, loading it once."""
    models_dir = options.models_dir.expanduser()
    resolved = resolve(options.model, models_dir)
    device = pick_device(options.device)
    compute_type = pick_compute_type(device, options.compute_type)
    key = (resolved.path, device, compute_type, options.cpu_threads)
    with _lock:
        loaded = _cache.get(key)
        if loaded is None:
            loaded = _load(resolved, device, compute_type, options.cpu_threads, models_dir)
            _cache[key] = loaded
            while len(_cache) > max(1, options.cache_size):
                _cache.popitem(last=False)  # the least recently used goes
        _cache.move_to_end(key)
    return loaded


def loaded_models() -> list[ModelInfo]:
    """What this process holds, least recently used first."""
    with _lock:
        return [m.info for m in _cache.values()]


def _load(
    resolved: ResolvedModel, device: str, compute_type: str, cpu_threads: int, models_dir: Path
) -> LoadedModel:
    from faster_whisper import WhisperModel

    kwargs: dict[str, Any] = {
        "device": device,
        "compute_type": compute_type,
        "cpu_threads": cpu_threads,
    }
    if resolved.source == "hub":
        kwargs["download_root"] = str(models_dir / "hub")
        whisper = _load_hub(WhisperModel, resolved.path, kwargs)
    else:
        try:
            whisper = WhisperModel(resolved.path, **kwargs)
        except (RuntimeError, ValueError, OSError) as exc:
            raise ModelUnavailableError(f"cannot load model at {resolved.path}: {exc}") from exc
    info = ModelInfo(
        name=resolved.name,
        source=resolved.source,
        path=resolved.path,
        device=device,
        compute_type=compute_type,
    )
    return LoadedModel(whisper=whisper, info=info)


def _load_hub(factory: Any, name: str, kwargs: dict[str, Any]) -> Any:
    # A cached copy loads without any network; only then try the hub.
    with contextlib.suppress(Exception):  # huggingface_hub raises many kinds here
        return factory(name, local_files_only=True, **kwargs)
    try:
        return factory(name, **kwargs)
    except Exception as exc:  # network, auth, disk: all mean "not available"
        raise ModelUnavailableError(unavailable_hint(name)) from exc


def clear_cache() -> None:
    with _lock:
        _cache.clear()


class FasterWhisperEngine:
    """The local engine. ``model``: a loaded model to use for every request (bench,
    tests); None: each request's ``options.engine`` model, from the process cache."""

    name = "faster-whisper"

    def __init__(self, model: LoadedModel | None = None) -> None:
        self.model = model

    def transcribe(
        self, samples: Audio, options: TranscribeOptions, progress: ProgressCallback | None
    ) -> EngineResult:
        duration = len(samples) / SAMPLE_RATE
        loaded = self.model or load_model(options.engine)
        report(progress, STAGE, 0.0, f"model {loaded.info.name} on {loaded.info.device}")

        batched = (
            options.batched
            if options.batched is not None
            else (duration >= options.batched_min_duration)
        )
        multilingual = bool(getattr(loaded.whisper.model, "is_multilingual", True))
        if not multilingual and options.language not in (None, "en"):
            raise InvalidInputError(
                f"model {loaded.info.name} is English-only; "
                f"it cannot transcribe {options.language!r}"
            )
        raw_segments, info = _run(loaded, samples, options, batched)
        return EngineResult(
            segments=raw_segments,
            language=str(info.language),
            language_probability=float(info.language_probability),
            model=loaded.info,
            engine=self.name,
            resegment=batched,
            mode="batched" if batched else "sequential",
            detector=loaded.whisper if multilingual else None,
        )


def _run(
    loaded: LoadedModel, samples: Audio, options: TranscribeOptions, batched: bool
) -> tuple[Iterable[tuple[float, Any]], Any]:
    """Starts decoding; returns (lazy (offset, segment) pairs, faster-whisper's info)."""
    if not batched:
        segments, info = _decode(loaded, samples, options, batched=False)
        return ((0.0, seg) for seg in segments), info
    bounds = window_bounds(samples, options.window_seconds)
    first, info = _decode(loaded, samples[bounds[0][0] : bounds[0][1]], options, batched=True)
    # Later windows keep the language found (or given) for the first one.
    rest = replace(options, language=options.language or str(info.language))

    def windows() -> Iterator[tuple[float, Any]]:
        yield from ((bounds[0][0] / SAMPLE_RATE, seg) for seg in first)
        for start, end in bounds[1:]:
            segments, _ = _decode(loaded, samples[start:end], rest, batched=True)
            yield from ((start / SAMPLE_RATE, seg) for seg in segments)

    return windows(), info


def window_bounds(samples: Audio, window: float) -> list[tuple[int, int]]:
    """Sample ranges of about ``window`` seconds, each cut in the quietest 0.2 s found
    within 15 s of the nominal boundary (a cut mid-word would garble that word)."""
    total = len(samples)
    size = int(window * SAMPLE_RATE)
    if total <= size * 1.5:
        return [(0, total)]
    frame, search = SAMPLE_RATE // 5, 15 * SAMPLE_RATE
    cuts = [0]
    nominal = size
    while total - nominal > size // 2:
        lo = max(cuts[-1] + frame, nominal - search)
        hi = min(total - frame, nominal + search)
        frames = (hi - lo) // frame
        region = samples[lo : lo + frames * frame].reshape(frames, frame)
        cut = lo + int(np.argmin(np.square(region).mean(axis=1))) * frame + frame // 2
        cuts.append(cut)
        nominal = cut + size
    cuts.append(total)
    return list(itertools.pairwise(cuts))


def temperature_schedule(first: float) -> tuple[float, ...]:
    """``first`` and the fallback temperatures above it, 0.2 apart, up to 1.0."""
    steps = int((1.0 - first) / 0.2 + 1e-9)  # whole steps that stay within 1.0
    return tuple(round(first + 0.2 * i, 2) for i in range(steps + 1))


def _decode(
    loaded: LoadedModel, samples: Audio, options: TranscribeOptions, *, batched: bool
) -> tuple[Iterable[Any], Any]:
    common: dict[str, Any] = {
        "language": options.language,
        "task": options.task,
        "initial_prompt": options.initial_prompt,
        "hotwords": options.hotwords,
        # faster-whisper's own default is this schedule from 0.0.
        "temperature": temperature_schedule(options.temperature),
        "word_timestamps": options.word_timestamps,
        "vad_filter": options.vad,
        "compression_ratio_threshold": options.compression_ratio_threshold,
        "no_speech_threshold": options.no_speech_threshold,
        "log_prob_threshold": options.log_prob_threshold,
    }
    if batched:
        from faster_whisper import BatchedInferencePipeline

        from reelscribe.asr.reuse_detection import batched_model

        # On CPU, language detection shares its encoder pass with the first chunk.
        pipeline = BatchedInferencePipeline(batched_model(loaded, options.language))
        return pipeline.transcribe(  # type: ignore[no-any-return]
            samples,
            batch_size=options.batch_size or _batch_size(loaded.info.device),
            beam_size=options.batched_beam_size,
            # Decoding timestamp tokens with greedy search in batches cost accuracy in
            # our measurements (WER 6.2 % vs 0.8 %); segments are rebuilt from the word
            # timings instead (see _split_at_sentences).
            without_timestamps=True,
            **common,
        )
    return loaded.whisper.transcribe(  # type: ignore[no-any-return]
        samples,
        beam_size=options.beam_size,
        # Whisper skips silence itself when told to; long silences are where it invents text.
        hallucination_silence_threshold=2.0 if options.word_timestamps else None,
        **common,
    )
