"""Which URLs yt-dlp should take: a site-specific extractor, not the generic one."""

from __future__ import annotations

import functools
from typing import Any

from yt_dlp.extractor import gen_extractor_classes


@functools.cache
def _extractors() -> tuple[Any, ...]:
    return tuple(ie for ie in gen_extractor_classes() if ie.ie_key() != "Generic")


def specific_extractor(url: str) -> str | None:
    """The key of a site-specific yt-dlp extractor for ``url`` (``"Youtube"``), or
    ``None`` when only the generic one would take it."""
    return next((ie.ie_key() for ie in _extractors() if ie.suitable(url)), None)
