"""The SSRF guard inside yt-dlp: a request handler whose sockets are opened by
:meth:`URLGuard.connect` and whose redirect targets are checked.

:class:`GuardedYoutubeDL` gives yt-dlp a single request handler, :class:`GuardedUrllibRH`,
so page, API, manifest, fragment and media requests and the redirects between them are
all judged. Proxies and schemes other than http(s) are not served.
"""

from __future__ import annotations

import functools
import http.client
import socket
import urllib.request
from collections.abc import Callable
from typing import Any

import yt_dlp
from yt_dlp.networking import _urllib as ytdlp_urllib
from yt_dlp.networking.exceptions import RequestError

from reelscribe.errors import (
    BlockedURLError,
    ReelscribeError,
)
from reelscribe.netguard import URLGuard


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
