"""What a run transcribes: a URL, an uploaded file or a local file, as a type.

The edges know which one they have: the API's job spec says ``url`` or ``upload_id``
(the worker turns them into :class:`UrlSource` and :class:`UploadSource`), and the CLI
reads its argument once with :func:`parse_source`. The pipeline's fetch stage then
dispatches on the type instead of guessing again from a string.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True, slots=True)
class UrlSource:
    """A URL to download (http(s); yt-dlp's sites included)."""

    url: str

    def __str__(self) -> str:
        return self.url


@dataclass(frozen=True, slots=True)
class UploadSource:
    """An uploaded file, already copied to ``path`` by the worker."""

    path: Path
    upload_id: str

    def __str__(self) -> str:
        return str(self.path)


@dataclass(frozen=True, slots=True)
class LocalFileSource:
    """A file on this machine (the CLI's own runs)."""

    path: Path

    def __str__(self) -> str:
        return str(self.path)


#: The three kinds (the job spec's wire model, ``service.spec.Source``, is the JSON form).
MediaSource = UrlSource | UploadSource | LocalFileSource

_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*):")


def parse_source(text: str) -> MediaSource:
    """A source a person typed: a URL when it starts with a scheme, else a path. One
    letter before the colon is a Windows drive, and an existing file may have a colon
    in its name."""
    text = text.strip()
    match = _SCHEME.match(text)
    if match is None or len(match.group(1)) == 1 or Path(text).exists():
        return LocalFileSource(Path(text))
    return UrlSource(text)


def as_source(source: MediaSource | str) -> MediaSource:
    """``source`` as a :data:`MediaSource`; a string is read with :func:`parse_source`."""
    return parse_source(source) if isinstance(source, str) else source
