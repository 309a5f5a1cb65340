"""put_file(move=True) on local storage: renamed into place, same bytes and hash."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from reelscribe.backends.open import open_storage

pytestmark = pytest.mark.anyio


async def test_move_renames_into_place(tmp_path: Path) -> None:
    data = os.urandom(3 * 1024 * 1024 + 17)
    source = tmp_path / "out.mp4"
    source.write_bytes(data)
    inode = source.stat().st_ino
    async with open_storage(f"file://{tmp_path / 'blobs'}") as store:
        result = await store.put_file("results/j/clip.mp4", source, "video/mp4", move=True)
        assert not source.exists()  # given up by the caller
        assert result.size == len(data)
        assert result.sha256 == hashlib.sha256(data).hexdigest()
        stored = store.local_path("results/j/clip.mp4")
        assert stored is not None
        assert stored.stat().st_ino == inode  # renamed, not copied
        assert b"".join([c async for c in store.get_stream("results/j/clip.mp4")]) == data
        assert (await store.stat("results/j/clip.mp4")).content_type == "video/mp4"


async def test_copy_keeps_the_source(tmp_path: Path) -> None:
    source = tmp_path / "keep.bin"
    source.write_bytes(b"abc" * 1000)
    async with open_storage(f"file://{tmp_path / 'blobs'}") as store:
        await store.put_file("k/keep.bin", source, "application/octet-stream")
        assert source.exists()
        assert store.local_path("k/missing") is None


async def test_move_takes_the_callers_digest(tmp_path: Path) -> None:
    """A worker hashes an output to name its content-addressed key; the move then
    records that digest instead of reading the file a second time."""
    data = os.urandom(100_000)
    digest = hashlib.sha256(data).hexdigest()
    source = tmp_path / "out.srt"
    source.write_bytes(data)
    async with open_storage(f"file://{tmp_path / 'blobs'}") as store:
        result = await store.put_file("r/out.srt", source, move=True, sha256=digest)
        assert result == (len(data), digest)
        assert b"".join([c async for c in store.get_stream("r/out.srt")]) == data
        # Copying reads every byte anyway, so a copy always hashes what it read.
        other = tmp_path / "other.srt"
        other.write_bytes(b"x")
        copied = await store.put_file("r/other.srt", other, sha256=digest)
        assert copied.sha256 == hashlib.sha256(b"x").hexdigest()
