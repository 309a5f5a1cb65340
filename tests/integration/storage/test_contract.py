"""One contract, every backend: each test here runs against LocalStorage and S3Storage
(a real SeaweedFS) through the parametrized ``store`` fixture."""

from __future__ import annotations

import asyncio
import hashlib
import os
from collections.abc import AsyncIterator
from contextlib import aclosing
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import httpx
import pytest

from reelscribe.backends.storage import BlobStore, ByteRange, content_key
from reelscribe.errors import BlobNotFoundError, InvalidInputError, RangeNotSatisfiableError

pytestmark = pytest.mark.anyio

MiB = 1024 * 1024


async def chunked(data: bytes, size: int) -> AsyncIterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start : start + size]


async def read_all(store: BlobStore, key: str, byte_range: ByteRange | None = None) -> bytes:
    return b"".join([chunk async for chunk in store.get_stream(key, byte_range)])


async def test_put_stream_round_trip(store: BlobStore) -> None:
    data = os.urandom(300_000)
    result = await store.put_stream("jobs/1/out.json", chunked(data, 64 * 1024), "application/json")
    assert result == (len(data), hashlib.sha256(data).hexdigest())
    info = await store.stat("jobs/1/out.json")
    assert (info.key, info.size, info.content_type) == (
        "jobs/1/out.json",
        len(data),
        "application/json",
    )
    assert info.etag
    assert info.last_modified
    assert await store.exists("jobs/1/out.json")
    assert await read_all(store, "jobs/1/out.json") == data


async def test_put_file_larger_than_two_parts(store: BlobStore, tmp_path: Path) -> None:
    data = os.urandom(11 * MiB + 12_345)  # three 5 MiB parts on S3 (see the s3 fixture URL)
    source = tmp_path / "source.mp4"
    source.write_bytes(data)
    result = await store.put_file("jobs/2/source.mp4", source, "video/mp4")
    assert result == (len(data), hashlib.sha256(data).hexdigest())
    assert (await store.stat("jobs/2/source.mp4")).content_type == "video/mp4"
    copy = await read_all(store, "jobs/2/source.mp4")
    assert hashlib.sha256(copy).digest() == hashlib.sha256(data).digest()


async def test_put_file_needs_a_file(store: BlobStore, tmp_path: Path) -> None:
    for missing in (tmp_path / "nope.mp4", tmp_path):
        with pytest.raises(InvalidInputError):
            await store.put_file("jobs/3/source.mp4", missing)
    assert not await store.exists("jobs/3/source.mp4")


async def test_put_stream_of_uneven_chunks_across_many_blocks(store: BlobStore) -> None:
    """Chunks that straddle the local store's 4 MiB blocks and S3's parts: every
    byte arrives once and in order, and the hash taken on the way is the file's."""
    data = os.urandom(11 * MiB + 12_345)
    result = await store.put_stream("big/uneven.bin", chunked(data, 333_333))
    assert result == (len(data), hashlib.sha256(data).hexdigest())
    assert await read_all(store, "big/uneven.bin") == data


async def test_stream_closed_early(store: BlobStore) -> None:
    data = os.urandom(3 * MiB)
    await store.put_stream("big/blob", chunked(data, MiB))
    async with aclosing(store.get_stream("big/blob")) as stream:
        async for chunk in stream:
            assert data.startswith(chunk)
            break  # the file or connection is released here, without a ResourceWarning


async def test_empty_blob_and_overwrite(store: BlobStore) -> None:
    empty = await store.put_stream("e/blob", chunked(b"", 1))
    assert empty == (0, hashlib.sha256(b"").hexdigest())
    assert (await store.stat("e/blob")).size == 0
    assert await read_all(store, "e/blob") == b""
    await store.put_stream("e/blob", chunked(b"second", 2), "text/plain")
    assert await read_all(store, "e/blob") == b"second"
    assert (await store.stat("e/blob")).content_type == "text/plain"


async def test_content_key_round_trip(store: BlobStore) -> None:
    data = b"WEBVTT\n\n00:00.000 --> 00:01.000\nhello\n"
    digest = hashlib.sha256(data).hexdigest()
    key = content_key(digest, ".vtt")
    assert key == f"sha256/{digest[:2]}/{digest}.vtt"
    assert (await store.put_stream(key, chunked(data, 7), "text/vtt")).sha256 == digest
    assert await read_all(store, key) == data


async def test_range_reads(store: BlobStore) -> None:
    data = bytes(range(256)) * 40  # 10,240 bytes
    await store.put_stream("r/blob.bin", chunked(data, 1000))
    assert await read_all(store, "r/blob.bin", ByteRange(2, 5)) == data[2:6]
    assert await read_all(store, "r/blob.bin", ByteRange(10_000)) == data[10_000:]
    assert await read_all(store, "r/blob.bin", ByteRange.last(3)) == data[-3:]
    assert await read_all(store, "r/blob.bin", ByteRange(10_200, 99_999)) == data[10_200:]
    with pytest.raises(RangeNotSatisfiableError):
        await read_all(store, "r/blob.bin", ByteRange(len(data)))


async def test_missing_blob(store: BlobStore) -> None:
    with pytest.raises(BlobNotFoundError):
        await store.stat("nope/x")
    with pytest.raises(BlobNotFoundError):
        await read_all(store, "nope/x")
    assert not await store.exists("nope/x")
    await store.delete("nope/x")  # deleting what is not there is fine


async def test_delete_and_delete_prefix(store: BlobStore) -> None:
    for key in ("jobs/7/a", "jobs/7/b", "jobs/7/sub/c", "jobs/70/d", "jobs/7x"):
        await store.put_stream(key, chunked(key.encode(), 4))
    await store.delete("jobs/7/a")
    assert not await store.exists("jobs/7/a")
    assert await store.delete_prefix("jobs/7/") == 2
    for gone in ("jobs/7/b", "jobs/7/sub/c"):
        assert not await store.exists(gone)
    for kept in ("jobs/70/d", "jobs/7x"):  # a prefix is a folder, not a string prefix
        assert await store.exists(kept)
    assert await store.delete_prefix("jobs/7/") == 0


@pytest.mark.parametrize(
    "key",
    ["../escape", "a/../../b", "/etc/passwd", "a\\..\\b", "a\x00b", "", "a//b", "./a", "a/", ".."],
)
async def test_unsafe_keys_refused(store: BlobStore, key: str) -> None:
    with pytest.raises(InvalidInputError):
        await store.put_stream(key, chunked(b"x", 1))
    with pytest.raises(InvalidInputError):
        await store.stat(key)
    with pytest.raises(InvalidInputError):
        await read_all(store, key)
    with pytest.raises(InvalidInputError):
        await store.delete(key)
    with pytest.raises(InvalidInputError):
        await store.signed_url(key, 60)


@pytest.mark.parametrize("prefix", ["jobs", "../", "/", "", "a/../"])
async def test_unsafe_prefixes_refused(store: BlobStore, prefix: str) -> None:
    with pytest.raises(InvalidInputError):
        await store.delete_prefix(prefix)


async def test_failed_stream_leaves_nothing(store: BlobStore) -> None:
    async def broken() -> AsyncIterator[bytes]:
        yield os.urandom(6 * MiB)  # past one S3 part: a multipart upload is under way
        raise RuntimeError("source went away")

    with pytest.raises(RuntimeError, match="source went away"):
        await store.put_stream("f/broken.bin", broken())
    assert not await store.exists("f/broken.bin")


def _with_query(url: str, **changes: str) -> str:
    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query))
    query.update(changes)
    return urlunsplit(parts._replace(query=urlencode(query)))


def _flip_signature(url: str) -> str:
    query = dict(parse_qsl(urlsplit(url).query))
    name = "sig" if "sig" in query else "X-Amz-Signature"
    value = query[name]
    return _with_query(url, **{name: ("A" if value[0] != "A" else "B") + value[1:]})


async def test_signed_url_download(store: BlobStore, http: httpx.AsyncClient) -> None:
    data = os.urandom(50_000)
    await store.put_stream("dl/subs.srt", chunked(data, 10_000), "application/x-subrip")
    url = await store.signed_url("dl/subs.srt", 60, filename="Résumé clip.srt")

    whole = await http.get(url)
    assert whole.status_code == 200
    assert whole.content == data
    disposition = whole.headers["content-disposition"]
    assert disposition.startswith("attachment;")
    assert "filename*=UTF-8''R%C3%A9sum%C3%A9%20clip.srt" in disposition

    part = await http.get(url, headers={"Range": "bytes=100-199"})
    assert part.status_code == 206
    assert part.content == data[100:200]
    assert part.headers["content-range"] == f"bytes 100-199/{len(data)}"
    assert (await http.get(url, headers={"Range": "bytes=999999-"})).status_code == 416


async def test_signed_url_tampered_or_expired(store: BlobStore, http: httpx.AsyncClient) -> None:
    for key in ("dl/mine.txt", "dl/other.txt"):
        await store.put_stream(key, chunked(key.encode(), 3), "text/plain")
    url = await store.signed_url("dl/mine.txt", 60, filename="mine.txt")
    assert (await http.get(url)).status_code == 200
    assert (await http.get(url.replace("dl/mine.txt", "dl/other.txt"))).status_code == 403
    assert (await http.get(_flip_signature(url))).status_code == 403

    short = await store.signed_url("dl/mine.txt", 1)
    assert (await http.get(short)).status_code == 200
    # SigV4 dates have whole seconds: one second of life can reach two on the clock.
    await asyncio.sleep(2.1)
    assert (await http.get(short)).status_code == 403
