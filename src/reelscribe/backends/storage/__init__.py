"""Object storage: sources, clips and results as blobs under keys.

``reelscribe.backends.open.open_storage(url)`` picks the implementation by URL scheme:

* ``file:///abs/dir`` → :class:`LocalStorage` (links signed with an HMAC key, served by
  the HTTP API through :func:`serve_signed`);
* ``s3://bucket[/prefix]?endpoint=…&region=…`` → :class:`~.s3.S3Storage` (presigned SigV4
  links; needs the ``s3`` extra, imported only when asked for).

Use a store inside ``async with``; every implementation follows :class:`BlobStore`.
"""

from __future__ import annotations

from .base import (
    DEFAULT_CONTENT_TYPE,
    BlobInfo,
    BlobStore,
    ByteRange,
    PartInfo,
    PutResult,
    content_disposition,
    content_key,
    validate_key,
)
from .local import LocalStorage
from .signing import BlobResponse, LinkSigner, serve_blob, serve_signed

__all__ = [
    "DEFAULT_CONTENT_TYPE",
    "BlobInfo",
    "BlobResponse",
    "BlobStore",
    "ByteRange",
    "LinkSigner",
    "LocalStorage",
    "PartInfo",
    "PutResult",
    "content_disposition",
    "content_key",
    "serve_blob",
    "serve_signed",
    "validate_key",
]
