"""Loading Whisper models once per process.

A worker or CLI process transcribes many files with the same model; loading costs
seconds and hundreds of MB, so loaded models are kept in a small process-wide cache
keyed by what makes them different.
"""

from __future__ import annotations

import contextlib
import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from reelscribe.asr.catalog import ResolvedModel, resolve, unavailable_hint
from reelscribe.config import Settings
from reelscribe.errors import ModelUnavailableError
from reelscribe.models import ModelInfo


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
