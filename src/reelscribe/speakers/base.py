"""The diarization contract (placeholder until the backends land)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal


@dataclass(frozen=True, slots=True)
class DiarizeOptions:
    backend: Literal["local", "pyannote"] = "local"
    num_speakers: int | None = None
    min_speakers: int | None = None
    max_speakers: int | None = None
    device: str = "auto"
    hf_token: str | None = field(default=None, repr=False)
