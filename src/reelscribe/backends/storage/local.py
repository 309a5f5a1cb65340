"""Blobs as files under one root folder.

Layout under the root::

    data/<key>        the bytes; written in tmp/ and renamed into place, so a reader sees
                      either the old blob or the whole new one, never a partial write
    meta/<key>.json   {"content_type", "sha256"}: what a file system does not keep for us
    tmp/              writes in progress; left-overs older than a day are removed on open
    multipart/<id>/   a direct upload in progress: ``upload.json`` ({"key", "content_type"})
                      and its parts ``00001.part`` …, each renamed into place only once
                      all its declared bytes arrived; joined into data/ at completion

Everything is private to the service's user: folders are created 0700 and files 0600
(the root and its three folders are set so on open, which also tightens an older
store), whatever the umask.

Differences from S3 a caller may meet: a key cannot be both a blob and a "folder" (``a``
and ``a/b``), which raises ``InvalidInputError(code="key_conflict")``; two concurrent puts
of one key may leave one's bytes with the other's metadata (harmless for content keys).
Links are signed with :class:`LinkSigner` and served by the HTTP API through
:func:`~reelscribe.backends.storage.signing.serve_signed`.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
import re
import shutil
import stat
import time
import uuid
from collections.abc import AsyncGenerator, AsyncIterable
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import BinaryIO, Self
from urllib.parse import unquote, urlsplit

import anyio

from reelscribe.errors import (
    BlobNotFoundError,
    InvalidInputError,
    StorageError,
    UploadPartsMissingError,
    UploadTooLargeError,
)
from reelscribe.files import sha256_file

from .base import (
    DEFAULT_CONTENT_TYPE,
    MAX_EXPIRES_IN,
    BlobInfo,
    BlobStore,
    ByteRange,
    PartInfo,
    PutResult,
    validate_content_type,
    validate_expires_in,
    validate_key,
    validate_prefix,
)
from .signing import LinkSigner

_CHUNK = 1024 * 1024
_BLOCK = 4 * 1024 * 1024  # put_stream hashes and writes in blocks of this size
_SYNC_EVERY = 64 * 1024 * 1024  # bytes written between two fdatasync of a large put


FILE_MODE = 0o600
DIR_MODE = 0o700
_MULTIPART_ID = re.compile(r"[0-9a-f]{32}")
_PART_FILE = re.compile(r"(\d{5})\.part")
_MAX_PART_NUMBER = 10_000  # as S3: one rule for both stores


def _create(path: Path) -> BinaryIO:
    """A new, private file (raw, unbuffered); fails if it exists."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
    return os.fdopen(fd, "wb", buffering=0)


def make_private_dirs(path: Path) -> None:
    """``mkdir -p`` with every folder it creates 0700 (``Path.mkdir(parents=True)``
    gives the parents the umask's default instead)."""
    missing = []
    current = path
    while not current.exists():
        missing.append(current)
        if current.parent == current:
            break
        current = current.parent
    for folder in reversed(missing):
        with contextlib.suppress(FileExistsError):  # made concurrently: keep theirs
            folder.mkdir(mode=DIR_MODE)
    if not path.is_dir():
        raise NotADirectoryError(str(path))


_STALE_TMP = 24 * 3600.0
#: A direct upload that took no part for this long has no live part URL left (they
#: expire within MAX_EXPIRES_IN); the service aborts abandoned ones much sooner, this
#: only catches folders no database row names (a crash between start and record).
_STALE_MULTIPART = float(MAX_EXPIRES_IN)


class LocalStorage(BlobStore):
    def __init__(
        self,
        root: Path,
        *,
        signer: LinkSigner | None = None,
        public_base_url: str | None = None,
        chunk_size: int = _CHUNK,
    ) -> None:
        if not root.is_absolute():
            raise InvalidInputError(f"local storage root must be absolute: {root}")
        self._root = root
        self._data = root / "data"
        self._meta = root / "meta"
        self._tmp = root / "tmp"
        self._multipart = root / "multipart"
        self._signer = signer
        self._public_base_url = public_base_url
        self._chunk_size = chunk_size

    @classmethod
    def from_url(
        cls, url: str, *, signer: LinkSigner | None = None, public_base_url: str | None = None
    ) -> LocalStorage:
        """``file:///abs/dir`` (``file://localhost/abs/dir`` too)."""
        parts = urlsplit(url)
        if parts.scheme != "file" or parts.netloc not in ("", "localhost"):
            raise InvalidInputError(f"not a local file URL: {url!r}")
        if parts.query or parts.fragment or not parts.path:
            raise InvalidInputError(f"file:// storage URLs take no query: {url!r}")
        return cls(Path(unquote(parts.path)), signer=signer, public_base_url=public_base_url)

    @property
    def root(self) -> Path:
        return self._root

    @property
    def signer(self) -> LinkSigner | None:
        """What the HTTP API verifies this store's links with."""
        return self._signer

    async def __aenter__(self) -> Self:
        await anyio.to_thread.run_sync(self._prepare)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        return None

    # --- writing ----------------------------------------------------------------------

    async def put_file(
        self,
        key: str,
        path: Path,
        content_type: str = DEFAULT_CONTENT_TYPE,
        *,
        move: bool = False,
        sha256: str | None = None,
    ) -> PutResult:
        validate_key(key)
        validate_content_type(content_type)
        tmp = self._tmp_path(".part")
        try:
            if move:
                result = await anyio.to_thread.run_sync(self._move_hashed, path, tmp, sha256)
            else:
                result = await anyio.to_thread.run_sync(self._copy_hashed, path, tmp)
            await anyio.to_thread.run_sync(self._commit, key, tmp, content_type, result)
        finally:
            tmp.unlink(missing_ok=True)
        return result

    async def put_stream(
        self, key: str, chunks: AsyncIterable[bytes], content_type: str = DEFAULT_CONTENT_TYPE
    ) -> PutResult:
        validate_key(key)
        validate_content_type(content_type)
        tmp = self._tmp_path(".part")
        try:
            # Straight into the final file system: one write per byte, then a rename.
            size, sha256 = await self._write_hashed(tmp, chunks)
            result = PutResult(size, sha256)
            await anyio.to_thread.run_sync(self._commit, key, tmp, content_type, result)
        finally:
            tmp.unlink(missing_ok=True)
        return result

    async def _write_hashed(self, path: Path, chunks: AsyncIterable[bytes]) -> tuple[int, str]:
        """Writes the stream to a new file, hashing on the way; returns (size, sha256).

        Network chunks are copied into two reused blocks (fresh large buffers would
        cost a page fault per 4 KiB). While the event loop fills one block, a worker
        thread hashes the other and a second thread writes it (hashlib and file
        writes release the GIL), so a large upload costs about the slowest of the
        three, not their sum. The file is synced as it grows, so the disk works while
        later blocks arrive and the final fsync has little left to do."""
        digest = hashlib.sha256()
        out = await anyio.to_thread.run_sync(_create, path)
        fd = out.fileno()
        unsynced = 0
        syncing: asyncio.Future[None] | None = None

        def write(block: memoryview) -> None:
            written = 0
            while written < len(block):  # a raw file may write less than asked
                written += os.write(fd, block[written:])

        blocks = (bytearray(_BLOCK), bytearray(_BLOCK))
        current, fill, size = 0, 0, 0
        working: asyncio.Future[tuple[None, None]] | None = None  # the block dispatched last

        async def dispatch(length: int) -> None:
            nonlocal working, syncing, unsynced
            if working is not None:  # blocks are hashed and written in order
                await working
            unsynced += length
            if unsynced >= _SYNC_EVERY and (syncing is None or syncing.done()):
                # A third thread syncs what is written so far, while more arrives.
                syncing = asyncio.ensure_future(anyio.to_thread.run_sync(os.fdatasync, fd))
                unsynced = 0
            block = memoryview(blocks[current])[:length]
            working = asyncio.gather(
                anyio.to_thread.run_sync(digest.update, block),
                anyio.to_thread.run_sync(write, block),
            )

        try:
            async for chunk in chunks:
                size += len(chunk)
                data = memoryview(chunk)
                while data:
                    take = min(len(data), _BLOCK - fill)
                    blocks[current][fill : fill + take] = data[:take]
                    fill, data = fill + take, data[take:]
                    if fill == _BLOCK:
                        await dispatch(fill)
                        current, fill = current ^ 1, 0
            await dispatch(fill)
            await working  # type: ignore[misc]  # dispatch() set it
            working = None
            if syncing is not None:
                await syncing
            await anyio.to_thread.run_sync(os.fsync, fd)
        finally:
            for inflight in (working, syncing):  # a broken stream: let the threads end
                if inflight is not None:
                    with contextlib.suppress(Exception):
                        await asyncio.shield(inflight)
            out.close()
        return size, digest.hexdigest()

    # --- reading ----------------------------------------------------------------------

    async def get_stream(
        self, key: str, byte_range: ByteRange | None = None
    ) -> AsyncGenerator[bytes, None]:
        path = self._data_path(key)
        try:
            source = await anyio.open_file(path, "rb")
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError) as exc:
            raise BlobNotFoundError(f"no blob {key!r}") from exc
        async with source:
            # Sized from the open file: a concurrent put renames a new file in place and
            # leaves this one whole.
            size = os.fstat(source.wrapped.fileno()).st_size
            first, last = (0, size - 1) if byte_range is None else byte_range.resolve(size)
            await source.seek(first)
            remaining = last - first + 1
            while remaining > 0:
                chunk = await source.read(min(self._chunk_size, remaining))
                if not chunk:
                    break
                remaining -= len(chunk)
                yield chunk

    async def stat(self, key: str) -> BlobInfo:
        validate_key(key)
        return await anyio.to_thread.run_sync(self._stat, key)

    def local_path(self, key: str) -> Path | None:
        path = self._data_path(key)
        return path if path.is_file() else None

    # --- deleting ---------------------------------------------------------------------

    async def delete(self, key: str) -> None:
        validate_key(key)
        await anyio.to_thread.run_sync(self._delete, key)

    async def delete_prefix(self, prefix: str) -> int:
        validate_prefix(prefix)
        return await anyio.to_thread.run_sync(self._delete_prefix, prefix)

    # --- links ------------------------------------------------------------------------

    async def signed_url(self, key: str, expires_in: int, *, filename: str | None = None) -> str:
        validate_key(key)
        validate_expires_in(expires_in)
        if self._signer is None or self._public_base_url is None:
            raise StorageError("local storage signs links only with a signing key and base URL")
        expires = int(time.time()) + expires_in
        return self._signer.url(self._public_base_url, key, expires, filename)

    # --- direct (multipart) uploads ---------------------------------------------------

    async def start_multipart(self, key: str, content_type: str = DEFAULT_CONTENT_TYPE) -> str:
        validate_key(key)
        validate_content_type(content_type)
        multipart_id = uuid.uuid4().hex
        await anyio.to_thread.run_sync(self._start_multipart, multipart_id, key, content_type)
        return multipart_id

    async def part_url(
        self, key: str, multipart_id: str, number: int, size: int, expires_in: int
    ) -> str:
        validate_key(key)
        validate_expires_in(expires_in)
        _check_part(multipart_id, number, size)
        if self._signer is None or self._public_base_url is None:
            raise StorageError("local storage signs part URLs only with a signing key and base URL")
        expires = int(time.time()) + expires_in
        return self._signer.part_url(
            self._public_base_url, key, multipart_id, number, size, expires
        )

    async def put_signed_part(
        self,
        key: str,
        multipart_id: str,
        number: int,
        size: int,
        chunks: AsyncIterable[bytes],
        *,
        expires: int,
        signature: str,
    ) -> PartInfo:
        """Stores one part sent to a URL made by :meth:`part_url` (the HTTP API's
        ``PUT /blobs/{key}`` hands the request over): the signature first, so a forged
        or expired URL writes nothing."""
        if self._signer is None:
            raise StorageError("local storage takes signed parts only with a signing key")
        self._signer.verify_part(key, multipart_id, number, size, expires, signature)
        return await self.put_part(key, multipart_id, number, size, chunks)

    async def put_part(
        self, key: str, multipart_id: str, number: int, size: int, chunks: AsyncIterable[bytes]
    ) -> PartInfo:
        """Writes part ``number``: exactly ``size`` bytes, else nothing is kept (more is
        refused as soon as it arrives). A part sent again replaces the earlier one."""
        validate_key(key)
        _check_part(multipart_id, number, size)
        folder = await anyio.to_thread.run_sync(self._open_multipart, key, multipart_id)
        tmp = folder / f"{number:05d}.{uuid.uuid4().hex}.tmp"
        try:
            written, sha256 = await self._write_hashed(tmp, _at_most(chunks, size))
            if written != size:
                raise InvalidInputError(
                    f"part {number} has {written} of its {size} bytes", code="part_incomplete"
                )
            await anyio.to_thread.run_sync(tmp.replace, folder / f"{number:05d}.part")
        finally:
            tmp.unlink(missing_ok=True)
        return PartInfo(number, size, f'"{sha256}"')

    async def list_parts(self, key: str, multipart_id: str) -> list[PartInfo]:
        validate_key(key)
        return await anyio.to_thread.run_sync(self._list_parts, key, multipart_id)

    async def complete_multipart(
        self, key: str, multipart_id: str, parts: list[PartInfo]
    ) -> PutResult:
        validate_key(key)
        tmp = self._tmp_path(".part")
        try:
            result, content_type = await anyio.to_thread.run_sync(
                self._join_parts, key, multipart_id, parts, tmp
            )
            await anyio.to_thread.run_sync(self._commit, key, tmp, content_type, result)
        finally:
            tmp.unlink(missing_ok=True)
        await self.abort_multipart(key, multipart_id)  # the parts are in the blob now
        return result

    async def abort_multipart(self, key: str, multipart_id: str) -> None:
        validate_key(key)
        if _MULTIPART_ID.fullmatch(multipart_id):
            await anyio.to_thread.run_sync(self._remove_tree, self._multipart / multipart_id)

    def direct_upload_origin(self) -> str | None:
        return None  # part URLs point at the HTTP API itself

    # --- blocking helpers, run in worker threads --------------------------------------

    def _start_multipart(self, multipart_id: str, key: str, content_type: str) -> None:
        folder = self._multipart / multipart_id
        make_private_dirs(self._multipart)
        folder.mkdir(mode=DIR_MODE)
        with _create(folder / "upload.json") as out:
            out.write(json.dumps({"key": key, "content_type": content_type}).encode("utf-8"))

    def _open_multipart(self, key: str, multipart_id: str) -> Path:
        """The upload's folder, if it is open and for ``key``."""
        folder = self._multipart / multipart_id
        try:
            fields = json.loads((folder / "upload.json").read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise BlobNotFoundError(f"no open upload {multipart_id!r} of {key!r}") from exc
        if not isinstance(fields, dict) or fields.get("key") != key:
            raise BlobNotFoundError(f"no open upload {multipart_id!r} of {key!r}")
        return folder

    def _list_parts(self, key: str, multipart_id: str) -> list[PartInfo]:
        if not _MULTIPART_ID.fullmatch(multipart_id):
            raise BlobNotFoundError(f"no open upload {multipart_id!r} of {key!r}")
        folder = self._open_multipart(key, multipart_id)
        parts = []
        for entry in folder.iterdir():
            match = _PART_FILE.fullmatch(entry.name)
            if match is not None:
                with contextlib.suppress(FileNotFoundError):  # completed meanwhile
                    parts.append(PartInfo(int(match.group(1)), entry.stat().st_size))
        return sorted(parts, key=lambda part: part.number)

    def _join_parts(
        self, key: str, multipart_id: str, parts: list[PartInfo], tmp: Path
    ) -> tuple[PutResult, str]:
        """Concatenates the parts into ``tmp``, hashing on the way."""
        if not _MULTIPART_ID.fullmatch(multipart_id):
            raise BlobNotFoundError(f"no open upload {multipart_id!r} of {key!r}")
        folder = self._open_multipart(key, multipart_id)
        fields = json.loads((folder / "upload.json").read_text(encoding="utf-8"))
        content_type = str(fields.get("content_type") or DEFAULT_CONTENT_TYPE)
        digest = hashlib.sha256()
        size = 0
        with _create(tmp) as out:
            for part in parts:
                try:
                    source = (folder / f"{part.number:05d}.part").open("rb")
                except FileNotFoundError as exc:
                    raise UploadPartsMissingError(f"part {part.number} is missing") from exc
                with source:
                    if os.fstat(source.fileno()).st_size != part.size:  # re-sent meanwhile
                        raise UploadPartsMissingError(f"part {part.number} changed size")
                    while chunk := source.read(_BLOCK):
                        digest.update(chunk)
                        out.write(chunk)
                        size += len(chunk)
            os.fsync(out.fileno())
        return PutResult(size, digest.hexdigest()), content_type

    @staticmethod
    def _remove_tree(folder: Path) -> None:
        if folder.is_dir() and not folder.is_symlink():
            shutil.rmtree(folder, ignore_errors=True)

    def _data_path(self, key: str) -> Path:
        return self._data / validate_key(key)

    def _meta_path(self, key: str) -> Path:
        return self._meta / f"{validate_key(key)}.json"

    def _tmp_path(self, suffix: str) -> Path:
        return self._tmp / f"{uuid.uuid4().hex}{suffix}"

    def _prepare(self) -> None:
        for folder in (self._root, self._data, self._meta, self._tmp, self._multipart):
            make_private_dirs(folder)
            with contextlib.suppress(PermissionError):  # not ours: leave it be
                folder.chmod(DIR_MODE)
        cutoff = time.time() - _STALE_TMP
        for entry in self._tmp.iterdir():
            with contextlib.suppress(OSError):  # another process may be cleaning too
                if entry.lstat().st_mtime < cutoff:
                    if entry.is_dir() and not entry.is_symlink():
                        shutil.rmtree(entry)
                    else:
                        entry.unlink()
        cutoff = time.time() - _STALE_MULTIPART
        for entry in self._multipart.iterdir():
            with contextlib.suppress(OSError):
                # A folder's mtime moves whenever a part lands in it.
                if entry.is_dir() and not entry.is_symlink() and entry.stat().st_mtime < cutoff:
                    shutil.rmtree(entry)

    def _move_hashed(self, source: Path, tmp: Path, sha256: str | None) -> PutResult:
        """Renames ``source`` into the store when both are on one file system (no copy
        of a large clip, and no second hash when the caller gave the digest); copies
        otherwise."""
        try:
            source.rename(tmp)
        except OSError:  # another file system (EXDEV) or a read-only source
            return self._copy_hashed(source, tmp)
        tmp.chmod(FILE_MODE)  # the source's mode came with it
        with tmp.open("rb") as fh:
            os.fsync(fh.fileno())
        return PutResult(tmp.stat().st_size, sha256 or sha256_file(tmp))

    def _copy_hashed(self, source: Path, tmp: Path) -> PutResult:
        digest = hashlib.sha256()
        size = 0
        try:
            src = source.open("rb")
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError) as exc:
            raise InvalidInputError(f"no such file to store: {source}") from exc
        with src, _create(tmp) as dst:
            while chunk := src.read(self._chunk_size):
                digest.update(chunk)
                size += len(chunk)
                dst.write(chunk)
            dst.flush()
            os.fsync(dst.fileno())
        return PutResult(size, digest.hexdigest())

    def _commit(self, key: str, tmp: Path, content_type: str, result: PutResult) -> None:
        data, meta = self._data_path(key), self._meta_path(key)
        try:
            make_private_dirs(data.parent)
            make_private_dirs(meta.parent)
            if data.is_dir():
                raise IsADirectoryError(str(data))
        except (FileExistsError, NotADirectoryError, IsADirectoryError) as exc:
            raise InvalidInputError(
                f"key {key!r} collides with an existing blob or folder", code="key_conflict"
            ) from exc
        meta_tmp = self._tmp_path(".json")
        try:
            fields = {"content_type": content_type, "sha256": result.sha256}
            with _create(meta_tmp) as out:
                out.write(json.dumps(fields).encode("utf-8"))
            meta_tmp.replace(meta)
        finally:
            meta_tmp.unlink(missing_ok=True)
        tmp.replace(data)

    def _stat(self, key: str) -> BlobInfo:
        try:
            st = self._data_path(key).stat()
        except (FileNotFoundError, NotADirectoryError) as exc:
            raise BlobNotFoundError(f"no blob {key!r}") from exc
        if not stat.S_ISREG(st.st_mode):
            raise BlobNotFoundError(f"no blob {key!r}")
        try:
            fields = json.loads(self._meta_path(key).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            fields = {}  # written by hand or by a crashed put: still serve the bytes
        content_type = fields.get("content_type")
        sha256 = fields.get("sha256")
        return BlobInfo(
            key=key,
            size=st.st_size,
            content_type=content_type if isinstance(content_type, str) else DEFAULT_CONTENT_TYPE,
            etag=f'"{sha256}"' if isinstance(sha256, str) else None,
            last_modified=datetime.fromtimestamp(st.st_mtime, UTC),
        )

    def _delete(self, key: str) -> None:
        for path in (self._data_path(key), self._meta_path(key)):
            # A folder in the blob's place is not a blob: nothing to delete.
            with contextlib.suppress(FileNotFoundError, NotADirectoryError, IsADirectoryError):
                path.unlink()

    def _delete_prefix(self, prefix: str) -> int:
        count = 0
        for tree, is_data in ((self._data / prefix, True), (self._meta / prefix, False)):
            if not tree.is_dir() or tree.is_symlink():
                continue
            # Renamed away first: readers see the whole prefix vanish at once, and a crash
            # mid-delete leaves the rest in tmp/ to be swept on the next open.
            graveyard = self._tmp_path(".deleted")
            try:
                tree.rename(graveyard)
            except FileNotFoundError:
                continue
            if is_data:
                count = sum(1 for path in graveyard.rglob("*") if path.is_file())
            shutil.rmtree(graveyard)
        return count


def _check_part(multipart_id: str, number: int, size: int) -> None:
    if not _MULTIPART_ID.fullmatch(multipart_id):
        raise InvalidInputError(f"invalid upload id {multipart_id!r}")
    if not 1 <= number <= _MAX_PART_NUMBER or size < 1:
        raise InvalidInputError(f"invalid part {number} of {size} bytes")


async def _at_most(chunks: AsyncIterable[bytes], limit: int) -> AsyncGenerator[bytes, None]:
    """Passes chunks on until more than ``limit`` bytes came: then refuses (HTTP 413),
    before the extra bytes are written."""
    total = 0
    async for chunk in chunks:
        total += len(chunk)
        if total > limit:
            raise UploadTooLargeError(f"part larger than its declared {limit} bytes")
        yield chunk
