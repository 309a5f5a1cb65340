"""yt-dlp's exceptions and messages translated into the reelscribe error tree."""

from __future__ import annotations

import re
from collections.abc import Iterator

from yt_dlp.networking.exceptions import HTTPError as YtdlpHTTPError
from yt_dlp.networking.exceptions import TransportError
from yt_dlp.utils import PostProcessingError

from reelscribe.errors import (
    AuthRequiredError,
    NetworkError,
    ProcessingError,
    ReelscribeError,
    SourceError,
    SourceNotFoundError,
    TooManyRedirectsError,
    UnsupportedSourceError,
)
from reelscribe.media.cookies import COOKIES_HINT

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
