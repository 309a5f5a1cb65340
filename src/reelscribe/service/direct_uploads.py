"""Direct-to-storage uploads: the client sends the bytes to storage itself, in parts.

1. **Start** (``POST /api/uploads/presigned``): the client declares the file's size and
   SHA-256; the size limit, the caller's scope and a valid digest are checked before
   anything is stored. The store opens a multipart upload, the server plans the parts
   (``upload_part_bytes`` each, the last one shorter; a small file is one part) and
   answers with one ``PUT`` URL per part.
2. **Parts** go to those URLs: presigned S3 ``UploadPart`` URLs on S3 (another origin),
   or on local storage URLs of the API itself (``PUT /blobs/{key}``) signed the same
   way, so a client has one code path. Each URL writes one part of one upload and only
   of its declared size, until it expires.
3. **Resume**: ``GET /api/uploads/{id}/parts`` says which parts arrived (asked of the
   store, so it counts what is really there) and hands out fresh URLs for the others.
4. **Complete**: the parts are checked against the plan, joined, and the stored bytes
   hashed; a size or digest other than the declared one deletes the object and the
   upload (a 4xx: start again). Otherwise the row becomes an ordinary complete upload,
   usable as ``source.upload_id`` like any other.

Abandoned direct uploads (no listing, no completion for ``upload_staging_seconds``)
are aborted with their parts by :meth:`DirectUploadService.sweep_abandoned`.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import re
import weakref
from contextlib import aclosing
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import anyio

from reelscribe.backends.db import new_job_id
from reelscribe.backends.db.schema import UploadRow
from reelscribe.backends.storage import DEFAULT_CONTENT_TYPE, PartInfo, PutResult
from reelscribe.backends.storage.base import validate_content_type
from reelscribe.errors import (
    BlobNotFoundError,
    GoneError,
    InvalidInputError,
    ReelscribeError,
    UploadChecksumError,
    UploadNotPresignedError,
    UploadPartsMissingError,
    UploadStateError,
    UploadTooLargeError,
)
from reelscribe.service.auth import ApiKey
from reelscribe.service.runtime import Runtime
from reelscribe.service.uploads import COMPLETE, UploadService, upload_filename, upload_suffix

log = logging.getLogger(__name__)

PRESIGNED = "presigned"
#: S3 numbers parts 1..10,000; local storage keeps the same rule.
MAX_PARTS = 10_000
_MiB = 1024 * 1024
_SHA256_HEX = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True, slots=True)
class PlannedPart:
    number: int
    #: Offset of the part's first byte in the file.
    start: int
    size: int


@dataclass(frozen=True, slots=True)
class PartTicket:
    """A planned part, whether it arrived, and (if not) where to send it."""

    part: PlannedPart
    received: bool
    url: str | None


@dataclass(frozen=True, slots=True)
class DirectUpload:
    row: UploadRow
    part_size: int
    parts: list[PartTicket]
    expires_at: datetime


def part_size_for(size: int, preferred: int) -> int:
    """``preferred``, grown in whole MiB when the file would need more than
    :data:`MAX_PARTS` parts."""
    if size <= preferred * MAX_PARTS:
        return preferred
    needed = -(-size // MAX_PARTS)
    return -(-needed // _MiB) * _MiB


def plan_parts(size: int, part_size: int) -> list[PlannedPart]:
    """Parts of ``part_size`` bytes, the last one shorter; at least one part."""
    return [
        PlannedPart(number, start, min(part_size, size - start))
        for number, start in enumerate(range(0, size, part_size), start=1)
    ]


class DirectUploadService:
    def __init__(self, runtime: Runtime, uploads: UploadService) -> None:
        self.runtime = runtime
        self.settings = runtime.settings
        self.uploads = uploads
        # One completion per upload at a time in this process; across processes the
        # conditional UPDATE (state still "presigned") decides.
        self._locks: weakref.WeakValueDictionary[str, asyncio.Lock] = weakref.WeakValueDictionary()

    async def create(
        self,
        *,
        caller: ApiKey,
        size: int,
        sha256: str,
        filename: str,
        content_type: str | None = None,
    ) -> DirectUpload:
        limit = self.settings.max_upload_bytes
        if size > limit:
            raise UploadTooLargeError(f"upload of {size} bytes over the limit of {limit}")
        if size < 1:
            raise InvalidInputError("an upload needs at least one byte")
        digest = sha256.lower()
        if not _SHA256_HEX.fullmatch(digest):
            raise InvalidInputError("sha256 must be 64 hex digits")
        media_type = validate_content_type(content_type or DEFAULT_CONTENT_TYPE)
        name = upload_filename(filename)
        upload_id = new_job_id()
        key = f"uploads/{upload_id}/source{upload_suffix(name)}"
        part_size = part_size_for(size, self.settings.upload_part_bytes)
        multipart_id = await self.runtime.storage.start_multipart(key, media_type)
        values = {
            "id": upload_id,
            "owner_key_id": caller.id,
            "filename": name,
            "content_type": media_type,
            "state": PRESIGNED,
            "size": size,
            "received": 0,
            "storage_key": key,
            "multipart_id": multipart_id,
            "part_size": part_size,
            "expected_sha256": digest,
        }
        try:
            await self.uploads.store.insert(values)
        except BaseException:
            # Shielded: the parts must go even when we are here because of cancellation.
            with anyio.CancelScope(shield=True):
                await self.runtime.storage.abort_multipart(key, multipart_id)
            raise
        return await self._tickets(await self.uploads.get(upload_id, caller), received=[])

    async def parts(self, upload_id: str, caller: ApiKey) -> DirectUpload:
        """What has arrived, and fresh URLs for the rest; marks the upload active (the
        sweep counts from here)."""
        row = await self._open(upload_id, caller)
        arrived = await self._arrived(row)
        if arrived is None:  # joined already, not yet recorded: nothing left to send
            assert row.size is not None
            assert row.part_size is not None
            arrived = [PartInfo(p.number, p.size) for p in plan_parts(row.size, row.part_size)]
        await self.uploads.touch(upload_id)
        return await self._tickets(row, received=arrived)

    async def complete(self, upload_id: str, caller: ApiKey) -> UploadRow:
        lock = self._locks.setdefault(upload_id, asyncio.Lock())
        async with lock:
            row = await self._open(upload_id, caller)
            assert row.storage_key is not None
            assert row.multipart_id is not None
            assert row.size is not None
            assert row.part_size is not None
            storage = self.runtime.storage
            arrived = await self._arrived(row)
            if arrived is None:
                # An earlier completion joined the parts and then failed (a crash, a
                # broken connection while hashing): check the object it left.
                result = await self._hash_stored(row.storage_key)
            else:
                by_number = {part.number: part for part in arrived}
                plan = plan_parts(row.size, row.part_size)
                missing = [p.number for p in plan if _size(by_number.get(p.number)) != p.size]
                if missing:
                    raise UploadPartsMissingError(
                        f"parts {_ranges(missing)} have not arrived whole: send them, then "
                        "complete again",
                        missing=missing,
                    )
                planned = {p.number for p in plan}
                parts = [part for part in arrived if part.number in planned]
                result = await storage.complete_multipart(row.storage_key, row.multipart_id, parts)
            if (result.size, result.sha256) != (row.size, row.expected_sha256):
                await self._discard(row)
                raise UploadChecksumError(
                    f"the stored bytes ({result.size} bytes, sha256 {result.sha256}) are not "
                    f"the declared ({row.size} bytes, sha256 {row.expected_sha256}): the "
                    "upload was deleted, start again"
                )
            completed = await self.uploads.store.update(
                row.id,
                when_state=PRESIGNED,
                state=COMPLETE,
                received=result.size,
                sha256=result.sha256,
                multipart_id=None,
            )
            if not completed:
                raise UploadStateError(f"upload {upload_id} was completed concurrently")
            return await self.uploads.get(upload_id, caller)

    async def abort(self, row: UploadRow) -> None:
        """Drops a direct upload's parts in the store (its row is the caller's)."""
        if row.storage_key is not None and row.multipart_id is not None:
            await self.runtime.storage.abort_multipart(row.storage_key, row.multipart_id)

    async def sweep_abandoned(self, max_age: float | None = None, *, limit: int = 500) -> int:
        """Aborts up to ``limit`` direct uploads not listed or completed for ``max_age``
        seconds (``upload_staging_seconds``), parts and row; returns how many went."""
        age = self.settings.upload_staging_seconds if max_age is None else max_age
        cutoff = datetime.now(UTC) - timedelta(seconds=age)
        rows = await self.uploads.store.unused_since([PRESIGNED], cutoff, limit)
        for row in rows:
            await self._discard(row)
        return len(rows)

    # --- helpers ----------------------------------------------------------------------

    async def _open(self, upload_id: str, caller: ApiKey) -> UploadRow:
        row = await self.uploads.get(upload_id, caller)
        if row.state == COMPLETE:
            raise UploadStateError(f"upload {upload_id} is already complete")
        if row.state != PRESIGNED:
            raise UploadNotPresignedError(
                f"upload {upload_id} is a resumable upload: send its chunks with PATCH"
            )
        return row

    async def _arrived(self, row: UploadRow) -> list[PartInfo] | None:
        """The parts in the store; None when they were joined into the object already.
        An upload whose parts are gone otherwise (aborted) is deleted: 410 ``gone``."""
        assert row.storage_key is not None
        assert row.multipart_id is not None
        storage = self.runtime.storage
        try:
            return await storage.list_parts(row.storage_key, row.multipart_id)
        except BlobNotFoundError:
            if await storage.exists(row.storage_key):
                return None
        await self._discard(row)
        raise GoneError(f"upload {row.id} was abandoned and its parts are gone")

    async def _hash_stored(self, key: str) -> PutResult:
        digest = hashlib.sha256()
        size = 0
        async with aclosing(self.runtime.storage.get_stream(key)) as stream:
            async for chunk in stream:
                digest.update(chunk)
                size += len(chunk)
        return PutResult(size, digest.hexdigest())

    async def _discard(self, row: UploadRow) -> None:
        """The row first, then the bytes (as UploadService does): a crash in between
        leaves bytes without a row, never a row whose bytes are gone."""
        await self.uploads.store.remove(row.id, None)  # its bytes are its own, never shared
        try:
            await self.abort(row)
            if row.storage_key is not None:
                await self.runtime.storage.delete(row.storage_key)
        except ReelscribeError:
            # A storage hiccup must not hide why we got here; S3 lifecycle rules for
            # incomplete multipart uploads are the backstop.
            log.warning("could not delete the parts of upload %s", row.id, exc_info=True)

    async def _tickets(self, row: UploadRow, *, received: list[PartInfo]) -> DirectUpload:
        assert row.size is not None
        assert row.part_size is not None
        assert row.storage_key is not None
        assert row.multipart_id is not None
        ttl = self.settings.upload_url_ttl_seconds
        expires_at = datetime.now(UTC) + timedelta(seconds=ttl)
        sizes = {part.number: part.size for part in received}
        tickets = []
        for part in plan_parts(row.size, row.part_size):
            whole = sizes.get(part.number) == part.size
            url = None
            if not whole:
                url = await self.runtime.storage.part_url(
                    row.storage_key, row.multipart_id, part.number, part.size, ttl
                )
            tickets.append(PartTicket(part, whole, url))
        return DirectUpload(row, row.part_size, tickets, expires_at)


def _size(part: PartInfo | None) -> int | None:
    return None if part is None else part.size


def _ranges(numbers: list[int]) -> str:
    shown = ", ".join(str(n) for n in numbers[:20])
    return shown + (f" and {len(numbers) - 20} more" if len(numbers) > 20 else "")
