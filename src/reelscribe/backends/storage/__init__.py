"""Object storage: sources, clips and results as blobs under keys.

``open_storage(url)`` picks the implementation by URL scheme:

* ``file:///abs/dir`` → :class:`LocalStorage` (links signed with an HMAC key, served by
  the HTTP API through :func:`serve_signed`);
* ``s3://bucket[/prefix]?endpoint=…&region=…`` → :class:`~.s3.S3Storage` (presigned SigV4
  links; needs the ``s3`` extra, imported only when asked for).

Use a store inside ``async with``; every implementation follows :class:`BlobStore`.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from reelscribe.errors import InvalidInputError, StorageError

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
    "open_storage",
    "serve_blob",
    "serve_signed",
    "validate_key",
]


def open_storage(
    url: str, *, signing_key: str | bytes | None = None, public_base_url: str | None = None
) -> BlobStore:
    """A store for ``url``, not yet opened: use it as ``async with open_storage(…) as store``.

    ``signing_key`` and ``public_base_url`` (where the HTTP API serves blobs) let a local
    store make download links; S3 presigns with its own credentials and ignores them.
    """
    scheme = urlsplit(url).scheme
    if scheme == "file":
        signer = None if signing_key is None else LinkSigner.from_key(signing_key)
        return LocalStorage.from_url(url, signer=signer, public_base_url=public_base_url)
    if scheme == "s3":
        try:
            from .s3 import S3Storage
        except ImportError as exc:
            raise StorageError(
                "s3:// storage needs the s3 extra: pip install 'reelscribe[s3]'"
            ) from exc
        return S3Storage.from_url(url)
    raise InvalidInputError(f"unsupported storage URL {scheme!r}: use file:// or s3://")
