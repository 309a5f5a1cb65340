"""``/api/uploads``: media sent in one streamed request, resumably in chunks, or
straight to storage in presigned parts (``/presigned``, ``/{id}/parts``, ``/{id}/complete``).

The request body is read as a stream (``request.stream()``), never through FastAPI's
``UploadFile``, which spools to a temporary file first: here each byte is written once.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Header, Path, Request, Response

from reelscribe.api.deps import DirectUploadsDep, ReadKey, SubmitKey, UploadsDep
from reelscribe.api.errors import error_responses
from reelscribe.api.schemas import (
    PresignedCreate,
    PresignedPart,
    PresignedUpload,
    ResumableCreate,
    UploadPublic,
)
from reelscribe.backends.db.schema import UploadRow
from reelscribe.service.direct_uploads import DirectUpload

router = APIRouter(
    prefix="/api/uploads", tags=["uploads"], responses=error_responses(400, 401, 403, 422, 429)
)
UploadId = Annotated[str, Path(min_length=1, max_length=64, description="The upload id")]

_BINARY_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}},
    }
}


def upload_public(row: UploadRow) -> UploadPublic:
    return UploadPublic(
        id=row.id,
        filename=row.filename,
        content_type=row.content_type,
        state=row.state,
        size=row.size,
        offset=row.received,
        sha256=row.sha256,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def _offset_headers(row: UploadRow) -> dict[str, str]:
    headers = {"Upload-Offset": str(row.received), "Cache-Control": "no-store"}
    if row.size is not None:
        headers["Upload-Length"] = str(row.size)
    return headers


@router.post(
    "",
    status_code=201,
    summary="Upload media in one streamed request",
    openapi_extra=_BINARY_BODY,
    responses=error_responses(413),
)
async def upload(
    request: Request,
    response: Response,
    key: SubmitKey,
    uploads: UploadsDep,
    x_filename: Annotated[
        str | None,
        Header(alias="X-Filename", max_length=255, description="Percent-encoded file name."),
    ] = None,
) -> UploadPublic:
    # Content-Length is read, not declared: HTTP clients set it from the body themselves.
    length = request.headers.get("content-length", "")
    row = await uploads.receive(
        request.stream(),
        caller=key,
        filename=x_filename,
        content_type=request.headers.get("content-type"),
        length=int(length) if length.isascii() and length.isdigit() else None,
    )
    response.headers["Location"] = f"/api/uploads/{row.id}"
    return upload_public(row)


@router.post(
    "/resumable",
    status_code=201,
    summary="Start a resumable upload",
    responses=error_responses(413),
)
async def create_resumable(
    body: ResumableCreate, response: Response, key: SubmitKey, uploads: UploadsDep
) -> UploadPublic:
    row = await uploads.create_resumable(
        caller=key, size=body.size, filename=body.filename, content_type=body.content_type
    )
    response.headers.update(_offset_headers(row))
    response.headers["Location"] = f"/api/uploads/{row.id}"
    return upload_public(row)


def presigned_public(direct: DirectUpload) -> PresignedUpload:
    base = f"/api/uploads/{direct.row.id}"
    return PresignedUpload(
        upload=upload_public(direct.row),
        part_size=direct.part_size,
        parts=[
            PresignedPart(
                number=t.part.number,
                start=t.part.start,
                end=t.part.start + t.part.size - 1,
                size=t.part.size,
                received=t.received,
                url=t.url,
            )
            for t in direct.parts
        ],
        expires_at=direct.expires_at,
        parts_url=f"{base}/parts",
        complete_url=f"{base}/complete",
    )


@router.post(
    "/presigned",
    status_code=201,
    summary="Start a direct-to-storage upload: one presigned PUT URL per part",
    responses=error_responses(413),
)
async def create_presigned(
    body: PresignedCreate, response: Response, key: SubmitKey, direct: DirectUploadsDep
) -> PresignedUpload:
    started = await direct.create(
        caller=key,
        size=body.size,
        sha256=body.sha256,
        filename=body.filename,
        content_type=body.content_type,
    )
    response.headers["Location"] = f"/api/uploads/{started.row.id}"
    response.headers["Cache-Control"] = "no-store"  # the URLs are credentials
    return presigned_public(started)


@router.get(
    "/{upload_id}/parts",
    summary="The parts of a direct upload that arrived, and fresh URLs for the others",
    responses=error_responses(404, 409, 410),
)
async def list_presigned_parts(
    upload_id: UploadId, response: Response, key: SubmitKey, direct: DirectUploadsDep
) -> PresignedUpload:
    listed = await direct.parts(upload_id, key)
    response.headers["Cache-Control"] = "no-store"
    return presigned_public(listed)


@router.post(
    "/{upload_id}/complete",
    summary="Finish a direct upload: checks every part, the size and the SHA-256",
    response_model=UploadPublic,
    responses=error_responses(404, 409, 410),
)
async def complete_presigned(
    upload_id: UploadId, key: SubmitKey, direct: DirectUploadsDep
) -> UploadPublic:
    return upload_public(await direct.complete(upload_id, key))


@router.patch(
    "/{upload_id}",
    summary="Send the next chunk of a resumable upload at Upload-Offset",
    openapi_extra=_BINARY_BODY,
    responses=error_responses(404, 409, 413),
)
async def append(
    upload_id: UploadId,
    request: Request,
    response: Response,
    key: SubmitKey,
    uploads: UploadsDep,
    upload_offset: Annotated[
        int, Header(alias="Upload-Offset", ge=0, description="Bytes the server has so far.")
    ],
) -> UploadPublic:
    row = await uploads.append(upload_id, upload_offset, request.stream(), caller=key)
    response.headers.update(_offset_headers(row))
    return upload_public(row)


@router.head(
    "/{upload_id}",
    summary="The offset a resumable upload continues from (Upload-Offset header)",
    responses=error_responses(404),
)
async def offset(upload_id: UploadId, key: ReadKey, uploads: UploadsDep) -> Response:
    row = await uploads.get(upload_id, key)
    return Response(status_code=200, headers=_offset_headers(row))


@router.get("/{upload_id}", summary="Read an upload", responses=error_responses(404))
async def get_upload(
    upload_id: UploadId, response: Response, key: ReadKey, uploads: UploadsDep
) -> UploadPublic:
    row = await uploads.get(upload_id, key)
    response.headers.update(_offset_headers(row))
    return upload_public(row)


@router.delete(
    "/{upload_id}",
    status_code=204,
    summary="Delete an upload and its bytes (409 while a queued or running job needs it)",
    responses=error_responses(404, 409),
)
async def delete_upload(upload_id: UploadId, key: SubmitKey, uploads: UploadsDep) -> Response:
    await uploads.delete(upload_id, key)
    return Response(status_code=204)
