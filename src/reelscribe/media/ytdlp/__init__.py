"""yt-dlp through its Python API, with every request it makes passed through the SSRF guard.

:class:`GuardedYoutubeDL` gives yt-dlp a single request handler, :class:`GuardedUrllibRH`
(yt-dlp's urllib handler whose sockets are opened by :meth:`URLGuard.connect` and
whose redirect targets are checked), so page, API, manifest, fragment and media
requests and the redirects between them are all judged. Proxies and schemes other
than http(s) are not served.

Programs yt-dlp starts make their own connections, so external downloaders are off
(``external_downloader: native``). ffmpeg is still needed for section downloads, and
yt-dlp hands it HLS it cannot parse natively; it therefore gets, on every input:

* for a section cut (plain http(s) formats only): the format URL already resolved
  through the guard, ``-max_redirects 0``, no proxy, http(s) as the only protocols and
  container demuxers only, so a "video" that is really a playlist cannot send it elsewhere. An
  ffmpeg without ``max_redirects`` (before 7.1) cuts nothing: the whole file is
  downloaded natively and ``section_applied`` stays false, for the caller to cut;
* otherwise: no network protocol at all, so such a hand-over fails closed.

What remains unguarded is ffmpeg's own DNS lookup of an already checked host during a
cut (a rebinding window of one request).

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
