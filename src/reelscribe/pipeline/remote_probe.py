"""A source's duration without downloading it, for estimates.

* a URL yt-dlp knows (a video site), or a web page: yt-dlp's metadata (``duration``),
  which reads the page, never the media;
* a direct media URL: HTTP ``Range`` requests through the SSRF guard
  (:func:`reelscribe.netguard.guarded_transport`, every redirect hop checked) feed
  PyAV a seekable view of the remote file (:class:`RangedFile`), so the demuxer reads
  the headers it needs (a FLAC STREAMINFO, an MP4 ``moov``, a WAV header, an MP3
  frame) and nothing else. The view refuses to read more than ``max_bytes`` in all.
* an upload in object storage: the same view over the store's ranged reads.

A server that ignores ``Range`` (answers 200 with the whole body) is not downloaded:
the estimate fails with ``duration_unknown``.
"""

from __future__ import annotations

import contextlib
import io
import re
import shutil
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx

from reelscribe.errors import (
    DurationUnknownError,
    MediaError,
    NetworkError,
    SourceNotFoundError,
    TooManyRedirectsError,
    UnsupportedSourceError,
)
from reelscribe.media.cookies import cookie_file
from reelscribe.netguard import Pace, URLGuard, guarded_transport
from reelscribe.pipeline.fetch import FetchOptions, check_status

#: What one range request asks for; the demuxer's reads are served from these blocks.
BLOCK = 64 * 1024
MAX_REDIRECTS = 10
#: Tells the demuxer to look no further than the headers (it would otherwise read
#: megabytes of packets to guess stream parameters the headers already give).
_DEMUX_OPTIONS = {"probesize": "65536", "analyzeduration": "0"}
#: Web pages and HLS/DASH manifests: yt-dlp's generic extractor reads them instead.
_PAGE_TYPES = frozenset({
    "text/html", "application/xhtml+xml", "application/vnd.apple.mpegurl",
    "application/x-mpegurl", "audio/mpegurl", "audio/x-mpegurl", "application/dash+xml",
})  # fmt: skip
_CONTENT_RANGE = re.compile(r"^bytes (\d+)-(\d+)/(\d+)$")

#: Reads bytes ``start``..``end`` (inclusive) of the remote file.
ReadRange = Callable[[int, int], bytes]


@dataclass(frozen=True, slots=True)
class RemoteMedia:
    duration: float
    #: "ytdlp" (metadata), "range" (HTTP Range reads) or "storage" (ranged store reads).
    method: str
    title: str | None = None
    size: int | None = None
    #: Bytes of the media itself that were read (0 for yt-dlp metadata).
    bytes_read: int = 0


class RangedFile(io.RawIOBase):
    """A read-only, seekable file over ``read_range``, read in :data:`BLOCK` blocks
    (each block once) and never more than ``max_bytes`` in all."""

    def __init__(
        self, size: int, read_range: ReadRange, *, max_bytes: int, first: bytes = b""
    ) -> None:
        super().__init__()
        self.size = size
        self._read_range = read_range
        self._max_bytes = max_bytes
        self._pos = 0
        self._blocks: dict[int, bytes] = {}
        self.bytes_read = 0
        # The first response's body (the start of the file) is kept, block by block.
        for index in range(len(first) // BLOCK + (1 if len(first) % BLOCK else 0)):
            chunk = first[index * BLOCK : (index + 1) * BLOCK]
            if len(chunk) == BLOCK or (index * BLOCK + len(chunk)) == size:
                self._blocks[index] = chunk
        self.bytes_read = len(first)

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self.size}[whence]
        self._pos = max(0, base + offset)
        return self._pos

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        wanted = min(len(buffer), max(0, self.size - self._pos))
        if wanted == 0:
            return 0
        data = self._read(self._pos, wanted)
        buffer[: len(data)] = data
        self._pos += len(data)
        return len(data)

    def _read(self, start: int, length: int) -> bytes:
        first, last = start // BLOCK, (start + length - 1) // BLOCK
        missing = [i for i in range(first, last + 1) if i not in self._blocks]
        if missing:
            self._fetch(missing[0], missing[-1])
        data = b"".join(self._blocks[i] for i in range(first, last + 1))
        offset = start - first * BLOCK
        return data[offset : offset + length]

    def _fetch(self, first: int, last: int) -> None:
        start, end = first * BLOCK, min(self.size, (last + 1) * BLOCK) - 1
        if self.bytes_read + (end - start + 1) > self._max_bytes:
            raise DurationUnknownError(
                f"learning the duration would read over {self._max_bytes} bytes of the media"
            )
        data = self._read_range(start, end)
        if len(data) != end - start + 1:
            raise NetworkError(f"a range read returned {len(data)} of {end - start + 1} bytes")
        self.bytes_read += len(data)
        for index in range(first, last + 1):
            self._blocks[index] = data[(index - first) * BLOCK : (index - first + 1) * BLOCK]


def ranged_duration(file: RangedFile, name: str) -> float:
    """The media's duration, read through ``file`` with PyAV (headers only)."""
    import av  # lazily: the API process (estimates) stays free of PyAV until it probes

    try:
        with av.open(file, mode="r", options=_DEMUX_OPTIONS) as container:
            if container.duration is not None and container.duration > 0:
                return float(container.duration) / 1e6
            for stream in container.streams:
                if stream.duration and stream.time_base is not None:
                    return float(stream.duration * stream.time_base)
    except av.FFmpegError as exc:
        raise MediaError(f"{name} is not readable media: {exc.strerror or exc}") from exc
    raise DurationUnknownError(f"{name} does not state its duration in its headers")


def probe_url(
    url: str, options: FetchOptions, *, max_bytes: int, deadline: float = 30.0
) -> RemoteMedia:
    """The duration of the media at ``url``, learnt without downloading it; a source
    still answering after ``deadline`` seconds is cut off (a trickling server would
    otherwise hold the thread past any per-read timeout)."""
    guard = URLGuard.from_entries(options.allowed_networks)
    guard.check_url(url)
    pace = Pace(deadline=deadline)
    guard.pace = pace
    with pace.watch():
        try:
            return _probe_url(url, options, guard, max_bytes)
        except Exception as exc:
            if pace.error is not None and exc is not pace.error:
                raise pace.error from exc  # the watchdog's verdict is the real reason
            raise


def _probe_url(url: str, options: FetchOptions, guard: URLGuard, max_bytes: int) -> RemoteMedia:
    from reelscribe.media import ytdlp  # lazily, like PyAV above

    if ytdlp.specific_extractor(url) is not None:
        return _from_ytdlp(url, options, guard, generic=False)
    with httpx.Client(
        transport=guarded_transport(guard),
        timeout=httpx.Timeout(options.timeout),
        follow_redirects=False,
        headers={"Accept-Encoding": "identity", "User-Agent": "reelscribe"},
    ) as client:
        try:
            return _from_ranges(client, guard, url, max_bytes)
        except _NotMedia:
            pass
        except httpx.TimeoutException as exc:
            raise NetworkError(f"probing {url} timed out: {exc}") from exc
        except (httpx.InvalidURL, httpx.UnsupportedProtocol) as exc:
            raise UnsupportedSourceError(f"probing {url} failed: {exc}") from exc
        except httpx.HTTPError as exc:
            raise NetworkError(f"probing {url} failed: {exc}") from exc
    return _from_ytdlp(url, options, guard, generic=True)


class _NotMedia(Exception):
    """A web page or a manifest: yt-dlp's generic extractor should look."""


def _from_ranges(client: httpx.Client, guard: URLGuard, url: str, max_bytes: int) -> RemoteMedia:
    with _get(client, guard, url, 0, BLOCK - 1) as response:
        ctype = response.headers.get("content-type", "").split(";")[0].strip().lower()
        if ctype in _PAGE_TYPES:
            raise _NotMedia
        match = _CONTENT_RANGE.match(response.headers.get("content-range", ""))
        if response.status_code != 206 or match is None:
            # The server ignores Range: the next read would be the whole file.
            raise DurationUnknownError(
                f"{url} does not answer range requests, so its duration cannot be learnt "
                "without downloading it"
            )
        first = response.read()
        final = str(response.url)
    size = int(match.group(3))

    def read_range(start: int, end: int) -> bytes:
        with _get(client, guard, final, start, end) as part:
            if part.status_code != 206:
                raise NetworkError(f"{final} stopped answering range requests")
            return part.read()

    file = RangedFile(size, read_range, max_bytes=max_bytes, first=first)
    duration = ranged_duration(file, Path(final.split("?")[0]).name or url)
    return RemoteMedia(duration, "range", None, size, file.bytes_read)


@contextlib.contextmanager
def _get(
    client: httpx.Client, guard: URLGuard, url: str, start: int, end: int
) -> Iterator[httpx.Response]:
    """A ranged GET, following redirects by hand so that each hop is checked."""
    current = url
    for _ in range(MAX_REDIRECTS + 1):
        guard.check_url(current)
        request = client.build_request("GET", current, headers={"Range": f"bytes={start}-{end}"})
        response = client.send(request, stream=True)
        if response.is_redirect:
            response.close()
            current = str(response.url.join(response.headers.get("location", "")))
            continue
        try:
            check_status(response, url, doing="probing")
            yield response
        finally:
            response.close()
        return
    raise TooManyRedirectsError(f"probing {url} failed: more than {MAX_REDIRECTS} redirects")


def _from_ytdlp(url: str, options: FetchOptions, guard: URLGuard, *, generic: bool) -> RemoteMedia:
    from reelscribe.media import ytdlp

    workdir = Path(tempfile.mkdtemp(prefix="reelscribe-probe-"))
    try:
        with (
            cookie_file(options.cookies_file, options.cookies_text) as cookies,
            ytdlp.YtdlpSession(guard, workdir, audio_only=True, timeout=options.timeout,
                               max_bytes=options.max_bytes, cookies=cookies) as session,
        ):  # fmt: skip
            media = session.extract(url, generic=generic)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    if media.is_live:
        raise UnsupportedSourceError(f"{url} is a live stream, which cannot be fetched")
    if media.duration is None:
        raise DurationUnknownError(f"{url}: the site does not state the media's duration")
    return RemoteMedia(media.duration, "ytdlp", media.title, media.filesize, 0)


def probe_source(
    source: str, options: FetchOptions, *, max_bytes: int, deadline: float = 30.0
) -> RemoteMedia:
    """The duration of a local file (probed in place) or of a URL (see :func:`probe_url`)."""
    if source.lower().startswith(("http://", "https://")):
        return probe_url(source, options, max_bytes=max_bytes, deadline=deadline)
    from reelscribe.pipeline.probe import probe

    path = Path(source).expanduser()
    if not path.is_file():
        if re.match(r"^[A-Za-z][A-Za-z0-9+.-]+://", source):
            raise UnsupportedSourceError(f"unsupported source {source!r}: use a file or http(s)")
        raise SourceNotFoundError(f"no such file: {source}")
    return RemoteMedia(probe(path).duration, "file", path.stem, path.stat().st_size)
