"""yt-dlp through its Python API, with every request it makes passed through the SSRF guard.

:class:`GuardedYoutubeDL` gives yt-dlp a single request handler, :class:`GuardedUrllibRH`
(yt-dlp's urllib handler whose sockets are opened by :meth:`URLGuard.connect` and
whose redirect targets are checked), so page, API, manifest, fragment and media
requests and the redirects between them are all judged. Proxies and schemes other
than http(s) are not served.

How ffmpeg, which yt-dlp starts, is kept inside the guard: see ``session``.

The package, by idea: ``session`` (one extraction and download), ``guard`` (the SSRF
request handler), ``errors`` (yt-dlp's failures as reelscribe errors) and
``extractors`` (which URLs yt-dlp takes); cookies live in ``media/cookies.py``, shared
with plain HTTP fetching.
"""

from __future__ import annotations

from reelscribe.media.ytdlp.errors import translate_error
from reelscribe.media.ytdlp.extractors import specific_extractor
from reelscribe.media.ytdlp.guard import GuardedUrllibRH, GuardedYoutubeDL, GuardRefusal
from reelscribe.media.ytdlp.session import (
    YtdlpDownload,
    YtdlpMedia,
    YtdlpSession,
    ffmpeg_limits_redirects,
)

__all__ = [
    "GuardRefusal",
    "GuardedUrllibRH",
    "GuardedYoutubeDL",
    "YtdlpDownload",
    "YtdlpMedia",
    "YtdlpSession",
    "ffmpeg_limits_redirects",
    "specific_extractor",
    "translate_error",
]
