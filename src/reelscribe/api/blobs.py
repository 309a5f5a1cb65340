"""``/blobs/{key}``: what S3 would serve, for local storage, through signed URLs.

``GET`` downloads through signed links; ``PUT …?upload_id&part&size&expires&sig``
takes one part of a direct upload (``POST /api/uploads/presigned``), as a presigned S3
``UploadPart`` URL would.

No API key: the URL's HMAC signature is the permission (key, expiry and download
name, or key, upload, part number, size and expiry, are signed together), so an
expired or altered URL is refused with 403. Range requests are answered with 206 (or
416); a part body longer than its signed size with 413, before the extra bytes are
written. S3 storage hands out presigned S3 URLs instead, and these routes have nothing
to serve there.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Query, Request
from fastapi.responses import Response, StreamingResponse

from reelscribe.api.deps import RuntimeDep
from reelscribe.api.errors import error_responses
from reelscribe.backends.storage import LocalStorage, serve_signed, validate_key
from reelscribe.errors import (
    BlobNotFoundError,
    InvalidInputError,
    LinkBlockedError,
    SignedLinkError,
)
from reelscribe.service.jobs import blocked_key

router = APIRouter(tags=["blobs"])


def _local_store(runtime: RuntimeDep, key: str) -> LocalStorage:
    storage = runtime.storage
    if not isinstance(storage, LocalStorage) or storage.signer is None:
        raise BlobNotFoundError("this server's storage hands out its own links")
    try:
        validate_key(key)
    except InvalidInputError as exc:  # no link we signed names such a key
        raise SignedLinkError("invalid link") from exc
    return storage


@router.get(
    "/blobs/{key:path}",
    summary="Download a stored file through a signed link",
    response_class=StreamingResponse,
    responses={
        200: {"description": "The file", "content": {"application/octet-stream": {}}},
        206: {
            "description": "The requested byte range",
            "content": {"application/octet-stream": {}},
        },
        416: {"description": "The range lies past the end of the file"},
        **error_responses(400, 403, 404, 422),
    },
)
async def download(
    key: str,
    runtime: RuntimeDep,
    expires: Annotated[int, Query(description="Unix time the link expires at")],
    sig: Annotated[str, Query(max_length=128, description="The link's signature")],
    filename: Annotated[str | None, Query(max_length=255)] = None,
    range_header: Annotated[str | None, Header(alias="Range", max_length=200)] = None,
) -> StreamingResponse:
    storage = _local_store(runtime, key)
    assert storage.signer is not None  # _local_store refuses a store without one
    if await blocked_key(runtime.engine, key):
        # Content moderation blocked the job: links signed for its outputs are refused
        # however valid, whoever holds them (only the report is served).
        raise LinkBlockedError("blocked by content moderation")
    blob = await serve_signed(
        storage,
        storage.signer,
        key,
        expires=expires,
        signature=sig,
        filename=filename,
        range_header=range_header,
    )
    return StreamingResponse(blob.body, status_code=blob.status, headers=blob.headers)


@router.put(
    "/blobs/{key:path}",
    summary="Send one part of a direct upload through a signed part URL",
    status_code=200,
    response_class=Response,
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/octet-stream": {"schema": {"type": "string", "format": "binary"}}
            },
        }
    },
    responses={
        200: {"description": "The part is stored (ETag: its SHA-256)"},
        **error_responses(400, 403, 404, 413, 422),
    },
)
async def put_part(
    key: str,
    request: Request,
    runtime: RuntimeDep,
    upload_id: Annotated[str, Query(max_length=1024, description="The store's upload id")],
    part: Annotated[int, Query(ge=1, le=10_000, description="Part number")],
    size: Annotated[int, Query(ge=1, description="The part's exact size in bytes")],
    expires: Annotated[int, Query(description="Unix time the URL expires at")],
    sig: Annotated[str, Query(max_length=128, description="The URL's signature")],
) -> Response:
    storage = _local_store(runtime, key)
    stored = await storage.put_signed_part(
        key, upload_id, part, size, request.stream(), expires=expires, signature=sig
    )
    # As S3 answers an UploadPart: 200, an ETag, no body.
    return Response(status_code=200, headers={"ETag": stored.etag or ""})
