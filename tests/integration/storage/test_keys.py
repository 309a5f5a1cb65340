"""The pure helpers every store shares: key rules, content keys, Range parsing and
download names."""

from __future__ import annotations

import hashlib

import pytest

from reelscribe.backends.storage import ByteRange, content_disposition, content_key, validate_key
from reelscribe.backends.storage.base import clean_filename
from reelscribe.errors import InvalidInputError, RangeNotSatisfiableError


@pytest.mark.parametrize(
    "key", ["a", "jobs/42/source.mp4", "sha256/ab/x.en.vtt", "é/ü ß.srt", "a..b/c.", "x" * 1024]
)
def test_good_keys(key: str) -> None:
    assert validate_key(key) == key


@pytest.mark.parametrize(
    "key",
    ["", "..", "../a", "a/..", "a/./b", "/a", "a//b", "a/", "a\\b", "a\nb", "a\x7fb", "\ud800",
     "é" * 513],
)  # fmt: skip
def test_bad_keys(key: str) -> None:
    with pytest.raises(InvalidInputError):
        validate_key(key)


def test_content_key() -> None:
    digest = hashlib.sha256(b"x").hexdigest()
    assert content_key(digest) == f"sha256/{digest[:2]}/{digest}"
    assert content_key(digest.upper(), ".en.srt") == f"sha256/{digest[:2]}/{digest}.en.srt"
    for bad_digest, suffix in [("abc", ""), (digest, "/x"), (digest, "..x"), (digest, " x")]:
        with pytest.raises(InvalidInputError):
            content_key(bad_digest, suffix)


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("bytes=0-99", ByteRange(0, 99)),
        ("Bytes=5-", ByteRange(5)),
        ("bytes=-10", ByteRange.last(10)),
        ("bytes=0-1,3-4", None),
        ("bytes=-", None),
        ("bytes=9-2", None),
        ("lines=0-1", None),
    ],
)
def test_range_header(header: str, expected: ByteRange | None) -> None:
    assert ByteRange.from_header(header) == expected


def test_range_resolution() -> None:
    assert ByteRange(0, 99).resolve(50) == (0, 49)
    assert ByteRange.last(500).resolve(100) == (0, 99)
    assert ByteRange(0, 99).header() == "bytes=0-99"
    assert ByteRange.last(3).header() == "bytes=-3"
    with pytest.raises(RangeNotSatisfiableError) as caught:
        ByteRange(100).resolve(100)
    assert caught.value.size == 100
    with pytest.raises(InvalidInputError):
        ByteRange(5, 2)


def test_download_names() -> None:
    assert content_disposition("clip.mp4") == 'attachment; filename="clip.mp4"'
    assert content_disposition('../../etc/pass"wd\r\n') == 'attachment; filename="passwd"'
    assert content_disposition("Ünïcode 字幕.srt") == (
        "attachment; filename=\"Unicode .srt\"; filename*=UTF-8''%C3%9Cn%C3%AFcode%20"
        "%E5%AD%97%E5%B9%95.srt"
    )
    assert clean_filename(clean_filename("a\\b/c.txt")) == "c.txt"
    with pytest.raises(InvalidInputError):
        clean_filename("../")
