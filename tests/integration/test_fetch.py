"""The fetch stage against real HTTP servers on loopback, real yt-dlp and real ffmpeg.

Every server binds 127.0.0.x, so the SSRF guard refuses them unless a test allows
``127.0.0.1/32``; nothing leaves the machine.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import av
import pytest
from yt_dlp.utils import DownloadError

from reelscribe.config import Settings
from reelscribe.errors import (
    AuthRequiredError,
    BlockedURLError,
    NetworkError,
    ReelscribeError,
    SourceNotFoundError,
    SourceTooLargeError,
    UnsupportedSourceError,
)
from reelscribe.media.cookies import cookie_file
from reelscribe.media.ffmpeg import ffmpeg_exe
from reelscribe.media.ytdlp import translate_error
from reelscribe.models import TimeRange
from reelscribe.pipeline.fetch import FetchOptions, FetchResult, fetch
from reelscribe.progress import Progress
from tests.rangeserver import RangeServer

ALLOW = ("127.0.0.1/32",)
FULL = 10.0  # seconds of conftest's sample_av


def _page(title: str, src: str) -> str:
    return (
        f"<html><head><title>{title}</title></head><body>"
        f'<video controls><source src="{src}" type="video/mp4"></video></body></html>'
    )


def _hls(root: Path, source: Path) -> None:
    """An HLS master playlist with separate audio-only and video-only renditions."""
    hls = root / "hls"
    hls.mkdir()
    for kind, stream in (("v", "0:v"), ("a", "0:a")):
        subprocess.run(
            [
                ffmpeg_exe(),
                "-hide_banner",
                "-loglevel",
                "error",
                "-i",
                str(source),
                "-map",
                stream,
                "-c",
                "copy",
                "-f",
                "hls",
                "-hls_time",
                "2",
                "-hls_playlist_type",
                "vod",
                "-hls_segment_filename",
                str(hls / f"{kind}%d.ts"),
                str(hls / f"{kind}.m3u8"),
            ],
            check=True,
        )
    (hls / "master.m3u8").write_text(
        "#EXTM3U\n"
        '#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID="aud",NAME="English",LANGUAGE="en",'
        'DEFAULT=YES,AUTOSELECT=YES,URI="a.m3u8"\n'
        '#EXT-X-STREAM-INF:BANDWIDTH=800000,CODECS="avc1.64000d,mp4a.40.2",'
        'RESOLUTION=320x240,AUDIO="aud"\n'
        "v.m3u8\n"
    )


@pytest.fixture(scope="module")
def webroot(tmp_path_factory: pytest.TempPathFactory, sample_av: Path) -> Path:
    root = tmp_path_factory.mktemp("web")
    shutil.copyfile(sample_av, root / "av.mp4")
    shutil.copyfile(sample_av, root / "stream.mp4")
    pages = {
        "page.html": _page("Test page", "av.mp4"),
        "page-redirect.html": _page("Redirected", "/go-av"),
        "page-escape.html": _page("Escape", "/go-out"),
        "page-403.html": _page("Members only", "/private.mp4"),
        "page-404.html": _page("Gone", "/missing.mp4"),
        "page-unsized.html": _page("No length", "/stream.mp4"),
    }
    for name, html in pages.items():
        (root / name).write_text(html)
    _hls(root, sample_av)
    return root


@pytest.fixture
def server(webroot: Path) -> Iterator[RangeServer]:
    with RangeServer(webroot) as srv:
        srv.redirects["/go-av"] = "/av.mp4"
        srv.statuses["/private.mp4"] = 403
        srv.unsized.add("/stream.mp4")
        yield srv


@pytest.fixture
def other_server(webroot: Path) -> Iterator[RangeServer]:
    """A second loopback host, 127.0.0.2, that the allowlist does not open."""
    with RangeServer(webroot, host="127.0.0.2") as srv:
        yield srv


def _options(**overrides: object) -> FetchOptions:
    return FetchOptions(**{"allowed_networks": ALLOW, **overrides})  # type: ignore[arg-type]


def _probe(path: Path) -> tuple[float, list[str]]:
    with av.open(str(path)) as container:
        assert container.duration is not None
        return container.duration / 1_000_000, sorted(s.type for s in container.streams)


def _leftovers(directory: Path) -> list[str]:
    return sorted(str(p.relative_to(directory)) for p in directory.rglob("*"))


# --- local paths and schemes --------------------------------------------------------------


def test_local_path_is_used_in_place(sample_av: Path, tmp_path: Path) -> None:
    result = fetch(str(sample_av), tmp_path / "out", FetchOptions())
    assert result == FetchResult(
        path=sample_av, source=str(sample_av), kind="file", title=sample_av.stem
    )
    assert not (tmp_path / "out").exists()


def test_missing_local_path_is_not_found(tmp_path: Path) -> None:
    with pytest.raises(SourceNotFoundError, match="no such file"):
        fetch(str(tmp_path / "nope.mp4"), tmp_path, FetchOptions())


@pytest.mark.parametrize(
    "source",
    ["file:///etc/passwd", "ftp://127.0.0.1/av.mp4", "gopher://127.0.0.1:70/", "data:,hello"],
)
def test_other_schemes_are_refused(source: str, tmp_path: Path) -> None:
    with pytest.raises(UnsupportedSourceError):
        fetch(source, tmp_path, _options())


# --- direct http ----------------------------------------------------------------------------


def test_direct_http_download_with_the_allowlist(
    server: RangeServer, webroot: Path, tmp_path: Path
) -> None:
    events: list[Progress] = []
    result = fetch(server.url("/av.mp4"), tmp_path, _options(), events.append)
    assert result.kind == "http"
    assert not result.from_cache
    assert result.path.parent == tmp_path
    assert result.path.read_bytes() == (webroot / "av.mp4").read_bytes()
    assert _leftovers(tmp_path) == [result.path.name]
    assert server.count("/av.mp4") == 1
    fractions = [e.fraction for e in events if e.fraction is not None]
    assert fractions[-1] == 1.0
    assert fractions == sorted(fractions)
    assert {e.stage for e in events} == {"fetch"}


def test_the_same_fetch_without_the_allowlist_is_refused(
    server: RangeServer, tmp_path: Path
) -> None:
    url = server.url("/av.mp4")
    with pytest.raises(BlockedURLError, match=r"127\.0\.0\.1 is a loopback address") as info:
        fetch(url, tmp_path, FetchOptions())
    assert url in str(info.value)
    assert server.count() == 0


@pytest.mark.parametrize("target", ["other", "http://169.254.169.254/latest/meta-data/"])
def test_redirect_to_a_blocked_host_is_refused(
    server: RangeServer, other_server: RangeServer, tmp_path: Path, target: str
) -> None:
    location = other_server.url("/av.mp4") if target == "other" else target
    server.redirects["/go"] = location
    with pytest.raises(BlockedURLError) as info:
        fetch(server.url("/go"), tmp_path, _options())
    assert f"refusing to fetch {location}" in str(info.value)
    assert server.count("/go") == 1
    assert other_server.count() == 0
    assert _leftovers(tmp_path) == []


def test_redirect_to_an_allowed_host_is_followed(
    server: RangeServer, other_server: RangeServer, tmp_path: Path
) -> None:
    """The control for the test above: opened up, the same redirect does reach 127.0.0.2."""
    server.redirects["/go"] = other_server.url("/av.mp4")
    result = fetch(
        server.url("/go"), tmp_path, _options(allowed_networks=("127.0.0.1/32", "127.0.0.2/32"))
    )
    assert result.kind == "http"
    assert other_server.count("/av.mp4") == 1


@pytest.mark.parametrize("path", ["/av.mp4", "/stream.mp4"], ids=["content-length", "unsized"])
def test_size_limit_leaves_no_partial_file(
    server: RangeServer, webroot: Path, tmp_path: Path, path: str
) -> None:
    size = (webroot / path.lstrip("/")).stat().st_size
    with pytest.raises(SourceTooLargeError, match="download limit"):
        fetch(server.url(path), tmp_path, _options(max_bytes=size // 2))
    assert _leftovers(tmp_path) == []
    # Just enough room, and the same source arrives whole.
    result = fetch(server.url(path), tmp_path, _options(max_bytes=size))
    assert result.path.stat().st_size == size


def test_http_errors_are_translated(server: RangeServer, tmp_path: Path) -> None:
    with pytest.raises(AuthRequiredError, match="REELSCRIBE_YTDLP_COOKIES"):
        fetch(server.url("/private.mp4"), tmp_path, _options())
    with pytest.raises(SourceNotFoundError, match="404"):
        fetch(server.url("/missing.mp4"), tmp_path, _options())
    assert _leftovers(tmp_path) == []


# --- yt-dlp -----------------------------------------------------------------------------------


def test_html_page_goes_to_ytdlp_generic(server: RangeServer, tmp_path: Path) -> None:
    result = fetch(server.url("/page.html"), tmp_path, _options())
    assert result.kind == "ytdlp"
    assert result.extractor is not None
    assert result.media_id
    assert result.title is not None
    assert result.title.startswith("Test page")
    assert not result.section_applied
    duration, streams = _probe(result.path)
    assert duration == pytest.approx(FULL, abs=0.2)
    assert streams == ["audio", "video"]
    assert _leftovers(tmp_path) == [result.path.name]


def test_exact_section_downloads_only_the_section(server: RangeServer, tmp_path: Path) -> None:
    section = TimeRange(2.0, 5.0)
    result = fetch(
        server.url("/page.html"), tmp_path, _options(section=section, exact_section=True)
    )
    assert result.section_applied
    assert result.section_start == 2.0
    duration, _ = _probe(result.path)
    assert duration == pytest.approx(3.0, abs=0.25)


def test_keyframe_section_through_a_redirect(server: RangeServer, tmp_path: Path) -> None:
    """Stream-copied from the keyframe; the media URL redirects, which ffmpeg may not
    follow itself, so the stage resolves it through the guard first."""
    result = fetch(
        server.url("/page-redirect.html"), tmp_path, _options(section=TimeRange(4.0, 8.0))
    )
    assert result.section_applied
    duration, _ = _probe(result.path)
    assert 3.5 <= duration <= 5.0
    assert server.count("/go-av") >= 1
    assert server.count("/av.mp4") >= 1


def test_ytdlp_redirect_to_a_blocked_host_is_refused(
    server: RangeServer, other_server: RangeServer, tmp_path: Path
) -> None:
    server.redirects["/go-out"] = other_server.url("/av.mp4")
    for section in (None, TimeRange(1.0, 3.0)):
        with pytest.raises(BlockedURLError, match=r"127\.0\.0\.2 is a loopback address"):
            fetch(server.url("/page-escape.html"), tmp_path, _options(section=section))
    assert server.count("/go-out") >= 2
    assert other_server.count() == 0
    assert _leftovers(tmp_path) == []


def test_audio_only_picks_the_audio_rendition(server: RangeServer, tmp_path: Path) -> None:
    url = server.url("/hls/master.m3u8")
    audio = fetch(url, tmp_path, _options(audio_only=True))
    assert audio.kind == "ytdlp"
    assert _probe(audio.path)[1] == ["audio"]
    assert server.count("/hls/a0.ts") == 1
    assert server.count("/hls/v0.ts") == 0
    full = fetch(url, tmp_path, _options())
    assert _probe(full.path)[1] == ["audio", "video"]
    assert server.count("/hls/v0.ts") == 1


def test_duration_limit_is_checked_before_downloading(
    server: RangeServer, webroot: Path, tmp_path: Path
) -> None:
    video = {
        "@context": "https://schema.org",
        "@type": "VideoObject",
        "name": "Long talk",
        "description": "d",
        "uploadDate": "2024-01-01",
        "duration": "PT10S",
        "contentUrl": server.url("/av.mp4"),
    }
    name = f"ld-{server.base_url.rsplit(':', 1)[1]}.html"
    (webroot / name).write_text(
        '<html><head><title>LD</title><script type="application/ld+json">'
        f"{json.dumps(video)}</script></head><body></body></html>"
    )
    events: list[Progress] = []
    with pytest.raises(SourceTooLargeError, match="lasts 10s"):
        fetch(server.url(f"/{name}"), tmp_path, _options(max_duration=5.0), events.append)
    # yt-dlp's generic extractor peeks at the media URL while extracting; no download starts.
    assert [e for e in events if e.message == "downloading"] == []
    assert _leftovers(tmp_path) == []
    # Only the section's length counts when a section is asked for.
    result = fetch(
        server.url(f"/{name}"),
        tmp_path,
        _options(max_duration=5.0, section=TimeRange(0.0, 4.0), exact_section=True),
    )
    assert result.section_applied
    assert _probe(result.path)[0] == pytest.approx(4.0, abs=0.25)


@pytest.mark.parametrize(
    "page", ["/page.html", "/page-unsized.html"], ids=["content-length", "unsized"]
)
def test_ytdlp_size_limit_leaves_nothing(server: RangeServer, tmp_path: Path, page: str) -> None:
    with pytest.raises(SourceTooLargeError, match="limit"):
        fetch(server.url(page), tmp_path, _options(max_bytes=50_000))
    assert _leftovers(tmp_path) == []


def test_ytdlp_403_asks_for_cookies(server: RangeServer, tmp_path: Path) -> None:
    with pytest.raises(AuthRequiredError) as info:
        fetch(server.url("/page-403.html"), tmp_path, _options())
    assert "REELSCRIBE_YTDLP_COOKIES" in str(info.value)
    assert "--cookies FILE" in str(info.value)
    assert _leftovers(tmp_path) == []


def test_ytdlp_404_is_not_found(server: RangeServer, tmp_path: Path) -> None:
    with pytest.raises(SourceNotFoundError):
        fetch(server.url("/page-404.html"), tmp_path, _options())


# --- cookies and the cache ------------------------------------------------------------------


COOKIES = "# Netscape HTTP Cookie File\n127.0.0.1\tFALSE\t/\tFALSE\t0\tsession\ts3cr3t-value\n"


@pytest.mark.parametrize("path", ["/page.html", "/av.mp4"], ids=["ytdlp", "http"])
def test_cookie_text_reaches_the_server_and_its_file_is_removed(
    server: RangeServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, path: str
) -> None:
    private_tmp = tmp_path / "tmp"
    private_tmp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(private_tmp))
    fetch(server.url(path), tmp_path / "out", _options(cookies_text=COOKIES))
    media_requests = [r for r in server.requests if r.path == "/av.mp4" and r.method == "GET"]
    assert media_requests
    assert all("session=s3cr3t-value" in r.headers.get("Cookie", "") for r in media_requests)
    assert _leftovers(private_tmp) == []


def test_options_from_settings_keep_the_cookie_secret(tmp_path: Path) -> None:
    settings = Settings(
        ytdlp_cookies=COOKIES,  # type: ignore[arg-type]
        allowed_networks=["10.0.0.0/8"],
        cache_dir=tmp_path / "cache",
        cache_max_bytes=123,
        max_download_bytes=456,
    )
    options = FetchOptions.from_settings(settings, audio_only=True)
    assert options.cookies_text == COOKIES
    assert options.allowed_networks == ("10.0.0.0/8",)
    assert (options.cache_dir, options.cache_max_bytes, options.max_bytes) == (
        tmp_path / "cache",
        123,
        456,
    )
    assert options.audio_only
    assert "s3cr3t" not in repr(options)


@pytest.mark.parametrize("path", ["/av.mp4", "/page.html"], ids=["http", "ytdlp"])
def test_second_fetch_is_a_cache_hit_without_traffic(
    server: RangeServer, tmp_path: Path, path: str
) -> None:
    options = _options(cache_dir=tmp_path / "cache", cache_max_bytes=100 * 1024**2)
    first = fetch(server.url(path), tmp_path / "job1", options)
    before = server.count()
    second = fetch(server.url(path), tmp_path / "job2", options)
    assert not first.from_cache
    assert second.from_cache
    assert server.count() == before
    assert second.path.parent == tmp_path / "job2"
    assert second.path.read_bytes() == first.path.read_bytes()
    assert (second.kind, second.title, second.extractor, second.media_id) == (
        first.kind,
        first.title,
        first.extractor,
        first.media_id,
    )


def test_cache_finds_the_same_media_under_another_url(server: RangeServer, tmp_path: Path) -> None:
    """The cache key is yt-dlp's (extractor, id, format): a new URL for the same media
    costs an extraction but no download."""
    options = _options(cache_dir=tmp_path / "cache", cache_max_bytes=100 * 1024**2)
    fetch(server.url("/page.html"), tmp_path / "job1", options)
    media_gets = server.count("/av.mp4")
    again = fetch(server.url("/page.html?from=elsewhere"), tmp_path / "job2", options)
    assert again.from_cache
    assert server.count("/av.mp4") == media_gets


# --- programs yt-dlp starts (ffmpeg) make their own connections ------------------------------


def test_section_of_a_fake_media_url_cannot_send_ffmpeg_elsewhere(
    server: RangeServer, other_server: RangeServer, webroot: Path, tmp_path: Path
) -> None:
    """A "video" that is really a playlist (the page says video/mp4, the server says
    HLS) would make ffmpeg fetch the playlist's entries itself; ffmpeg is only allowed
    container demuxers, so it never reaches 127.0.0.2."""
    port = server.base_url.rsplit(":", 1)[1]
    trap = f"/trap-{port}"
    (webroot / trap.lstrip("/")).write_text(
        "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:10\n#EXT-X-PLAYLIST-TYPE:VOD\n"
        f"#EXTINF:10.0,\n{other_server.url('/hls/v0.ts')}\n#EXT-X-ENDLIST\n"
    )
    server.content_types[trap] = "application/vnd.apple.mpegurl"
    (webroot / f"trap-{port}.html").write_text(_page("Trap", trap))
    with pytest.raises(ReelscribeError):
        fetch(server.url(f"/trap-{port}.html"), tmp_path, _options(section=TimeRange(1.0, 3.0)))
    assert server.count(trap) >= 1
    assert other_server.count() == 0
    assert _leftovers(tmp_path) == []


def test_hls_that_ytdlp_hands_to_ffmpeg_cannot_escape_the_guard(
    server: RangeServer, other_server: RangeServer, webroot: Path, tmp_path: Path
) -> None:
    """yt-dlp gives HLS it cannot parse natively (here SAMPLE-AES) to ffmpeg; outside a
    section cut ffmpeg may open no network input, so the segments on 127.0.0.2 stay
    unreached."""
    port = server.base_url.rsplit(":", 1)[1]
    (webroot / "hls" / f"sample-aes-{port}.m3u8").write_text(
        "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:2\n#EXT-X-PLAYLIST-TYPE:VOD\n"
        f'#EXT-X-KEY:METHOD=SAMPLE-AES,URI="{other_server.url("/key")}"\n'
        f"#EXTINF:2.0,\n{other_server.url('/hls/v0.ts')}\n#EXT-X-ENDLIST\n"
    )
    with pytest.raises(ReelscribeError):
        fetch(server.url(f"/hls/sample-aes-{port}.m3u8"), tmp_path, _options())
    assert server.count(f"/hls/sample-aes-{port}.m3u8") >= 1
    assert other_server.count() == 0
    assert _leftovers(tmp_path) == []


# --- messages from sites that cannot be reached offline ---------------------------------------


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        (
            "[youtube] abc: Sign in to confirm you’re not a bot. Use --cookies-from-browser or "
            "--cookies for the authentication.",
            AuthRequiredError,
        ),
        (
            "[youtube] abc: Private video. Sign in if you've been granted access to this video",
            AuthRequiredError,
        ),
        ("[vimeo] 123: This video is only available for registered users", AuthRequiredError),
        (
            "[youtube] abc: Video unavailable. This video has been removed by the uploader",
            SourceNotFoundError,
        ),
        ("Unsupported URL: https://example.com/", UnsupportedSourceError),
        ("[generic] x: Unable to download webpage: <urlopen error timed out>", NetworkError),
    ],
)
def test_ytdlp_messages_become_clear_errors(message: str, expected: type[Exception]) -> None:
    error = translate_error(DownloadError(f"ERROR: {message}"), "https://example.com/v")
    assert type(error) is expected
    assert "ERROR:" not in str(error)
    if expected is AuthRequiredError:
        assert "REELSCRIBE_YTDLP_COOKIES" in str(error)
        assert "--cookies FILE" in str(error)


def test_cookie_file_is_private_and_removed(tmp_path: Path) -> None:
    with cookie_file(None, COOKIES) as path:
        assert path is not None
        assert path.stat().st_mode & 0o777 == 0o600
        assert path.read_text() == COOKIES
    assert not path.exists()
    given = tmp_path / "cookies.txt"
    given.write_text(COOKIES)
    with cookie_file(given, None) as copy:
        assert copy is not None
        assert copy != given
        assert copy.read_text() == COOKIES
    assert not copy.exists()
    assert given.read_text() == COOKIES
