"""Signed download links for stores that cannot presign (local disk), and a
framework-agnostic responder that serves a blob with HTTP Range support.

A link is ``{public_base_url}/{key}?expires=…&filename=…&sig=…``; the signature is
HMAC-SHA256 over the key, the expiry and the optional file name, so none of them can be
changed. A part URL of a direct upload (``PUT``) is
``{public_base_url}/{key}?upload_id=…&part=…&size=…&expires=…&sig=…``, signed over all
of those under another context string, so a download link can never be used as a part
URL or the other way round, and a part URL writes one part of one upload, of one size.
The HTTP API only parses the query and hands the values to :func:`serve_signed`,
then turns the :class:`BlobResponse` into its framework's streaming response.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import AsyncGenerator
from dataclasses import dataclass, field
from email.utils import format_datetime
from urllib.parse import quote, urlencode

from reelscribe.errors import (
    InvalidInputError,
    LinkExpiredError,
    RangeNotSatisfiableError,
    SignedLinkError,
)

from .base import BlobStore, ByteRange, clean_filename, content_disposition, validate_key

#: Versioned so the message format can change without old links meaning something new.
_CONTEXT = "reelscribe-blob-link-v1"
_PART_CONTEXT = "reelscribe-upload-part-v1"
_MIN_SECRET_BYTES = 16


@dataclass(frozen=True, slots=True)
class LinkSigner:
    secret: bytes = field(repr=False)

    def __post_init__(self) -> None:
        if len(self.secret) < _MIN_SECRET_BYTES:
            raise InvalidInputError(f"signing key must be at least {_MIN_SECRET_BYTES} bytes")

    @classmethod
    def from_key(cls, key: str | bytes) -> LinkSigner:
        return cls(key.encode() if isinstance(key, str) else key)

    def signature(self, key: str, expires: int, filename: str | None = None) -> str:
        validate_key(key)
        return self._mac([_CONTEXT, key, expires, filename])

    def _mac(self, fields: list[str | int | None]) -> str:
        # JSON keeps the fields apart whatever they contain (no delimiter ambiguity).
        message = json.dumps(fields, separators=(",", ":"))
        mac = hmac.new(self.secret, message.encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(mac).rstrip(b"=").decode()

    def part_signature(self, key: str, upload_id: str, number: int, size: int, expires: int) -> str:
        validate_key(key)
        return self._mac([_PART_CONTEXT, key, upload_id, number, size, expires])

    def part_url(
        self, base_url: str, key: str, upload_id: str, number: int, size: int, expires: int
    ) -> str:
        query = {
            "upload_id": upload_id,
            "part": str(number),
            "size": str(size),
            "expires": str(expires),
            "sig": self.part_signature(key, upload_id, number, size, expires),
        }
        return f"{base_url.rstrip('/')}/{quote(key, safe='/')}?{urlencode(query)}"

    def verify_part(
        self,
        key: str,
        upload_id: str,
        number: int,
        size: int,
        expires: int,
        signature: str,
        *,
        now: float | None = None,
    ) -> None:
        """Like :meth:`verify`, for a part URL made by :meth:`part_url`."""
        expected = self.part_signature(key, upload_id, number, size, expires)
        self._check(expected, signature, expires, now)

    def url(self, base_url: str, key: str, expires: int, filename: str | None = None) -> str:
        name = None if filename is None else clean_filename(filename)
        query = {"expires": str(expires)}
        if name is not None:
            query["filename"] = name
        query["sig"] = self.signature(key, expires, name)
        return f"{base_url.rstrip('/')}/{quote(key, safe='/')}?{urlencode(query)}"

    def verify(
        self,
        key: str,
        expires: int,
        signature: str,
        *,
        filename: str | None = None,
        now: float | None = None,
    ) -> None:
        """Raises :class:`SignedLinkError` unless the link is genuine and not expired.

        The signature is checked first so a forged link never learns whether it expired.
        """
        expected = self.signature(key, expires, filename)
        self._check(expected, signature, expires, now)

    @staticmethod
    def _check(expected: str, signature: str, expires: int, now: float | None) -> None:
        if not hmac.compare_digest(expected.encode(), signature.encode("ascii", "replace")):
            raise SignedLinkError("invalid link signature")
        if (time.time() if now is None else now) >= expires:
            raise LinkExpiredError("link expired")


@dataclass(frozen=True, slots=True)
class BlobResponse:
    status: int
    headers: dict[str, str]
    body: AsyncGenerator[bytes, None]


async def serve_blob(
    store: BlobStore, key: str, *, range_header: str | None = None, filename: str | None = None
) -> BlobResponse:
    """Answers a GET for ``key``: 200 with the whole blob, 206 with one range, 416 when the
    range lies past the end. Raises ``BlobNotFoundError`` before any byte is sent."""
    info = await store.stat(key)
    byte_range = ByteRange.from_header(range_header) if range_header else None
    if byte_range is None:
        span = None
    else:
        try:
            span = byte_range.resolve(info.size)
        except RangeNotSatisfiableError:
            headers = {
                "Accept-Ranges": "bytes",
                "Content-Range": f"bytes */{info.size}",
                "Content-Length": "0",
            }
            return BlobResponse(416, headers, _empty())
    headers = {
        "Accept-Ranges": "bytes",
        "Content-Type": info.content_type,
        # Uploaded media must never be sniffed into HTML/script by a browser.
        "X-Content-Type-Options": "nosniff",
    }
    if info.etag:
        headers["ETag"] = info.etag
    if info.last_modified:
        headers["Last-Modified"] = format_datetime(info.last_modified, usegmt=True)
    if filename is not None:
        headers["Content-Disposition"] = content_disposition(filename)
    if span is None:
        headers["Content-Length"] = str(info.size)
        return BlobResponse(200, headers, store.get_stream(key))
    first, last = span
    headers["Content-Range"] = f"bytes {first}-{last}/{info.size}"
    headers["Content-Length"] = str(last - first + 1)
    return BlobResponse(206, headers, store.get_stream(key, ByteRange(first, last)))


async def serve_signed(
    store: BlobStore,
    signer: LinkSigner,
    key: str,
    *,
    expires: int,
    signature: str,
    filename: str | None = None,
    range_header: str | None = None,
    now: float | None = None,
) -> BlobResponse:
    """Verifies a link made by :meth:`LinkSigner.url`, then serves it like :func:`serve_blob`."""
    signer.verify(key, expires, signature, filename=filename, now=now)
    return await serve_blob(store, key, range_header=range_header, filename=filename)


async def _empty() -> AsyncGenerator[bytes, None]:
    nothing: tuple[bytes, ...] = ()
    for chunk in nothing:
        yield chunk
