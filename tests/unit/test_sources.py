"""A source is typed once, where it enters: the CLI's argument through parse_source,
the API's spec through the worker; fetch dispatches on the type."""

from __future__ import annotations

from pathlib import Path

import pytest

from reelscribe.errors import SourceNotFoundError, UnsupportedSourceError
from reelscribe.pipeline.fetch import FetchOptions, fetch
from reelscribe.sources import LocalFileSource, UploadSource, UrlSource, parse_source


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("https://media.example/a.mp4", UrlSource("https://media.example/a.mp4")),
        ("  http://media.example/a.mp4 ", UrlSource("http://media.example/a.mp4")),
        ("ftp://media.example/a.mp4", UrlSource("ftp://media.example/a.mp4")),
        ("talk.mp4", LocalFileSource(Path("talk.mp4"))),
        ("C:/videos/talk.mp4", LocalFileSource(Path("C:/videos/talk.mp4"))),
    ],
)
def test_parse_source(text: str, expected: object) -> None:
    assert parse_source(text) == expected


def test_an_existing_file_with_a_colon_is_a_file(tmp_path: Path) -> None:
    odd = tmp_path / "take:2.wav"
    odd.write_bytes(b"RIFF")
    assert parse_source(str(odd)) == LocalFileSource(odd)


def test_fetch_takes_an_upload_as_the_local_file_it_is(tmp_path: Path) -> None:
    # A file name that reads like a URL is still the upload's file: no re-guessing.
    stored = tmp_path / "https:upload.bin"
    stored.write_bytes(b"\x00" * 16)
    result = fetch(UploadSource(stored, "up_1"), tmp_path / "work", FetchOptions())
    assert result.path == stored
    assert result.kind == "file"


def test_fetch_refuses_what_it_cannot_download(tmp_path: Path) -> None:
    with pytest.raises(UnsupportedSourceError):
        fetch(UrlSource("ftp://media.example/a.mp4"), tmp_path, FetchOptions())
    with pytest.raises(SourceNotFoundError):
        fetch(LocalFileSource(tmp_path / "missing.mp4"), tmp_path, FetchOptions())
