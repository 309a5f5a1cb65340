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
"""

from __future__ import annotations

import contextlib
import functools
import gc
import http.client
import logging
import math
import os
import re
import socket
import subprocess
import tempfile
import urllib.request
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.cookiejar import CookieJar
from pathlib import Path
from typing import Any

import yt_dlp
from yt_dlp.cookies import YoutubeDLCookieJar
from yt_dlp.extractor import gen_extractor_classes
from yt_dlp.networking import HEADRequest, Request
from yt_dlp.networking import _urllib as ytdlp_urllib
from yt_dlp.networking.exceptions import HTTPError as YtdlpHTTPError
from yt_dlp.networking.exceptions import RequestError, TransportError
from yt_dlp.postprocessor.ffmpeg import FFmpegPostProcessor
from yt_dlp.utils import PostProcessingError, download_range_func

from reelscribe.errors import (
    AuthRequiredError,
    BlockedURLError,
    InvalidInputError,
    NetworkError,
    ProcessingError,
    ReelscribeError,
    SourceError,
    SourceNotFoundError,
    SourceTooLargeError,
    TooManyRedirectsError,
    UnsupportedSourceError,
)
from reelscribe.media.ffmpeg import ffmpeg_exe
from reelscribe.models import TimeRange
from reelscribe.netguard import Pace, URLGuard
from reelscribe.progress import ProgressCallback, report

log = logging.getLogger(__name__)

COOKIES_HINT = (
    "supply cookies of a signed-in browser session: REELSCRIBE_YTDLP_COOKIES "
    "(the content of a Netscape cookie file) or --cookies FILE"
)
#: ffmpeg input options for a section cut: no redirects (the URL was resolved through
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


# --- which URLs yt-dlp should take ------------------------------------------------------


@functools.cache
def _extractors() -> tuple[Any, ...]:
    return tuple(ie for ie in gen_extractor_classes() if ie.ie_key() != "Generic")


def specific_extractor(url: str) -> str | None:
    """The key of a site-specific yt-dlp extractor for ``url`` (``"Youtube"``), or
    ``None`` when only the generic one would take it."""
    return next((ie.ie_key() for ie in _extractors() if ie.suitable(url)), None)


# --- cookies ------------------------------------------------------------------------------


@contextlib.contextmanager
def cookie_file(path: Path | None, text: str | None) -> Iterator[Path | None]:
    """A private (0600) temporary Netscape cookie file, deleted afterwards.

    ``text`` (``REELSCRIBE_YTDLP_COOKIES``) wins over ``path``; a given file is copied
    too, because yt-dlp writes its cookie jar back to the file when it closes.
    """
    if text is None and path is None:
        yield None
        return
    if text is None:
        assert path is not None
        try:
            text = path.read_text()
        except OSError as exc:
            raise InvalidInputError(f"cannot read the cookie file {path}: {exc}") from exc
    fd, name = tempfile.mkstemp(prefix="reelscribe-cookies-", suffix=".txt")
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write(text if text.endswith("\n") else text + "\n")
        yield Path(name)
    finally:
        Path(name).unlink(missing_ok=True)


def load_cookie_jar(path: Path) -> CookieJar:
    """The cookies of a Netscape cookie file, read as yt-dlp reads them."""
    jar = YoutubeDLCookieJar(str(path))
    try:
        jar.load()
    except (OSError, ValueError) as exc:
        raise InvalidInputError(f"cannot read the cookies: {exc}") from exc
    loaded: CookieJar = jar
    return loaded


# --- the guarded request handler -----------------------------------------------------------


class GuardRefusal(RequestError):  # type: ignore[misc]
    """A request the SSRF guard refused, in the exception family yt-dlp expects from a
    request handler. The guard keeps the :class:`BlockedURLError` itself."""


class _GuardedHTTPHandler(ytdlp_urllib.HTTPHandler):  # type: ignore[misc]
    def __init__(self, guard: URLGuard, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._guard = guard

    def _connection_factory(self, base: type[http.client.HTTPConnection]) -> Callable[..., Any]:
        guard = self._guard

        def create_connection(
            address: tuple[str, int], timeout: object = None, source_address: Any = None
        ) -> socket.socket:
            seconds = timeout if isinstance(timeout, int | float) else None
            try:
                return guard.connect(address[0], address[1], seconds, source_address)
            except BlockedURLError as exc:
                raise GuardRefusal(str(exc)) from exc
            except ReelscribeError as exc:  # DNS failed: let urllib report it as usual
                raise OSError(str(exc)) from exc

        def factory(*args: Any, **kwargs: Any) -> http.client.HTTPConnection:
            connection = base(*args, **kwargs)
            # http.client's own hook for opening the socket; yt-dlp sets it the same way.
            connection._create_connection = create_connection  # type: ignore[attr-defined]
            return connection

        return factory

    def http_open(self, req: Any) -> Any:
        return self.do_open(self._connection_factory(http.client.HTTPConnection), req)

    def https_open(self, req: Any) -> Any:
        return self.do_open(
            self._connection_factory(http.client.HTTPSConnection), req, context=self._context
        )


class _GuardedRedirectHandler(ytdlp_urllib.RedirectHandler):  # type: ignore[misc]
    def __init__(self, guard: URLGuard) -> None:
        super().__init__()
        self._guard = guard

    def redirect_request(
        self, req: Any, fp: Any, code: int, msg: str, headers: Any, newurl: str
    ) -> Any:
        try:
            self._guard.check_url(newurl)
        except ReelscribeError as exc:
            if not isinstance(exc, BlockedURLError):
                self._guard.refusals.append(BlockedURLError(f"refusing redirect: {exc}"))
            raise GuardRefusal(str(exc)) from exc
        return super().redirect_request(req, fp, code, msg, headers, newurl)


class GuardedUrllibRH(ytdlp_urllib.UrllibRH):  # type: ignore[misc]
    """yt-dlp's urllib request handler, limited to http(s) (and inline ``data:``),
    without proxies, connecting and redirecting only where the guard allows."""

    _SUPPORTED_URL_SCHEMES = ("http", "https", "data")
    _SUPPORTED_PROXY_SCHEMES = ()
    _SUPPORTED_FEATURES = ()
    RH_NAME = "guarded-urllib"

    def __init__(self, *, guard: URLGuard, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._guard = guard

    def _create_instance(self, proxies: Any, cookiejar: Any, legacy_ssl_support: Any = None) -> Any:
        # yt-dlp's own opener minus its proxy, ftp and file handlers, with guarded
        # connection and redirect handlers.
        opener = urllib.request.OpenerDirector()
        for handler in (
            _GuardedHTTPHandler(
                self._guard,
                context=self._make_sslcontext(legacy_ssl_support=legacy_ssl_support),
            ),
            urllib.request.HTTPCookieProcessor(cookiejar),
            urllib.request.DataHandler(),
            urllib.request.UnknownHandler(),
            urllib.request.HTTPDefaultErrorHandler(),
            urllib.request.HTTPErrorProcessor(),
            _GuardedRedirectHandler(self._guard),
        ):
            opener.add_handler(handler)
        opener.addheaders = []
        return opener


class GuardedYoutubeDL(yt_dlp.YoutubeDL):  # type: ignore[misc]
    """A YoutubeDL whose only request handler is :class:`GuardedUrllibRH`.

    Proxies (``proxy`` or the environment's) are ignored: through a proxy the guard
    would only ever see the proxy's address.
    """

    def __init__(self, params: dict[str, Any], guard: URLGuard) -> None:
        self._guard = guard
        super().__init__({**params, "proxy": ""})

    @functools.cached_property
    def _request_director(self) -> Any:
        return self.build_request_director([functools.partial(GuardedUrllibRH, guard=self._guard)])


# --- extraction and download ----------------------------------------------------------------


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


# --- error translation ---------------------------------------------------------------------

_AUTH_PATTERNS = re.compile(
    r"sign in to confirm|not a bot|login required|log in|sign in|private video|"
    r"video is private|members[- ]only|--cookies|requires authentication|registered users|"
    r"age[- ]restricted|confirm your age",
    re.IGNORECASE,
)
_NOT_FOUND_PATTERNS = re.compile(
    r"video unavailable|is not available|does not exist|has been removed|been deleted|"
    r"no longer available|not found|http error 404|http error 410",
    re.IGNORECASE,
)
_REDIRECT_PATTERNS = re.compile(
    r"redirect error that would lead to an infinite loop|too many redirects", re.IGNORECASE
)
_NETWORK_PATTERNS = re.compile(
    r"timed out|connection|network|temporary failure|name or service not known|"
    r"getaddrinfo|unreachable|reset by peer|http error 5\d\d|http error 429|incomplete",
    re.IGNORECASE,
)


def _causes(exc: BaseException) -> Iterator[BaseException]:
    """``exc`` and everything it wraps (``__cause__``, yt-dlp's ``cause``/``exc_info``)."""
    seen: set[int] = set()
    stack: list[BaseException] = [exc]
    while stack:
        current = stack.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        exc_info = getattr(current, "exc_info", None)
        for nested in (
            current.__cause__,
            current.__context__,
            getattr(current, "cause", None),
            exc_info[1] if isinstance(exc_info, tuple) and len(exc_info) > 1 else None,
        ):
            if isinstance(nested, BaseException):
                stack.append(nested)


def _clean(message: str) -> str:
    message = re.sub(r"\x1b\[[0-9;]*m", "", message)
    message = re.sub(r"^(ERROR: )+", "", message.strip())
    return message.split("; please report this issue", 1)[0].strip()


def translate_error(exc: BaseException, url: str) -> ReelscribeError:
    """Maps a yt-dlp exception to the reelscribe error a user can act on."""
    chain = list(_causes(exc))
    for inner in chain:
        if isinstance(inner, ReelscribeError):
            return inner
    message = _clean(str(exc)) or type(exc).__name__
    status = next((e.status for e in chain if isinstance(e, YtdlpHTTPError)), None)
    if (status is not None and 300 <= status < 400) or _REDIRECT_PATTERNS.search(message):
        # urllib gives up on a redirect loop (or a chain over 10) with the last 3xx.
        return TooManyRedirectsError(f"fetching {url} failed: {message}")
    if status in (401, 403) or _AUTH_PATTERNS.search(message):
        return AuthRequiredError(f"{url} requires signing in ({message}): {COOKIES_HINT}")
    if "requested format is not available" in message.lower():
        return SourceError(f"{url} has no format to download: {message}")
    if status in (404, 410) or _NOT_FOUND_PATTERNS.search(message):
        return SourceNotFoundError(f"{url} is not available: {message}")
    if "unsupported url" in message.lower():
        return UnsupportedSourceError(f"no media found at {url}: {message}")
    if any(isinstance(e, PostProcessingError) for e in chain):
        return ProcessingError(f"processing the download of {url} failed: {message}")
    if (status is not None and (status >= 500 or status == 429)) or (
        any(isinstance(e, TransportError | OSError) for e in chain)
        or _NETWORK_PATTERNS.search(message)
    ):
        return NetworkError(f"fetching {url} failed: {message}")
    return SourceError(f"yt-dlp could not fetch {url}: {message}")
