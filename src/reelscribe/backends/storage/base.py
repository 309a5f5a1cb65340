"""The storage contract: the :class:`BlobStore` protocol and what every store shares.

Keys are ``/``-separated relative paths (``jobs/42/source.mp4``). They are validated here,
once, for every backend, so a key that is refused on disk is refused on S3 too and one test
body covers both. Errors raised by stores (all in the tree of :mod:`reelscribe.errors`)::

    BlobNotFoundError          NotFoundError     "blob_not_found"
    RangeNotSatisfiableError   InvalidInputError "range_not_satisfiable"
    StorageError               ReelscribeError   "storage_error"  misconfigured store (denied,
                                                                   no bucket): not retryable
    NetworkError               TransientError    unreachable or 5xx: retry with backoff

The stores subclass :class:`BlobStore`, so what is the same for all (``exists``) is
written once, here.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import AsyncGenerator, AsyncIterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from types import TracebackType
from typing import NamedTuple, Protocol, Self
from urllib.parse import quote

from reelscribe.errors import BlobNotFoundError, InvalidInputError, RangeNotSatisfiableError

DEFAULT_CONTENT_TYPE = "application/octet-stream"
#: S3's limit on a key, in UTF-8 bytes; applied everywhere so both stores accept the same keys.
MAX_KEY_BYTES = 1024
#: SigV4 presigned URLs live at most 7 days; local links follow the same rule.
MAX_EXPIRES_IN = 7 * 24 * 3600

# Control characters would let a key smuggle CR/LF into headers; backslashes are path
# separators on Windows and in some S3 gateways.
_BAD_KEY_CHARS = re.compile(r"[\x00-\x1f\x7f\\]")
_SHA256_HEX = re.compile(r"[0-9a-f]{64}")
_SUFFIX = re.compile(r"[A-Za-z0-9._-]{0,64}")
_CONTENT_TYPE = re.compile(
    r"[A-Za-z0-9!#$&^_.+-]+/[A-Za-z0-9!#$&^_.+-]+"
    r"(\s*;\s*[A-Za-z0-9!#$&^_.+-]+=(\"[^\"\x00-\x1f\x7f]*\"|[A-Za-z0-9!#$&^_.+-]+))*"
)
_RANGE_HEADER = re.compile(r"bytes=(\d*)-(\d*)", re.IGNORECASE)  # units are case-insensitive


class PutResult(NamedTuple):
    size: int
    #: Hex SHA-256 of the bytes written, computed while they passed through.
    sha256: str


@dataclass(frozen=True, slots=True)
class PartInfo:
    """One part of a multipart upload that has arrived in the store."""

    number: int
    size: int
    #: What S3 wants back at completion; local parts have none.
    etag: str | None = None


@dataclass(frozen=True, slots=True)
class BlobInfo:
    key: str
    size: int
    content_type: str
    #: Quoted, as HTTP sends it; S3's is an MD5 (or ``"…-N"`` after a multipart upload).
    etag: str | None = None
    last_modified: datetime | None = None


@dataclass(frozen=True, slots=True)
class ByteRange:
    """Bytes ``start``..``end`` inclusive, counted as HTTP counts them.

    ``end=None`` reads to the end; ``ByteRange.last(n)`` is the final ``n`` bytes.
    """

    start: int = 0
    end: int | None = None
    #: When set, the range is the last ``suffix`` bytes and start/end are ignored.
    suffix: int | None = None

    def __post_init__(self) -> None:
        if self.start < 0 or (self.end is not None and self.end < self.start):
            raise InvalidInputError(f"invalid byte range {self.start}-{self.end}")
        if self.suffix is not None and self.suffix < 0:
            raise InvalidInputError(f"invalid suffix length {self.suffix}")

    @classmethod
    def last(cls, count: int) -> ByteRange:
        return cls(suffix=count)

    @classmethod
    def from_header(cls, header: str) -> ByteRange | None:
        """Parses a ``Range`` header; ``None`` for forms we ignore (several ranges, other
        units, bad syntax), which RFC 9110 §14.2 allows: the answer is then the whole blob."""
        match = _RANGE_HEADER.fullmatch(header.strip())
        if match is None:
            return None
        first, last = match.groups()
        if not first:
            return cls.last(int(last)) if last else None
        if last and int(last) < int(first):
            return None
        return cls(int(first), int(last) if last else None)

    def header(self) -> str:
        if self.suffix is not None:
            return f"bytes=-{self.suffix}"
        return f"bytes={self.start}-{'' if self.end is None else self.end}"

    def resolve(self, size: int) -> tuple[int, int]:
        """The first and last byte (inclusive) of a blob of ``size`` bytes; an end past the
        blob is clamped, as HTTP and S3 do."""
        if self.suffix is not None:
            if self.suffix == 0 or size == 0:
                raise RangeNotSatisfiableError(f"{self.header()} of {size} bytes", size=size)
            return max(0, size - self.suffix), size - 1
        if self.start >= size:
            raise RangeNotSatisfiableError(f"{self.header()} of {size} bytes", size=size)
        return self.start, size - 1 if self.end is None else min(self.end, size - 1)


class BlobStore(Protocol):
    """Where blobs live. Use inside ``async with``; every method validates its key first.

    ``get_stream`` is an async generator: errors (a missing blob) surface on the first
    iteration, and a caller that stops early should close it (``contextlib.aclosing``) so
    the file or connection is released at once.
    """

    async def __aenter__(self) -> Self: ...

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...

    async def put_file(
        self,
        key: str,
        path: Path,
        content_type: str = DEFAULT_CONTENT_TYPE,
        *,
        move: bool = False,
        sha256: str | None = None,
    ) -> PutResult:
        """Stores a file. ``move=True``: the caller gives the file up, so a local store
        may rename it into place instead of copying it (the file is gone afterwards).
        ``sha256``: the file's digest, when the caller already hashed it (to name a
        content-addressed key); a store that does not copy the bytes need not hash
        them again."""
        ...

    async def put_stream(
        self, key: str, chunks: AsyncIterable[bytes], content_type: str = DEFAULT_CONTENT_TYPE
    ) -> PutResult: ...

    def get_stream(
        self, key: str, byte_range: ByteRange | None = None
    ) -> AsyncGenerator[bytes, None]: ...

    async def stat(self, key: str) -> BlobInfo: ...

    async def exists(self, key: str) -> bool:
        """Whether a blob is stored under ``key`` (a store that subclasses BlobStore
        gets this answer from :meth:`stat`)."""
        try:
            await self.stat(key)
        except BlobNotFoundError:
            return False
        return True

    def local_path(self, key: str) -> Path | None:
        """The blob's file when the store is a local directory (read it, never write
        it), so a worker on the same machine can skip a copy; None elsewhere."""
        ...

    async def delete(self, key: str) -> None:
        """Removes one blob; a missing blob is not an error (S3 behaves so)."""

    async def delete_prefix(self, prefix: str) -> int:
        """Removes every blob under ``prefix`` (which must end in ``/``); returns how many."""

    async def signed_url(self, key: str, expires_in: int, *, filename: str | None = None) -> str:
        """A URL that downloads the blob without credentials for ``expires_in`` seconds,
        as an attachment named ``filename`` when given."""

    # --- direct (presigned) multipart uploads: clients send the bytes themselves ------

    async def start_multipart(self, key: str, content_type: str = DEFAULT_CONTENT_TYPE) -> str:
        """Opens a multipart upload of ``key``; returns the store's id for it."""
        ...

    async def part_url(
        self, key: str, multipart_id: str, number: int, size: int, expires_in: int
    ) -> str:
        """A URL that takes one ``PUT`` of part ``number`` (exactly ``size`` bytes) for
        ``expires_in`` seconds, without credentials; it can write nothing else."""
        ...

    async def list_parts(self, key: str, multipart_id: str) -> list[PartInfo]:
        """The parts that have arrived, by number; raises ``BlobNotFoundError`` when the
        multipart upload is not open (completed, aborted or never started)."""
        ...

    async def complete_multipart(
        self, key: str, multipart_id: str, parts: list[PartInfo]
    ) -> PutResult:
        """Joins ``parts`` (as :meth:`list_parts` gave them, in order) into the blob and
        returns its size and SHA-256, computed from the stored bytes."""
        ...

    async def abort_multipart(self, key: str, multipart_id: str) -> None:
        """Drops an open multipart upload and its parts; a missing one is not an error."""

    def direct_upload_origin(self) -> str | None:
        """The origin (``scheme://host[:port]``) part URLs point at when it is not the
        API's own: a browser page must be allowed to connect there."""
        ...


def validate_key(key: str) -> str:
    """Returns ``key`` if it is a safe relative path, else raises :class:`InvalidInputError`."""
    try:
        too_long = len(key.encode("utf-8")) > MAX_KEY_BYTES
    except UnicodeEncodeError:  # lone surrogates cannot be stored by any backend
        too_long = True
    if not key or too_long:
        raise InvalidInputError(f"invalid storage key {key!r}: empty or too long")
    if key.startswith("/") or _BAD_KEY_CHARS.search(key):
        raise InvalidInputError(f"invalid storage key {key!r}: absolute or bad characters")
    if any(part in ("", ".", "..") for part in key.split("/")):
        raise InvalidInputError(f"invalid storage key {key!r}: empty, '.' or '..' segment")
    return key


def validate_prefix(prefix: str) -> str:
    """A prefix is a key followed by ``/``: both stores then delete the same set of blobs
    (on S3 ``jobs/1`` would also match ``jobs/10/…``)."""
    if not prefix.endswith("/"):
        raise InvalidInputError(f"invalid storage prefix {prefix!r}: must end with '/'")
    validate_key(prefix[:-1])
    return prefix


def validate_content_type(content_type: str) -> str:
    if len(content_type) > 255 or not _CONTENT_TYPE.fullmatch(content_type):
        raise InvalidInputError(f"invalid content type {content_type!r}")
    return content_type


def validate_expires_in(expires_in: int) -> int:
    if not 1 <= expires_in <= MAX_EXPIRES_IN:
        raise InvalidInputError(f"expires_in must be 1..{MAX_EXPIRES_IN} seconds")
    return expires_in


def content_key(sha256: str, suffix: str = "") -> str:
    """The key of a content-addressed blob: ``sha256/ab/abcd….srt``. The two-character
    fan-out keeps local directories small."""
    digest = sha256.lower()
    if not _SHA256_HEX.fullmatch(digest):
        raise InvalidInputError(f"not a hex SHA-256: {sha256!r}")
    if not _SUFFIX.fullmatch(suffix) or ".." in suffix:
        raise InvalidInputError(f"invalid content key suffix {suffix!r}")
    return f"sha256/{digest[:2]}/{digest}{suffix}"


def clean_filename(filename: str) -> str:
    """A download name safe for a header: last path segment, no control characters or
    quotes. Idempotent, so a signed name and the served name agree."""
    name = re.sub(r"[\x00-\x1f\x7f\"]", "", filename.replace("\\", "/").rsplit("/", 1)[-1])
    name = name.strip().strip(".")
    if not name:
        raise InvalidInputError(f"invalid download file name {filename!r}")
    return name[:200]


def content_disposition(filename: str) -> str:
    """``attachment`` with an ASCII fallback name plus the RFC 6266 UTF-8 form when needed."""
    name = clean_filename(filename)
    fallback = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    fallback = re.sub(r"[^A-Za-z0-9 ._()+,-]", "_", fallback).strip() or "download"
    value = f'attachment; filename="{fallback}"'
    if fallback != name:
        value += f"; filename*=UTF-8''{quote(name, safe='')}"
    return value
