"""``GET /blobs/{key}``: downloads through signed links of local storage.

No API key: the link's HMAC signature is the permission (key, expiry and download
name are signed together), so an expired or altered link is refused with 403. Range
requests are answered with 206 (or 416). S3 storage hands out presigned S3 URLs
instead, and this route has nothing to serve there.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Query
from fastapi.responses import StreamingResponse

from reelscribe.api.deps import RuntimeDep
from reelscribe.api.errors import error_responses
from reelscribe.backends.storage import (
    BlobNotFoundError,
    LocalStorage,
    SignedLinkError,
    serve_signed,
    validate_key,
)
from reelscribe.errors import InvalidInputError
from reelscribe.service.jobs import blocked_key

router = APIRouter(tags=["blobs"])


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
    storage = runtime.storage
    if not isinstance(storage, LocalStorage) or storage.signer is None:
        raise BlobNotFoundError("this server's storage hands out its own links")
    try:
        validate_key(key)
    except InvalidInputError as exc:  # no link we signed names such a key
        raise SignedLinkError("invalid link", code="link_invalid") from exc
    if await blocked_key(runtime.engine, key):
        # Content moderation blocked the job: links signed for its outputs are refused
        # however valid, whoever holds them (only the report is served).
        raise SignedLinkError("blocked by content moderation", code="content_blocked")
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
