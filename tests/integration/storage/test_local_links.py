"""Local storage on a real disk: HMAC-signed links, the Range-aware responder the HTTP API
will wrap, and what only a file system can get wrong (escaping the root, key conflicts,
left-over temporary files)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import time
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import parse_qsl, unquote, urlsplit

import pytest

from reelscribe.backends.open import open_storage
from reelscribe.backends.storage import (
    BlobResponse,
    LinkSigner,
    LocalStorage,
    serve_signed,
)
from reelscribe.errors import InvalidInputError, SignedLinkError, StorageError

from .conftest import LOCAL_BASE_URL, SIGNING_KEY

pytestmark = pytest.mark.anyio

DATA = bytes(range(256)) * 4  # 1,024 bytes


@pytest.fixture
async def local(tmp_path: Path) -> AsyncIterator[LocalStorage]:
    async with LocalStorage(
        tmp_path / "root", signer=LinkSigner.from_key(SIGNING_KEY), public_base_url=LOCAL_BASE_URL
    ) as store:
        await store.put_stream("jobs/1/clip.mp4", chunked(DATA), "video/mp4")
        yield store


async def chunked(data: bytes) -> AsyncIterator[bytes]:
    yield data[:100]
    yield data[100:]


async def body(response: BlobResponse) -> bytes:
    return b"".join([chunk async for chunk in response.body])


async def open_link(store: LocalStorage, url: str, range_header: str | None = None) -> BlobResponse:
    """What the HTTP route will do: split the link into key and query, then serve it."""
    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query))
    assert store.signer is not None
    return await serve_signed(
        store,
        store.signer,
        unquote(parts.path).removeprefix("/blobs/"),
        expires=int(query["expires"]),
        signature=query["sig"],
        filename=query.get("filename"),
        range_header=range_header,
    )


async def test_link_serves_the_whole_blob(local: LocalStorage) -> None:
    url = await local.signed_url("jobs/1/clip.mp4", 300, filename="my clip.mp4")
    assert url.startswith(f"{LOCAL_BASE_URL}/jobs/1/clip.mp4?expires=")
    response = await open_link(local, url)
    assert response.status == 200
    assert await body(response) == DATA
    headers = response.headers
    assert headers["Content-Length"] == str(len(DATA))
    assert headers["Content-Type"] == "video/mp4"
    assert headers["Accept-Ranges"] == "bytes"
    assert headers["ETag"] == f'"{hashlib.sha256(DATA).hexdigest()}"'
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["Content-Disposition"] == 'attachment; filename="my clip.mp4"'
    assert headers["Last-Modified"].endswith(" GMT")


@pytest.mark.parametrize(
    ("header", "first", "last"),
    [
        ("bytes=10-19", 10, 19),
        ("bytes=1000-", 1000, 1023),
        ("bytes=-24", 1000, 1023),
        ("bytes=1020-5000", 1020, 1023),
        ("bytes=0-0", 0, 0),
    ],
)
async def test_range_request_gets_206(
    local: LocalStorage, header: str, first: int, last: int
) -> None:
    url = await local.signed_url("jobs/1/clip.mp4", 300)
    response = await open_link(local, url, header)
    assert response.status == 206
    assert await body(response) == DATA[first : last + 1]
    assert response.headers["Content-Range"] == f"bytes {first}-{last}/{len(DATA)}"
    assert response.headers["Content-Length"] == str(last - first + 1)
    assert response.headers["Content-Type"] == "video/mp4"


@pytest.mark.parametrize("header", ["bytes=1024-", "bytes=5000-6000", "bytes=-0"])
async def test_unsatisfiable_range_gets_416(local: LocalStorage, header: str) -> None:
    response = await open_link(local, await local.signed_url("jobs/1/clip.mp4", 300), header)
    assert response.status == 416
    assert response.headers["Content-Range"] == f"bytes */{len(DATA)}"
    assert await body(response) == b""


@pytest.mark.parametrize("header", ["bytes=0-1,5-6", "items=0-1", "bytes=9-2", "bytes=x-"])
async def test_ranges_we_do_not_serve_get_the_whole_blob(local: LocalStorage, header: str) -> None:
    response = await open_link(local, await local.signed_url("jobs/1/clip.mp4", 300), header)
    assert response.status == 200
    assert await body(response) == DATA


async def test_expired_link_refused(local: LocalStorage) -> None:
    url = await local.signed_url("jobs/1/clip.mp4", 60)
    query = dict(parse_qsl(urlsplit(url).query))
    signer = LinkSigner.from_key(SIGNING_KEY)
    expires = int(query["expires"])
    signer.verify("jobs/1/clip.mp4", expires, query["sig"], now=expires - 1)
    with pytest.raises(SignedLinkError) as caught:
        signer.verify("jobs/1/clip.mp4", expires, query["sig"], now=expires)
    assert caught.value.code == "link_expired"
    with pytest.raises(SignedLinkError):
        await serve_signed(
            local,
            signer,
            "jobs/1/clip.mp4",
            expires=expires,
            signature=query["sig"],
            now=time.time() + 61,
        )


@pytest.mark.parametrize("change", ["key", "expires", "filename", "signature", "secret"])
async def test_tampered_link_refused(local: LocalStorage, change: str) -> None:
    url = await local.signed_url("jobs/1/clip.mp4", 60, filename="clip.mp4")
    query = dict(parse_qsl(urlsplit(url).query))
    key, expires, filename, signature = (
        "jobs/1/clip.mp4",
        int(query["expires"]),
        "clip.mp4",
        query["sig"],
    )
    signer = LinkSigner.from_key(SIGNING_KEY)
    if change == "key":
        key = "jobs/1/other.mp4"
    elif change == "expires":
        expires += 3600
    elif change == "filename":
        filename = "evil.html"
    elif change == "signature":
        signature = signature[:-2] + ("AA" if signature[-2:] != "AA" else "BB")
    else:
        signer = LinkSigner.from_key("another key, also long enough")
    with pytest.raises(SignedLinkError) as caught:
        await serve_signed(
            local, signer, key, expires=expires, signature=signature, filename=filename
        )
    assert caught.value.code == "link_invalid"


async def test_non_ascii_signature_refused(local: LocalStorage) -> None:
    signer = LinkSigner.from_key(SIGNING_KEY)
    with pytest.raises(SignedLinkError):
        signer.verify("jobs/1/clip.mp4", int(time.time()) + 60, "é" * 43)


@pytest.mark.parametrize("key", ["../outside.txt", "jobs/../../outside.txt", "/etc/passwd"])
async def test_traversal_refused_even_with_a_valid_mac(local: LocalStorage, key: str) -> None:
    (local.root.parent / "outside.txt").write_text("secret")
    expires = int(time.time()) + 60
    with pytest.raises(InvalidInputError):
        await local.signed_url(key, 60)
    # A MAC made by hand over the bad key: the key is still refused before any file access.
    message = f'["reelscribe-blob-link-v1","{key}",{expires},null]'.encode()
    mac = hmac.new(SIGNING_KEY.encode(), message, hashlib.sha256).digest()
    signature = base64.urlsafe_b64encode(mac).rstrip(b"=").decode()
    with pytest.raises(InvalidInputError):
        await serve_signed(
            local, LinkSigner.from_key(SIGNING_KEY), key, expires=expires, signature=signature
        )


async def test_short_signing_key_refused() -> None:
    with pytest.raises(InvalidInputError):
        LinkSigner.from_key("short")


async def test_links_need_a_signer(tmp_path: Path) -> None:
    async with open_storage(tmp_path.as_uri()) as store:
        with pytest.raises(StorageError):
            await store.signed_url("a.txt", 60)


async def test_key_and_folder_conflict(local: LocalStorage) -> None:
    with pytest.raises(InvalidInputError) as caught:
        await local.put_stream("jobs/1/clip.mp4/inner", chunked(b"x"))
    assert caught.value.code == "key_conflict"
    with pytest.raises(InvalidInputError):
        await local.put_stream("jobs/1", chunked(b"x"))
    assert not list((local.root / "tmp").iterdir())  # nothing left behind


async def test_stale_temporary_files_swept_on_open(tmp_path: Path) -> None:
    root = tmp_path / "root"
    (root / "tmp").mkdir(parents=True)
    old, fresh = root / "tmp" / "old.part", root / "tmp" / "fresh.part"
    old.write_bytes(b"x")
    fresh.write_bytes(b"x")
    two_days_ago = time.time() - 2 * 86400
    os.utime(old, (two_days_ago, two_days_ago))
    async with LocalStorage(root):
        pass
    assert not old.exists()
    assert fresh.exists()


@pytest.mark.parametrize(
    "url", ["file://host/abs", "file:///abs?x=1", "ftp://x/y", "memory://", "relative/dir"]
)
def test_bad_storage_urls_refused(url: str) -> None:
    with pytest.raises(InvalidInputError):
        open_storage(url)


def test_file_url_opens_local_storage(tmp_path: Path) -> None:
    store = open_storage(f"file://{tmp_path}/with%20space")
    assert isinstance(store, LocalStorage)
    assert store.root == tmp_path / "with space"
