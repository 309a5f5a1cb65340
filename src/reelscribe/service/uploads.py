"""Uploads: media sent to the service instead of a URL.

Three ways in:

* **Streamed** (one request): the request body goes straight into
  ``BlobStore.put_stream``, written once, hashed on the way; the size limit is
  enforced while reading, so an oversized body is cut off and nothing is stored.
* **Direct** (presigned, :mod:`reelscribe.service.direct_uploads`): the client sends
  parts straight to storage and completes; the row is then like any other.
* **Resumable** (tus-like): create with the total size, then send chunks at offsets
  (``Upload-Offset``). A chunk at the wrong offset is refused with the current one, so
  a client whose connection broke asks (HEAD) and carries on. Resumable uploads are
  staged once: chunks land in a staging file on this host's disk (a later chunk may
  arrive on another connection, and object stores cannot append), and the last byte
  moves the whole file into storage under its content address (``sha256/…``).

Whatever arrived before a connection broke is kept: the offset only ever counts
bytes that were written and synced, so a resumed upload never has a hole.

Uploads go away by ``DELETE /api/uploads/{id}`` (refused with 409 ``upload_in_use``
while a queued or running job names it) or, ``upload_retention_seconds`` after their
last use (upload, or a job submitted with them), by the retention sweep, which skips
uploads such jobs still need. The blob goes with the last upload row that names it
(resumable uploads share content-addressed blobs).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import time
import weakref
from collections import OrderedDict
from collections.abc import AsyncIterable, AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import unquote, urlsplit

import anyio

from reelscribe.backends.db import new_job_id
from reelscribe.backends.db.schema import UploadRow
from reelscribe.backends.db.uploads import UploadStore
from reelscribe.backends.storage import DEFAULT_CONTENT_TYPE, content_key
from reelscribe.backends.storage.base import clean_filename, validate_content_type
from reelscribe.config import Settings
from reelscribe.errors import (
    InvalidInputError,
    UploadInUseError,
    UploadNotFoundError,
    UploadOffsetError,
    UploadStateError,
    UploadTooLargeError,
)
from reelscribe.files import sha256_file
from reelscribe.service.auth import ApiKey
from reelscribe.service.runtime import Runtime

OPEN = "open"
COMPLETE = "complete"
_COMPLETE_CACHE = 4096  # complete uploads remembered per process
_COMPLETE_SECONDS = 5.0  # ... for this long
_SUFFIX = re.compile(r"\.[A-Za-z0-9]{1,10}")


def staging_dir(settings: Settings) -> Path:
    """Where partial resumable uploads wait: beside the local blobs or the SQLite file,
    else in the user's data folder."""
    for url in (settings.storage_url, settings.database_url):
        parts = urlsplit(url)
        if parts.scheme == "file":
            return Path(unquote(parts.path)) / "staging"
        if parts.scheme.startswith("sqlite") and parts.path.startswith("/"):
            return Path(unquote(parts.path[1:])).parent / "upload-staging"
    from reelscribe.config import _default_data_root  # the one place the default is known

    return _default_data_root() / "upload-staging"


def upload_filename(raw: str | None) -> str:
    try:
        return clean_filename(unquote(raw or "")) if raw else "upload"
    except InvalidInputError:
        return "upload"


def upload_suffix(filename: str) -> str:
    suffix = Path(filename).suffix
    return suffix.lower() if _SUFFIX.fullmatch(suffix) else ""


async def _limited(chunks: AsyncIterable[bytes], limit: int) -> AsyncIterator[bytes]:
    """Passes chunks on until more than ``limit`` bytes came; then stops reading."""
    size = 0
    async for chunk in chunks:
        size += len(chunk)
        if size > limit:
            raise UploadTooLargeError(f"upload larger than the limit of {limit} bytes")
        if chunk:
            yield chunk


def _private_file(path: str, flags: int) -> int:
    return os.open(path, flags, 0o600)


def _remove_older(folder: Path, max_age: float) -> int:
    cutoff = time.time() - max_age
    removed = 0
    for path in folder.glob("*") if folder.is_dir() else ():
        with contextlib.suppress(FileNotFoundError):  # finished or swept meanwhile
            if path.is_file() and path.stat().st_mtime < cutoff:
                path.unlink()
                removed += 1
    return removed


class UploadService:
    def __init__(self, runtime: Runtime, *, staging: Path | None = None) -> None:
        self.runtime = runtime
        self.settings = runtime.settings
        self.staging = staging or staging_dir(runtime.settings)
        self.store = UploadStore(runtime.engine)
        # One appender per upload in this process; across processes the conditional
        # UPDATE of ``received`` keeps the row right (the staging file is per host).
        self._locks: weakref.WeakValueDictionary[str, asyncio.Lock] = weakref.WeakValueDictionary()
        # Complete uploads never change, but they may be deleted (here, by another
        # process, or by retention): a submission that names one reuses a read made in
        # the last _COMPLETE_SECONDS. Bounded, oldest out first.
        self._complete: OrderedDict[str, tuple[UploadRow, float]] = OrderedDict()

    # --- streamed -----------------------------------------------------------------

    async def receive(
        self,
        chunks: AsyncIterable[bytes],
        *,
        caller: ApiKey,
        filename: str | None = None,
        content_type: str | None = None,
        length: int | None = None,
    ) -> UploadRow:
        """Stores one request body; ``length`` (Content-Length) refuses early."""
        limit = self.settings.max_upload_bytes
        if length is not None and length > limit:
            raise UploadTooLargeError(f"upload of {length} bytes over the limit of {limit}")
        name = upload_filename(filename)
        media_type = validate_content_type(content_type or DEFAULT_CONTENT_TYPE)
        upload_id = new_job_id()
        key = f"uploads/{upload_id}/source{upload_suffix(name)}"
        stored = await self.runtime.storage.put_stream(key, _limited(chunks, limit), media_type)
        values = {
            "id": upload_id,
            "owner_key_id": caller.id,
            "filename": name,
            "content_type": media_type,
            "state": COMPLETE,
            "size": stored.size,
            "received": stored.size,
            "sha256": stored.sha256,
            "storage_key": key,
        }
        await self.store.insert(values)
        return await self._get(upload_id)

    # --- resumable ------------------------------------------------------------------

    async def create_resumable(
        self, *, caller: ApiKey, size: int, filename: str, content_type: str | None = None
    ) -> UploadRow:
        limit = self.settings.max_upload_bytes
        if size > limit:
            raise UploadTooLargeError(f"upload of {size} bytes over the limit of {limit}")
        if size < 1:
            raise InvalidInputError("an upload needs at least one byte")
        media_type = validate_content_type(content_type or DEFAULT_CONTENT_TYPE)
        upload_id = new_job_id()
        values = {
            "id": upload_id,
            "owner_key_id": caller.id,
            "filename": upload_filename(filename),
            "content_type": media_type,
            "state": OPEN,
            "size": size,
            "received": 0,
        }
        await self.store.insert(values)
        return await self._get(upload_id)

    async def append(
        self, upload_id: str, offset: int, chunks: AsyncIterable[bytes], *, caller: ApiKey
    ) -> UploadRow:
        """Writes a chunk at ``offset``; the last byte finalizes the upload."""
        lock = self._locks.setdefault(upload_id, asyncio.Lock())
        async with lock:
            row = await self.get(upload_id, caller)
            if row.state != OPEN:
                raise UploadStateError(f"upload {upload_id} takes no chunks (it is {row.state})")
            if offset != row.received:
                raise UploadOffsetError(
                    f"offset {offset} does not match the {row.received} bytes received",
                    offset=row.received,
                )
            assert row.size is not None  # resumable uploads declare their size
            written = await self._write(upload_id, offset, chunks, row.size - offset)
            if offset + written == row.size:
                await self._finalize(row)
            return await self._get(upload_id)

    async def _write(
        self, upload_id: str, offset: int, chunks: AsyncIterable[bytes], room: int
    ) -> int:
        path = self.staging / upload_id
        await anyio.Path(self.staging).mkdir(mode=0o700, parents=True, exist_ok=True)
        staged = await anyio.Path(path).stat() if await anyio.Path(path).exists() else None
        if offset > (staged.st_size if staged else 0):
            # The staging file lost bytes the row counts (a cleaned folder, another
            # host): rewind to what is really there and let the client resume from it.
            have = staged.st_size if staged else 0
            await self._rewind(upload_id, offset, have)
            raise UploadOffsetError(f"only {have} bytes are staged", offset=have)
        written = 0
        async with await anyio.open_file(path, "ab", opener=_private_file) as out:
            # Bytes past ``received`` were written by an attempt that never recorded
            # them (a crash between write and update): they are not trusted.
            await out.truncate(offset)
            await out.seek(offset)
            try:
                async for chunk in _limited(chunks, room):
                    await out.write(chunk)
                    written += len(chunk)
            finally:
                # Runs on a broken connection too: what arrived is synced and counted,
                # so the client resumes right after it.
                await out.flush()
                await anyio.to_thread.run_sync(os.fsync, out.wrapped.fileno())
                await self._advance(upload_id, offset, offset + written)
        return written

    async def _advance(self, upload_id: str, old: int, new: int) -> None:
        if new == old:
            return
        if not await self._rewind(upload_id, old, new):  # another process appended meanwhile
            current = await self._get(upload_id)
            raise UploadOffsetError("upload moved on concurrently", offset=current.received)

    async def _rewind(self, upload_id: str, old: int, new: int) -> bool:
        """Sets ``received`` from ``old`` to ``new``; False if it was not ``old``."""
        return await self.store.set_received(upload_id, old, new)

    async def _finalize(self, row: UploadRow) -> None:
        path = self.staging / row.id
        sha256 = await anyio.to_thread.run_sync(sha256_file, path)
        key = content_key(sha256, upload_suffix(row.filename))
        storage = self.runtime.storage
        if not await storage.exists(key):  # the same bytes uploaded before: keep one copy
            await storage.put_file(key, path, row.content_type or DEFAULT_CONTENT_TYPE)
        await self.store.update(row.id, state=COMPLETE, sha256=sha256, storage_key=key)
        with contextlib.suppress(FileNotFoundError):
            path.unlink()

    # --- housekeeping -----------------------------------------------------------------

    async def sweep_staging(self, max_age: float | None = None) -> int:
        """Deletes this host's staged bytes of resumable uploads that received nothing
        for ``max_age`` seconds (``upload_staging_seconds``); returns how many files went.
        Safe at any time: a later chunk for such an upload finds fewer bytes staged
        than the row counts and is told to resume from what is there (offset 0)."""
        limit = self.settings.upload_staging_seconds if max_age is None else max_age
        return await anyio.to_thread.run_sync(_remove_older, self.staging, limit)

    # --- deleting -----------------------------------------------------------------------

    async def touch(self, upload_id: str) -> None:
        """Marks the upload used now: its retention counts from its last use."""
        await self.store.update(upload_id)

    async def delete(self, upload_id: str, caller: ApiKey) -> None:
        """Deletes the caller's upload (an admin's: any) and its bytes; refused while
        a queued or running job needs it."""
        row = await self.get(upload_id, caller)
        if await self.in_use([upload_id]):
            raise UploadInUseError(
                f"upload {upload_id} is the source of a queued or running job: cancel or "
                "wait for it first"
            )
        await self._remove(row)

    async def in_use(self, upload_ids: list[str]) -> set[str]:
        """Which of these uploads a queued or running job names as its source."""
        return await self.store.in_use(upload_ids)

    async def _remove(self, row: UploadRow) -> None:
        # The row first: a crash after it leaves an unreferenced blob, never a row
        # whose bytes are gone.
        shared = await self.store.remove(row.id, row.storage_key)
        self._complete.pop(row.id, None)
        if row.multipart_id is not None and row.storage_key is not None:
            # A direct upload in progress: its parts wait in the store.
            await self.runtime.storage.abort_multipart(row.storage_key, row.multipart_id)
        if row.storage_key is not None and not shared:
            await self.runtime.storage.delete(row.storage_key)
        with contextlib.suppress(FileNotFoundError):
            await anyio.Path(self.staging / row.id).unlink()

    async def sweep_expired(self, max_age: float | None = None, *, limit: int = 500) -> int:
        """Deletes up to ``limit`` uploads unused for ``max_age`` seconds
        (``upload_retention_seconds``) that no queued or running job needs; returns
        how many went."""
        age = self.settings.upload_retention_seconds if max_age is None else max_age
        cutoff = datetime.now(UTC) - timedelta(seconds=age)
        rows = await self.store.unused_since([COMPLETE, OPEN], cutoff, limit)
        if not rows:
            return 0
        needed = await self.in_use([row.id for row in rows])
        removed = 0
        for row in rows:
            if row.id not in needed:
                await self._remove(row)
                removed += 1
        return removed

    # --- reading ----------------------------------------------------------------------

    async def get(self, upload_id: str, caller: ApiKey) -> UploadRow:
        """The upload, if the caller may see it (its owner, or an admin)."""
        row = await self._find(upload_id)
        if row is None or not (caller.is_admin or row.owner_key_id == caller.id):
            raise UploadNotFoundError(f"no upload {upload_id}")
        return row

    async def _get(self, upload_id: str) -> UploadRow:
        row = await self._find(upload_id)
        if row is None:
            raise UploadNotFoundError(f"no upload {upload_id}")
        return row

    async def _find(self, upload_id: str) -> UploadRow | None:
        cached = self._complete.get(upload_id)
        if cached is not None and time.monotonic() - cached[1] < _COMPLETE_SECONDS:
            self._complete.move_to_end(upload_id)
            return cached[0]
        row = await self.store.find(upload_id)
        self._complete.pop(upload_id, None)
        if row is not None and row.state == COMPLETE:
            self._complete[upload_id] = (row, time.monotonic())
            if len(self._complete) > _COMPLETE_CACHE:
                self._complete.popitem(last=False)
        return row
