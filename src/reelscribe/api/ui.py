"""The web UI: one static page and its script, served by the API process itself.

The page is a client of the public API like any other (no server-side rendering, no
build step). It is left out of the OpenAPI document. A strict Content-Security-Policy
allows only this origin's own script and style, and whatever the page shows from the
API is inserted as text.
"""

from __future__ import annotations

from importlib.resources import files
from typing import Final

from fastapi import APIRouter
from fastapi.responses import Response

_WEB = files("reelscribe") / "web"
_TYPES: Final = {
    "app.js": "text/javascript; charset=utf-8",
    "style.css": "text/css; charset=utf-8",
}
_HEADERS: Final = {
    "Content-Security-Policy": (
        "default-src 'self'; media-src 'self' https: http:; img-src 'self' data:; "
        "object-src 'none'; base-uri 'none'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}

router = APIRouter(include_in_schema=False)


@router.get("/")
async def index() -> Response:
    body = (_WEB / "index.html").read_bytes()
    return Response(body, media_type="text/html; charset=utf-8", headers=_HEADERS)


@router.get("/ui/{name}")
async def asset(name: str) -> Response:
    media_type = _TYPES.get(name)
    if media_type is None:  # only the files listed above: no path ever reaches the disk
        return Response(status_code=404)
    return Response((_WEB / name).read_bytes(), media_type=media_type, headers=_HEADERS)
