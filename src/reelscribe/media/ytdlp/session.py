"""One yt-dlp run through its Python API: extract, then download (a section or all).
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
"""

from __future__ import annotations

import contextlib
import functools
import gc
import logging
import math
import subprocess
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from yt_dlp.networking import HEADRequest, Request
from yt_dlp.networking.exceptions import HTTPError as YtdlpHTTPError
from yt_dlp.postprocessor.ffmpeg import FFmpegPostProcessor
from yt_dlp.utils import download_range_func

from reelscribe.errors import (
    ProcessingError,
    ReelscribeError,
    SourceError,
    SourceNotFoundError,
    SourceTooLargeError,
    UnsupportedSourceError,
)
from reelscribe.media.ffmpeg import ffmpeg_exe
from reelscribe.media.ytdlp.errors import translate_error
from reelscribe.media.ytdlp.guard import GuardedYoutubeDL
from reelscribe.models import TimeRange
from reelscribe.netguard import Pace, URLGuard
from reelscribe.progress import ProgressCallback, report

log = logging.getLogger("reelscribe.media.ytdlp")  # one logger for the package


#: the guard), no proxy, plain http(s) only, and container demuxers only, so a "media"
#: URL that is really a playlist cannot send ffmpeg on to other hosts.
_FFMPEG_CUT_ARGS = (
    "-max_redirects",
    "0",
    "-http_proxy",  # empty: ffmpeg would otherwise take $http_proxy and bypass the guard
    "",
    "-protocol_whitelist",
    "http,https,tcp,tls",
    "-format_whitelist",
    "mov,mp4,m4a,3gp,matroska,webm,mp3,aac,flac,ogg,wav,flv,mpegts",
)
#: For everything else ffmpeg may not open a network input at all, so yt-dlp handing a
#: stream it cannot parse to ffmpeg (an HLS fallback) fails instead of escaping the guard.
_FFMPEG_NO_NETWORK_ARGS = ("-protocol_whitelist", "file,crypto,data")
#: Protocols yt-dlp downloads with its own (guarded) networking.
_NATIVE_PROTOCOLS = frozenset(
    {"http", "https", "m3u8_native", "m3u8", "http_dash_segments", "http_dash_segments_generator"}
)


@dataclass(frozen=True, slots=True)
class YtdlpMedia:
    """What yt-dlp found at a URL, with the formats it chose."""

    url: str
    extractor: str
    media_id: str
    format_id: str
    title: str | None
    duration: float | None
    is_live: bool
    protocols: tuple[str, ...]
    filesize: int | None
    info: dict[str, Any]


@dataclass(frozen=True, slots=True)
class YtdlpDownload:
    path: Path
    #: The file holds only the requested section.
    section_applied: bool


@functools.cache
def ffmpeg_limits_redirects() -> bool:
    """Whether this ffmpeg has the http ``max_redirects`` option (FFmpeg 7.1 and later)."""
    try:
        proc = subprocess.run(
            [ffmpeg_exe(), "-hide_banner", "-h", "protocol=http"],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
    except (OSError, subprocess.SubprocessError, ProcessingError):
        return False
    return "max_redirects" in proc.stdout


class _Logger:
    """Routes yt-dlp's output to logging (never stdout) and keeps it for diagnosis."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def debug(self, msg: str) -> None:
        self.lines.append(msg)
        log.debug("yt-dlp: %s", msg)

    info = debug

    def warning(self, msg: str) -> None:
        self.lines.append(msg)
        log.info("yt-dlp: %s", msg)

    def error(self, msg: str) -> None:
        self.lines.append(msg)
        log.info("yt-dlp: %s", msg)


class YtdlpSession:
    """One yt-dlp run: :meth:`extract` (no download), then :meth:`download`.

    Use as a context manager; files go to ``workdir`` (the caller removes it).
    """

    def __init__(
        self,
        guard: URLGuard,
        workdir: Path,
        *,
        audio_only: bool,
        timeout: float,
        max_bytes: int,
        cookies: Path | None = None,
        progress: ProgressCallback | None = None,
        pace: Pace | None = None,
    ) -> None:
        self._guard = guard
        self._pace = pace
        self._seen: dict[str, int] = {}  # bytes reported per file, for the pace
        self._workdir = workdir
        self._max_bytes = max_bytes
        self._progress = progress
        self._too_large: SourceTooLargeError | None = None
        self._logger = _Logger()
        params: dict[str, Any] = {
            "quiet": True,
            "no_warnings": True,
            "noprogress": True,
            "logger": self._logger,
            "color": {"stdout": "never", "stderr": "never"},
            "format": "bestaudio/best" if audio_only else "bestvideo*+bestaudio/best",
            "noplaylist": True,
            "playlist_items": "1:2",
            "paths": {"home": str(workdir), "temp": str(workdir)},
            "outtmpl": {"default": "media.%(ext)s"},
            "socket_timeout": timeout,
            "retries": 2,
            "fragment_retries": 2,
            "max_filesize": max_bytes,
            "cookiefile": str(cookies) if cookies else None,
            "ffmpeg_location": ffmpeg_exe(),
            "external_downloader": {"default": "native"},
            "external_downloader_args": {"ffmpeg_i": list(_FFMPEG_NO_NETWORK_ARGS)},
            "hls_prefer_native": True,
            "cachedir": False,
            "updatetime": False,
            "progress_hooks": [self._hook],
        }
        self._ydl = GuardedYoutubeDL(params, guard)
        # FFmpegFD.available() ignores the ffmpeg_location param and reads this context
        # variable, which yt-dlp's own command line sets the same way.
        self._ffmpeg_token = FFmpegPostProcessor._ffmpeg_location.set(ffmpeg_exe())

    def __enter__(self) -> YtdlpSession:
        return self

    def __exit__(self, *exc: object) -> None:
        self._ydl.close()
        FFmpegPostProcessor._ffmpeg_location.reset(self._ffmpeg_token)
        # yt-dlp's fragment downloaders can drop a response without closing it; collect
        # such leftovers here, where we know they are yt-dlp's, instead of letting a
        # ResourceWarning fire later at a random point in unrelated code.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ResourceWarning)
            gc.collect()

    def extract(self, url: str, *, generic: bool = False) -> YtdlpMedia:
        """Resolves ``url`` to one media item and picks its formats; downloads nothing.
        ``generic`` forces yt-dlp's generic (HTML page) extractor."""
        try:
            info = self._ydl.extract_info(
                url, download=False, ie_key="Generic" if generic else None
            )
        except Exception as exc:  # yt-dlp raises many types; all are translated here
            raise self._translate(exc, url) from exc
        info = _single_entry(info, url)
        requested = info.get("requested_formats") or [info]
        sizes = [f.get("filesize") or f.get("filesize_approx") for f in requested]
        return YtdlpMedia(
            url=url,
            extractor=str(info.get("extractor_key") or info.get("extractor") or "generic"),
            media_id=str(info.get("id")),
            format_id=str(info.get("format_id")),
            title=info.get("title"),
            duration=_float(info.get("duration")),
            is_live=bool(info.get("is_live")),
            protocols=tuple(str(f.get("protocol") or "") for f in requested),
            filesize=sum(sizes) if sizes and all(sizes) else None,
            info=info,
        )

    def can_cut(self, media: YtdlpMedia) -> bool:
        """Whether a section of ``media`` can be downloaded without leaving the guard."""
        return all(p in ("http", "https") for p in media.protocols) and ffmpeg_limits_redirects()

    def download(
        self, media: YtdlpMedia, *, section: TimeRange | None = None, exact: bool = False
    ) -> YtdlpDownload:
        """Downloads ``media`` into the work dir; only ``section`` when :meth:`can_cut`."""
        unguardable = [p for p in media.protocols if p not in _NATIVE_PROTOCOLS]
        if unguardable:
            raise UnsupportedSourceError(
                f"cannot fetch {media.url}: its {', '.join(unguardable)} format needs an "
                "external downloader, which the SSRF guard cannot watch"
            )
        info = media.info
        cut = section is not None and not section.is_whole and self.can_cut(media)
        params = self._ydl.params
        if cut:
            assert section is not None
            self._resolve_redirects(info)
            end = section.end if section.end is not None else math.inf
            params["download_ranges"] = download_range_func(None, [(section.start, end)])
            params["force_keyframes_at_cuts"] = exact
            # ffmpeg connects by itself, out of the pace's reach: bound each read at
            # least (microseconds), as yt-dlp's socket_timeout does for its own reads.
            rw_timeout = ["-rw_timeout", str(int(params["socket_timeout"] * 1_000_000))]
            params["external_downloader_args"] = {"ffmpeg_i": [*_FFMPEG_CUT_ARGS, *rw_timeout]}
        if self._pace is not None:
            self._pace.start_rate()
        try:
            result = self._ydl.process_ie_result(info, download=True)
        except Exception as exc:  # translated, as in extract()
            raise self._translate(exc, media.url) from exc
        finally:
            for key in ("download_ranges", "force_keyframes_at_cuts"):
                params.pop(key, None)
            params["external_downloader_args"] = {"ffmpeg_i": list(_FFMPEG_NO_NETWORK_ARGS)}
        if self._too_large is not None:
            raise self._too_large
        if self._pace is not None:
            self._pace.check()
        path = _downloaded_file(result, self._workdir)
        if path is None:
            if any("max-filesize" in line for line in self._logger.lines):
                raise SourceTooLargeError(
                    f"{media.url} is larger than the {self._max_bytes}-byte download limit"
                )
            raise SourceError(f"yt-dlp downloaded nothing from {media.url}: {self._last_error()}")
        if path.stat().st_size > self._max_bytes:
            raise SourceTooLargeError(
                f"{media.url} is larger than the {self._max_bytes}-byte download limit"
            )
        return YtdlpDownload(path=path, section_applied=cut)

    def _resolve_redirects(self, info: dict[str, Any]) -> None:
        """Follows each chosen format URL's redirects through the guard and hands
        ffmpeg the final URL, since ffmpeg will be told not to follow any."""
        requested = info.get("requested_formats") or [info]
        final: dict[str, str] = {}
        for fmt in requested:
            request = HEADRequest(fmt["url"], headers=fmt.get("http_headers") or {})
            try:
                response = self._ydl.urlopen(request)
            except YtdlpHTTPError:
                ranged = {**(fmt.get("http_headers") or {}), "Range": "bytes=0-0"}
                try:
                    response = self._ydl.urlopen(Request(fmt["url"], headers=ranged))
                except Exception as exc:
                    raise self._translate(exc, fmt["url"]) from exc
            except Exception as exc:
                raise self._translate(exc, fmt["url"]) from exc
            with contextlib.closing(response):
                final[str(fmt.get("format_id"))] = response.url
        for fmt in [*requested, *(info.get("formats") or [])]:
            fmt["url"] = final.get(str(fmt.get("format_id")), fmt["url"])

    def _hook(self, status: dict[str, Any]) -> None:
        if status.get("status") != "downloading":
            return
        done = status.get("downloaded_bytes") or 0
        total = status.get("total_bytes") or status.get("total_bytes_estimate")
        if done > self._max_bytes:
            # Raised inside yt-dlp's downloader, which leaves a .part file in the work dir
            # that the caller removes; kept here because yt-dlp may wrap the exception.
            self._too_large = SourceTooLargeError(
                f"download stopped at {done} bytes: over the {self._max_bytes}-byte limit"
            )
            raise self._too_large
        if self._pace is not None:
            name = str(status.get("tmpfilename") or status.get("filename") or "")
            delta = done - self._seen.get(name, 0)
            self._seen[name] = done
            self._pace.received(max(0, delta))  # raises once too slow; yt-dlp wraps it
        fraction = done / total if total else None
        report(self._progress, "fetch", fraction, "downloading", eta=_float(status.get("eta")))

    def _last_error(self) -> str:
        return next((ln for ln in reversed(self._logger.lines) if "ERROR" in ln), "no output")

    def _translate(self, exc: BaseException, url: str) -> ReelscribeError:
        if self._pace is not None and self._pace.error is not None:
            return self._pace.error
        if self._too_large is not None:
            return self._too_large
        if self._guard.refusals:
            return self._guard.refusals[-1]
        return translate_error(exc, url)


def _single_entry(info: dict[str, Any] | None, url: str) -> dict[str, Any]:
    if info is None:
        raise SourceNotFoundError(f"yt-dlp found no media at {url}")
    if info.get("_type") in ("playlist", "multi_video"):
        entries = [e for e in info.get("entries") or [] if e]
        if len(entries) != 1:
            raise UnsupportedSourceError(
                f"{url} holds {'several' if entries else 'no'} videos: give one video's URL"
            )
        return dict(entries[0])
    return info


def _downloaded_file(result: dict[str, Any] | None, workdir: Path) -> Path | None:
    for download in (result or {}).get("requested_downloads") or []:
        path = download.get("filepath")
        if path and Path(path).is_file():
            return Path(path)
    files = [
        p for p in workdir.iterdir() if p.is_file() and not p.name.endswith((".part", ".ytdl"))
    ]
    return max(files, key=lambda p: p.stat().st_size) if files else None


def _float(value: object) -> float | None:
    return float(value) if isinstance(value, int | float) else None
