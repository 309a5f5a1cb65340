"""S3-only behaviour, against a real SeaweedFS: multipart really happens, failed or
cancelled uploads are aborted, links are signed for the public endpoint, and a
misconfigured store fails when opened."""

from __future__ import annotations

import hashlib
import os
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING

import anyio
import httpx
import pytest
from aiobotocore.session import get_session

from reelscribe.backends.open import open_storage
from reelscribe.backends.storage.s3 import S3Options, S3Storage
from reelscribe.errors import InvalidInputError, NetworkError, StorageError

from .conftest import ACCESS_KEY, BUCKET, SECRET_KEY, Seaweed, free_ports

if TYPE_CHECKING:
    from types_aiobotocore_s3 import S3Client

pytestmark = pytest.mark.anyio

MiB = 1024 * 1024


@pytest.fixture
def prefix() -> str:
    return f"t-{uuid.uuid4().hex}"


@pytest.fixture
async def s3(seaweed: Seaweed, prefix: str) -> AsyncIterator[S3Storage]:
    async with S3Storage.from_url(seaweed.url(prefix)) as store:
        yield store


@pytest.fixture
async def raw(seaweed: Seaweed) -> AsyncIterator[S3Client]:
    """A plain client, to look behind the store's back."""
    async with get_session().create_client(
        "s3",
        region_name="us-east-1",
        endpoint_url=seaweed.endpoint,
        aws_access_key_id=ACCESS_KEY,
        aws_secret_access_key=SECRET_KEY,
    ) as client:
        yield client


async def chunked(data: bytes, size: int) -> AsyncIterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start : start + size]


async def open_uploads(raw: S3Client, prefix: str) -> list[str]:
    listing = await raw.list_multipart_uploads(Bucket=BUCKET, Prefix=prefix)
    return [upload["Key"] for upload in listing.get("Uploads", [])]


async def test_large_file_goes_up_in_parts(s3: S3Storage, tmp_path: Path) -> None:
    source = tmp_path / "big.bin"
    source.write_bytes(os.urandom(11 * MiB))
    await s3.put_file("big.bin", source)
    etag = (await s3.stat("big.bin")).etag
    assert etag is not None
    assert etag.endswith('-3"')  # S3's multipart ETag: MD5 of the part MD5s, then "-parts"


async def test_stream_goes_up_in_parts(s3: S3Storage) -> None:
    data = os.urandom(12 * MiB)
    result = await s3.put_stream("streamed.bin", chunked(data, 256 * 1024))
    assert result.sha256 == hashlib.sha256(data).hexdigest()
    info = await s3.stat("streamed.bin")
    assert info.etag is not None
    assert info.etag.endswith('-3"')
    assert b"".join([chunk async for chunk in s3.get_stream("streamed.bin")]) == data


async def test_small_stream_is_one_put(s3: S3Storage) -> None:
    data = b"x" * 1000
    await s3.put_stream("small.txt", chunked(data, 100), "text/plain")
    info = await s3.stat("small.txt")
    assert info.etag == f'"{hashlib.md5(data).hexdigest()}"'


async def test_failed_stream_aborts_the_upload(s3: S3Storage, raw: S3Client, prefix: str) -> None:
    async def failing() -> AsyncIterator[bytes]:
        yield os.urandom(6 * MiB)
        yield b"more"
        assert await open_uploads(raw, prefix) == [f"{prefix}/broken.bin"]  # under way
        raise RuntimeError("source went away")

    with pytest.raises(RuntimeError, match="source went away"):
        await s3.put_stream("broken.bin", failing())
    assert await open_uploads(raw, prefix) == []
    assert not await s3.exists("broken.bin")


async def test_cancelled_stream_aborts_the_upload(
    s3: S3Storage, raw: S3Client, prefix: str
) -> None:
    started = anyio.Event()

    async def endless() -> AsyncIterator[bytes]:
        yield os.urandom(6 * MiB)
        yield b"more"
        started.set()
        await anyio.sleep_forever()
        yield b"never"

    async with anyio.create_task_group() as tasks:
        tasks.start_soon(s3.put_stream, "endless.bin", endless())
        await started.wait()
        assert await open_uploads(raw, prefix) == [f"{prefix}/endless.bin"]
        tasks.cancel_scope.cancel()
    assert await open_uploads(raw, prefix) == []


async def test_keys_live_under_the_url_prefix(s3: S3Storage, raw: S3Client, prefix: str) -> None:
    await s3.put_stream("a/b.txt", chunked(b"hi", 1))
    listing = await raw.list_objects_v2(Bucket=BUCKET, Prefix=f"{prefix}/")
    assert [item["Key"] for item in listing.get("Contents", [])] == [f"{prefix}/a/b.txt"]


async def test_links_signed_for_the_public_endpoint(seaweed: Seaweed, prefix: str) -> None:
    public = f"http://localhost:{seaweed.port}"
    async with open_storage(seaweed.url(prefix, public_endpoint=public)) as store:
        await store.put_stream("p.txt", chunked(b"public", 2), "text/plain")
        url = await store.signed_url("p.txt", 60)
    assert url.startswith(f"{public}/{BUCKET}/{prefix}/p.txt?")
    async with httpx.AsyncClient() as http:
        response = await http.get(url)
    assert response.status_code == 200
    assert response.content == b"public"


async def test_credentials_from_environment(
    seaweed: Seaweed, prefix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", ACCESS_KEY)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
    url = f"s3://{BUCKET}/{prefix}?endpoint={seaweed.endpoint}"
    async with open_storage(url) as store:
        await store.put_stream("env.txt", chunked(b"env", 1))
        assert await store.exists("env.txt")


async def test_wrong_secret_fails_at_open(seaweed: Seaweed) -> None:
    with pytest.raises(StorageError):
        async with open_storage(seaweed.url(secret_access_key="not-the-secret")):
            pass


async def test_missing_bucket_fails_at_open(seaweed: Seaweed) -> None:
    url = seaweed.url().replace(f"s3://{BUCKET}/", "s3://no-such-bucket/")
    with pytest.raises(StorageError, match="does not exist"):
        async with open_storage(url):
            pass


async def test_unreachable_endpoint_is_transient() -> None:
    (port,) = free_ports(1)  # nothing listens there
    url = f"s3://{BUCKET}?endpoint=http://127.0.0.1:{port}"
    with pytest.raises(NetworkError) as caught:
        async with open_storage(url + "&access_key_id=k&secret_access_key=s&max_attempts=1"):
            pass
    assert caught.value.retryable


def test_url_options() -> None:
    options = S3Options.from_url(
        "s3://media/prod/blobs/?endpoint=http://s3.internal:8333&region=eu-west-1"
        "&secret_access_key=hush&part_size_mib=16"
    )
    assert options.bucket == "media"
    assert options.prefix == "prod/blobs/"
    assert options.addressing_style == "path"  # self-hosted servers rarely have bucket DNS
    assert options.part_size == 16 * MiB
    assert "hush" not in repr(options)
    assert S3Options.from_url("s3://media").addressing_style == "auto"


@pytest.mark.parametrize(
    "url",
    [
        "s3://media?endpont=http://x",  # a typo must not fall back to AWS
        "s3://media?region=a&region=b",
        "s3://Bad_Bucket",
        "s3://media?part_size_mib=4",
        "s3://media?endpoint=ftp://x",
        "s3://media?max_concurrency=0",
        "s3://media/../x",
    ],
)
def test_bad_urls_refused(url: str) -> None:
    with pytest.raises(InvalidInputError):
        S3Options.from_url(url)
