"""The web UI: one static page and its script, served by the API process itself.

The page is a client of the public API like any other (no server-side rendering, no
build step). It is left out of the OpenAPI document. A strict Content-Security-Policy
allows only this origin's own script and style, and whatever the page shows from the
API is inserted as text. The page may connect to this origin and, when uploads go
straight to an object store on another origin (S3), to that store's endpoint only.
"""

from __future__ import annotations

from importlib.resources import files
from typing import Final

from fastapi import APIRouter
from fastapi.responses import Response

from reelscribe.api.deps import RuntimeDep

_WEB = files("reelscribe") / "web"
_TYPES: Final = {
    "app.js": "text/javascript; charset=utf-8",
    "api.js": "text/javascript; charset=utf-8",
    "search.js": "text/javascript; charset=utf-8",
    "upload.js": "text/javascript; charset=utf-8",
    "workspace.js": "text/javascript; charset=utf-8",
    "style.css": "text/css; charset=utf-8",
}
_POLICY: Final = (
    "default-src 'self'; media-src 'self' https: http:; img-src 'self' data:; "
    "object-src 'none'; base-uri 'none'; frame-ancestors 'none'"
)
_HEADERS: Final = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}

router = APIRouter(include_in_schema=False)


def _headers(runtime: RuntimeDep) -> dict[str, str]:
    policy = _POLICY
    origin = runtime.storage.direct_upload_origin()
    if origin is not None:
        # Direct uploads PUT their parts to presigned S3 URLs: that origin, and no other.
        policy += f"; connect-src 'self' {origin}"
    return {"Content-Security-Policy": policy, **_HEADERS}


@router.get("/")
async def index(runtime: RuntimeDep) -> Response:
    body = (_WEB / "index.html").read_bytes()
    return Response(body, media_type="text/html; charset=utf-8", headers=_headers(runtime))


@router.get("/ui/{name}")
async def asset(name: str, runtime: RuntimeDep) -> Response:
    media_type = _TYPES.get(name)
    if media_type is None:  # only the files listed above: no path ever reaches the disk
        return Response(status_code=404)
    body = (_WEB / name).read_bytes()
    return Response(body, media_type=media_type, headers=_headers(runtime))
