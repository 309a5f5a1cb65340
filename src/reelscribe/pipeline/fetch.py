"""The fetch stage: turns a source (a local path or a URL) into a local media file.

How a source is fetched:

* a local path is used where it is (never copied);
* an http(s) URL that a site-specific yt-dlp extractor claims (YouTube, Vimeo …) goes
  to yt-dlp; any other http(s) URL is streamed straight to disk, and if it turns out
  to be an HTML page or an HLS/DASH manifest it is handed to yt-dlp's generic
  extractor, which finds the media it describes;
* every other scheme (``file:``, ``ftp:``, ``data:`` …) is refused.

Every URL, redirect and connection passes the SSRF guard (:mod:`reelscribe.netguard`).
Downloads land under a temporary name and are renamed when complete, so no partial
file is ever left behind. A download cache (:mod:`reelscribe.pipeline.cache`) is
consulted before any network traffic.
"""

from __future__ import annotations

import contextlib
import mimetypes
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit

import httpx

from reelscribe.config import Settings
from reelscribe.errors import (
    AuthRequiredError,
    InvalidInputError,
    NetworkError,
    SourceError,
    SourceNotFoundError,
    SourceTooLargeError,
    TooManyRedirectsError,
    UnsupportedSourceError,
)
from reelscribe.media.cookies import COOKIES_HINT, cookie_file, load_cookie_jar
from reelscribe.models import TimeRange
from reelscribe.netguard import Pace, URLGuard, guarded_transport
from reelscribe.pipeline.cache import DownloadCache, cache_key
from reelscribe.progress import EtaTracker, ProgressCallback, report
from reelscribe.sources import MediaSource, UrlSource, as_source

if TYPE_CHECKING:
    from reelscribe.media.ytdlp import YtdlpMedia

STAGE = "fetch"
MAX_REDIRECTS = 10
#: Responses that are not the media itself but describe where it is: web pages and
#: HLS/DASH manifests go to yt-dlp's generic extractor.
_EXTRACTOR_TYPES = frozenset(
    {
        "text/html",
        "application/xhtml+xml",
        "application/vnd.apple.mpegurl",
        "application/x-mpegurl",
        "audio/mpegurl",
        "audio/x-mpegurl",
        "application/dash+xml",
    }
)


@dataclass(frozen=True, slots=True)
class FetchOptions:
    audio_only: bool = False
    #: Download only this part when the backend can (yt-dlp); see ``FetchResult.section_applied``.
    section: TimeRange | None = None
    #: Cut the section exactly (re-encoding, yt-dlp's ``force_keyframes_at_cuts``)
    #: rather than from the keyframe before its start.
    exact_section: bool = False
    max_bytes: int = 4 * 1024**3
    max_duration: float = 4 * 3600.0
    timeout: float = 30.0
    #: The whole download's deadline, and the slowest rate accepted over ``rate_window``
    #: seconds (0: no minimum); see :class:`reelscribe.netguard.Pace`.
    deadline: float = 3600.0
    min_rate: float = 0.0
    rate_window: float = 30.0
    allowed_networks: tuple[str, ...] = ()
    cookies_file: Path | None = None
    cookies_text: str | None = field(default=None, repr=False)
    cache_dir: Path | None = None
    cache_max_bytes: int = 0

    @classmethod
    def from_settings(cls, settings: Settings, **overrides: Any) -> FetchOptions:
        """The fetch options of ``settings``. Every pipeline entry point (CLI commands,
        job specs) builds these first, so this is also where the media tools of
        ``settings`` (ffmpeg, H.264 encoder, VAAPI device) reach :mod:`reelscribe.media`."""
        from reelscribe.media.ffmpeg import MediaTools, configure

        configure(MediaTools.from_settings(settings))
        cookies = settings.ytdlp_cookies
        values: dict[str, Any] = {
            "max_bytes": settings.max_download_bytes,
            "max_duration": settings.max_duration,
            "timeout": settings.http_timeout,
            "deadline": settings.download_deadline_seconds,
            "min_rate": settings.min_download_bytes_per_second,
            "rate_window": settings.min_download_window_seconds,
            "allowed_networks": tuple(settings.allowed_networks),
            "cookies_file": settings.ytdlp_cookies_file,
            "cookies_text": cookies.get_secret_value() if cookies is not None else None,
            "cache_dir": settings.cache_dir,
            "cache_max_bytes": settings.cache_max_bytes,
        }
        values.update(overrides)
        return cls(**values)


@dataclass(frozen=True, slots=True)
class FetchResult:
    path: Path
    source: str
    kind: str  # "file", "http", "ytdlp"
    from_cache: bool = False
    title: str | None = None
    #: Where the file starts on the source's timeline: 0 unless only a section was
    #: downloaded, then the section's start (a stream-copied section really begins at
    #: the keyframe before it, but the container's edit list hides that pre-roll).
    section_start: float = 0.0
    #: The file already holds only the requested section.
    section_applied: bool = False
    extractor: str | None = None
    media_id: str | None = None


def fetch(
    source: MediaSource | str,
    dest_dir: Path,
    options: FetchOptions,
    progress: ProgressCallback | None = None,
) -> FetchResult:
    """Makes ``source`` available as a local file, downloading into ``dest_dir`` (a
    string is read once, with :func:`~reelscribe.sources.parse_source`)."""
    typed = as_source(source)
    if not isinstance(typed, UrlSource):
        return _local(typed.path)
    source = typed.url.strip()
    if urlsplit(source).scheme.lower() not in ("http", "https"):
        raise UnsupportedSourceError(
            f"unsupported source {source!r}: only local paths and http(s) URLs can be fetched"
        )
    guard = URLGuard.from_entries(options.allowed_networks)
    guard.check_url(source)
    dest_dir.mkdir(parents=True, exist_ok=True)
    cache = _cache(options)
    for key in (_http_key(source), _ytdlp_alias(source, options)):
        hit = _from_cache(cache, key, dest_dir, source)
        if hit is not None:
            report(progress, STAGE, 1.0, "found in the download cache")
            return hit
    pace = Pace(deadline=options.deadline, min_rate=options.min_rate, window=options.rate_window)
    guard.pace = pace
    with pace.watch():
        try:
            return _fetch_remote(source, dest_dir, options, guard, cache, progress)
        except Exception as exc:
            # A cut connection surfaces as whatever the library makes of it: the
            # watchdog's verdict is the real reason.
            if pace.error is not None and exc is not pace.error:
                raise pace.error from exc
            raise


def _fetch_remote(
    source: str,
    dest_dir: Path,
    options: FetchOptions,
    guard: URLGuard,
    cache: DownloadCache | None,
    progress: ProgressCallback | None,
) -> FetchResult:
    # yt-dlp is imported when a URL is fetched: processes that only plan or estimate jobs
    # (the API) never load it.
    from reelscribe.media import ytdlp

    if ytdlp.specific_extractor(source) is not None:
        return _fetch_ytdlp(source, dest_dir, options, guard, cache, progress, generic=False)
    try:
        return _fetch_http(source, dest_dir, options, guard, cache, progress)
    except _NotMedia:
        return _fetch_ytdlp(source, dest_dir, options, guard, cache, progress, generic=True)


# --- local paths ----------------------------------------------------------------------------


def _local(given: Path) -> FetchResult:
    source = str(given)
    path = given.expanduser()
    if not path.exists():
        raise SourceNotFoundError(f"no such file: {source}")
    if not path.is_file():
        raise InvalidInputError(f"{source} is not a file")
    return FetchResult(path=path, source=source, kind="file", title=path.stem)


# --- the cache --------------------------------------------------------------------------------


def _cache(options: FetchOptions) -> DownloadCache | None:
    if options.cache_dir is None or options.cache_max_bytes <= 0:
        return None
    return DownloadCache(options.cache_dir, options.cache_max_bytes)


def _http_key(url: str) -> str:
    return cache_key("http", url)


def _section_parts(section: TimeRange | None, exact: bool) -> tuple[float, float | None, bool]:
    if section is None or section.is_whole:
        return (0.0, None, False)
    return (section.start, section.end, exact)


def _ytdlp_alias(url: str, options: FetchOptions) -> str:
    """Finds a yt-dlp download by its URL before yt-dlp is asked anything."""
    parts = _section_parts(options.section, options.exact_section)
    return cache_key("ytdlp-url", url, options.audio_only, *parts)


def _from_cache(
    cache: DownloadCache | None, key: str, dest_dir: Path, source: str
) -> FetchResult | None:
    if cache is None:
        return None
    hit = cache.checkout(key, dest_dir)
    if hit is None:
        return None
    path, entry = hit
    meta = entry.meta
    return FetchResult(
        path=path,
        source=source,
        kind=str(meta.get("kind", "http")),
        from_cache=True,
        title=meta.get("title"),
        section_start=float(meta.get("section_start", 0.0)),
        section_applied=bool(meta.get("section_applied", False)),
        extractor=meta.get("extractor"),
        media_id=meta.get("media_id"),
    )


def _store(
    cache: DownloadCache | None, key: str, result: FetchResult, aliases: tuple[str, ...] = ()
) -> None:
    if cache is None:
        return
    meta = {
        "kind": result.kind,
        "source": result.source,
        "title": result.title,
        "section_start": result.section_start,
        "section_applied": result.section_applied,
        "extractor": result.extractor,
        "media_id": result.media_id,
    }
    with contextlib.suppress(OSError):  # a cache that cannot be written is only slower
        cache.put(key, result.path, meta, aliases=aliases)


# --- direct http ------------------------------------------------------------------------------


class _NotMedia(Exception):
    """The URL is a web page or a manifest, not a media file: yt-dlp's generic
    extractor should look."""


def _fetch_http(
    url: str,
    dest_dir: Path,
    options: FetchOptions,
    guard: URLGuard,
    cache: DownloadCache | None,
    progress: ProgressCallback | None,
) -> FetchResult:
    with contextlib.ExitStack() as stack:
        cookies_path = stack.enter_context(cookie_file(options.cookies_file, options.cookies_text))
        client = stack.enter_context(
            httpx.Client(
                transport=guarded_transport(guard),
                timeout=httpx.Timeout(options.timeout),
                follow_redirects=False,
                cookies=load_cookie_jar(cookies_path) if cookies_path else None,
                headers={"Accept-Encoding": "identity", "User-Agent": "reelscribe"},
            )
        )
        try:
            response = stack.enter_context(_open(client, url, guard))
            path = _save(response, url, dest_dir, options.max_bytes, progress, guard.pace)
        except httpx.TimeoutException as exc:
            raise NetworkError(f"fetching {url} timed out: {exc}") from exc
        except (httpx.InvalidURL, httpx.UnsupportedProtocol) as exc:
            # A redirect to something that is not a URL we can fetch: the source's fault.
            raise UnsupportedSourceError(f"fetching {url} failed: {exc}") from exc
        except httpx.HTTPError as exc:
            if isinstance(exc, httpx.RemoteProtocolError) and str(exc).startswith(
                "Invalid URL in location header"  # httpx's words for a broken redirect
            ):
                raise UnsupportedSourceError(f"fetching {url} failed: {exc}") from exc
            raise NetworkError(f"fetching {url} failed: {exc}") from exc
    result = FetchResult(path=path, source=url, kind="http", title=path.stem)
    _store(cache, _http_key(url), result)
    return result


@contextlib.contextmanager
def _open(client: httpx.Client, url: str, guard: URLGuard) -> Iterator[httpx.Response]:
    """GETs ``url`` as a stream, following redirects by hand so each hop is checked."""
    current = url
    for _ in range(MAX_REDIRECTS + 1):
        guard.check_url(current)
        response = client.send(client.build_request("GET", current), stream=True)
        if not response.is_redirect:
            try:
                yield response
            finally:
                response.close()
            return
        location = response.headers.get("location", "")
        response.close()
        current = str(response.url.join(location))
    # A loop (or a chain this long) does not get better on a retry.
    raise TooManyRedirectsError(f"fetching {url} failed: more than {MAX_REDIRECTS} redirects")


def check_status(response: httpx.Response, url: str, *, doing: str = "fetching") -> None:
    """An HTTP error status as the source error it means (shared with the duration
    probe of estimates, ``doing="probing"``)."""
    status = response.status_code
    if status < 400:
        return
    what = f"{doing} {url} failed: HTTP {status} {response.reason_phrase}"
    if status in (401, 403):
        raise AuthRequiredError(f"{what}: {COOKIES_HINT}")
    if status in (404, 410):
        raise SourceNotFoundError(what)
    if status == 429 or status >= 500:
        raise NetworkError(what)
    raise SourceError(what)


def _save(
    response: httpx.Response,
    url: str,
    dest_dir: Path,
    max_bytes: int,
    progress: ProgressCallback | None,
    pace: Pace | None = None,
) -> Path:
    check_status(response, url)
    content_type = response.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type in _EXTRACTOR_TYPES:
        raise _NotMedia
    length = _content_length(response)
    if length is not None and length > max_bytes:
        raise SourceTooLargeError(
            f"{url} is {length} bytes, over the {max_bytes}-byte download limit"
        )
    target = _unique(dest_dir / _file_name(str(response.url), content_type))
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".part", dir=dest_dir)
    tmp = Path(tmp_name)
    eta = EtaTracker()
    if pace is not None:
        pace.start_rate()
    try:
        received = 0
        with os.fdopen(fd, "wb") as out:
            # Each read as it comes (no chunk size: that would wait for a full chunk), so
            # the pace sees a trickle as a trickle and each read reports progress, which
            # is where a cancelled job stops.
            for chunk in response.iter_bytes():
                received += len(chunk)
                if received > max_bytes:
                    raise SourceTooLargeError(f"{url} is over the {max_bytes}-byte download limit")
                if pace is not None:
                    pace.received(len(chunk))
                out.write(chunk)
                fraction = received / length if length else None
                report(progress, STAGE, fraction, "downloading", eta.eta(fraction or 0.0))
        if pace is not None:
            pace.check()  # a body without a length "ends" when the watchdog cuts it
        tmp.replace(target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    report(progress, STAGE, 1.0, "downloaded")
    return target


def _content_length(response: httpx.Response) -> int | None:
    try:
        return int(response.headers["content-length"])
    except (KeyError, ValueError):
        return None


def _file_name(url: str, content_type: str) -> str:
    name = Path(unquote(urlsplit(url).path)).name
    name = re.sub(r"[^\w.-]+", "_", name).strip("._")[:120] or "download"
    if not Path(name).suffix:
        name += mimetypes.guess_extension(content_type) or ".bin"
    return name


def _unique(path: Path) -> Path:
    candidate, n = path, 0
    while candidate.exists():
        n += 1
        candidate = path.with_name(f"{path.stem}-{n}{path.suffix}")
    return candidate


# --- yt-dlp -----------------------------------------------------------------------------------


def _fetch_ytdlp(
    url: str,
    dest_dir: Path,
    options: FetchOptions,
    guard: URLGuard,
    cache: DownloadCache | None,
    progress: ProgressCallback | None,
    *,
    generic: bool,
) -> FetchResult:
    from reelscribe.media import ytdlp

    alias = _ytdlp_alias(url, options)
    workdir = Path(tempfile.mkdtemp(prefix=".ytdlp-", dir=dest_dir))
    try:
        with (
            cookie_file(options.cookies_file, options.cookies_text) as cookies,
            ytdlp.YtdlpSession(
                guard,
                workdir,
                audio_only=options.audio_only,
                timeout=options.timeout,
                max_bytes=options.max_bytes,
                cookies=cookies,
                progress=progress,
                pace=guard.pace,
            ) as session,
        ):
            report(progress, STAGE, None, "looking up the media")
            media = session.extract(url, generic=generic)
            _check_media(media, options)
            section = options.section if options.section and not options.section.is_whole else None
            cut = section is not None and session.can_cut(media)
            key = cache_key(
                "ytdlp",
                media.extractor,
                media.media_id,
                media.format_id,
                options.audio_only,
                *_section_parts(section if cut else None, options.exact_section),
            )
            hit = _from_cache(cache, key, dest_dir, url)
            if hit is not None:
                assert cache is not None
                cache.add_alias(alias, key)
                report(progress, STAGE, 1.0, "found in the download cache")
                return hit
            download = session.download(media, section=section, exact=options.exact_section)
        name = f"{media.extractor}-{media.media_id}"
        target = _unique(dest_dir / (re.sub(r"[^\w.-]+", "_", name)[:120] + download.path.suffix))
        download.path.replace(target)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    applied = download.section_applied and section is not None
    result = FetchResult(
        path=target,
        source=url,
        kind="ytdlp",
        title=media.title,
        section_start=section.start if applied and section is not None else 0.0,
        section_applied=applied,
        extractor=media.extractor,
        media_id=media.media_id,
    )
    _store(cache, key, result, aliases=(alias,))
    report(progress, STAGE, 1.0, "downloaded")
    return result


def _check_media(media: YtdlpMedia, options: FetchOptions) -> None:
    """Refuses live streams, over-long sources and sections outside the media,
    before anything is downloaded."""
    if media.is_live:
        raise UnsupportedSourceError(f"{media.url} is a live stream, which cannot be fetched")
    section, duration = options.section, media.duration
    if section is not None and duration is not None and section.start >= duration:
        raise InvalidInputError(
            f"the section starts at {section.start:g}s, after the end of {media.url} "
            f"({duration:g}s)"
        )
    length = duration
    if section is not None and not section.is_whole:
        end = section.end if section.end is not None else duration
        if end is not None:
            length = (min(end, duration) if duration is not None else end) - section.start
    if length is not None and length > options.max_duration:
        raise SourceTooLargeError(
            f"{media.url} lasts {length:g}s, over the {options.max_duration:g}s limit"
        )
    if media.filesize is not None and media.filesize > options.max_bytes and section is None:
        raise SourceTooLargeError(
            f"{media.url} is {media.filesize} bytes, over the {options.max_bytes}-byte limit"
        )
