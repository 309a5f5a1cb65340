"""The SSRF guard: what it refuses, what the allowlist opens, and that connections are
checked again at connect time (DNS rebinding)."""

from __future__ import annotations

import socket
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx
import pytest
from yt_dlp.networking.exceptions import RequestError

from reelscribe.errors import (
    BlockedURLError,
    InvalidInputError,
    SourceNotFoundError,
    SourceTooSlowError,
    UnsupportedSourceError,
)
from reelscribe.media.ytdlp import GuardedYoutubeDL, GuardRefusal
from reelscribe.netguard import Allowlist, Pace, URLGuard, guarded_transport
from tests.rangeserver import RangeServer

PUBLIC_IP = "93.184.215.14"


@pytest.mark.parametrize(
    ("url", "shown", "reason"),
    [
        ("http://127.0.0.1/x", "127.0.0.1", "loopback"),
        ("http://[::1]:8080/", "::1", "loopback"),
        ("http://10.1.2.3/", "10.1.2.3", "private"),
        ("http://172.16.0.1/", "172.16.0.1", "private"),
        ("https://192.168.1.20/v.mp4", "192.168.1.20", "private"),
        ("http://169.254.169.254/latest/meta-data/", "169.254.169.254", "cloud metadata"),
        ("http://169.254.1.1/", "169.254.1.1", "link-local"),
        ("http://100.64.0.1/", "100.64.0.1", "CGNAT"),
        ("http://0.0.0.0:8000/", "0.0.0.0", "unspecified"),
        ("http://224.0.0.1/", "224.0.0.1", "multicast"),
        ("http://[::ffff:127.0.0.1]/", "::ffff:127.0.0.1", "loopback"),
        ("http://[::ffff:10.0.0.1]/", "::ffff:10.0.0.1", "private"),
        ("http://[64:ff9b::a9fe:a9fe]/", "64:ff9b::a9fe:a9fe", "cloud metadata"),
        ("http://[fd00:ec2::254]/", "fd00:ec2::254", "cloud metadata"),
        ("http://[fe80::1]/", "fe80::1", "link-local"),
        ("http://localhost:8000/", "localhost resolves to", "loopback"),
        ("http://LOCALHOST./", "localhost resolves to", "loopback"),
        ("http://2130706433/", "2130706433 resolves to 127.0.0.1", "loopback"),
        (
            "http://metadata.google.internal/computeMetadata/v1/",
            "metadata.google.internal",
            "cloud metadata host",
        ),
    ],
)
def test_refuses_non_public_targets(url: str, shown: str, reason: str) -> None:
    guard = URLGuard()
    with pytest.raises(BlockedURLError) as info:
        guard.check_url(url)
    message = str(info.value)
    assert message.startswith(f"refusing to fetch {url}: ")
    assert shown in message
    assert reason in message
    assert "REELSCRIBE_ALLOWED_NETWORKS" in message
    assert guard.refusals == [info.value]


def test_accepts_a_public_literal_without_connecting() -> None:
    URLGuard().check_url(f"https://{PUBLIC_IP}/video.mp4")
    URLGuard().check_url("http://[2606:2800:21f:cb07:6820:80da:af6b:8b2c]/")


@pytest.mark.parametrize(
    "url",
    [
        "file:///etc/passwd",
        "ftp://example.com/a.mp4",
        "gopher://example.com/",
        "data:,hello",
        "javascript:alert(1)",
    ],
)
def test_refuses_other_schemes(url: str) -> None:
    with pytest.raises(UnsupportedSourceError, match="only http and https"):
        URLGuard().check_url(url)


def test_allowlist_opens_only_what_it_names() -> None:
    guard = URLGuard(Allowlist.parse(["127.0.0.1/32"]))
    guard.check_url("http://127.0.0.1:8000/media.mp4")
    guard.check_url("http://[::ffff:127.0.0.1]:8000/")  # the same host, IPv6-mapped
    for url in ("http://127.0.0.2/", "http://10.0.0.1/", "http://[::1]/"):
        with pytest.raises(BlockedURLError):
            guard.check_url(url)


def test_allowlist_host_names_and_metadata_needs_an_exact_entry() -> None:
    broad = URLGuard(Allowlist.parse(["169.254.0.0/16", "localhost"]))
    broad.check_url("http://169.254.10.10/")
    broad.check_url("http://localhost:9000/")
    with pytest.raises(BlockedURLError, match="cloud metadata"):
        broad.check_url("http://169.254.169.254/")
    URLGuard(Allowlist.parse(["169.254.169.254/32"])).check_url("http://169.254.169.254/")


def test_allowlist_rejects_garbage() -> None:
    with pytest.raises(InvalidInputError, match="invalid allowed network"):
        Allowlist.parse(["10.0.0.0/8", "http://x/"])


def _resolver(*answers: Sequence[str]) -> Any:
    """A DNS stand-in answering each lookup with the next list of addresses."""
    calls = iter(answers)

    def resolve(host: str, port: int, *_: Any) -> list[tuple[Any, ...]]:
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (ip, port)) for ip in next(calls)]

    return resolve


def test_every_resolved_address_must_be_public() -> None:
    guard = URLGuard(resolver=_resolver([PUBLIC_IP, "10.0.0.7"]))
    with pytest.raises(BlockedURLError, match=r"media\.example resolves to 10\.0\.0\.7"):
        guard.check_url("http://media.example/v.mp4")


def test_unknown_host_is_not_found() -> None:
    def nxdomain(*_: Any) -> list[tuple[Any, ...]]:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    with pytest.raises(SourceNotFoundError, match="not found"):
        URLGuard(resolver=nxdomain).check_url("http://nowhere.invalid/")


def test_httpx_transport_checks_at_connect_time(tmp_path: Path) -> None:
    """DNS rebinding: the name is public when checked and loopback when connected to.
    A server really listens on the loopback address, so only the guard stops it."""
    (tmp_path / "secret.txt").write_text("internal")
    with RangeServer(tmp_path) as server:
        port = int(server.base_url.rsplit(":", 1)[1])
        guard = URLGuard(resolver=_resolver([PUBLIC_IP], ["127.0.0.1"]))
        url = f"http://rebind.example:{port}/secret.txt"
        guard.check_url(url)  # first answer: public
        with (
            httpx.Client(transport=guarded_transport(guard)) as client,
            pytest.raises(BlockedURLError, match=r"127\.0\.0\.1, a loopback address"),
        ):
            client.get(url)
        assert server.count() == 0


def test_ytdlp_requests_are_checked_at_connect_time(tmp_path: Path) -> None:
    (tmp_path / "secret.txt").write_text("internal")
    with RangeServer(tmp_path) as server:
        port = int(server.base_url.rsplit(":", 1)[1])
        guard = URLGuard(resolver=_resolver(["127.0.0.1"]))
        with GuardedYoutubeDL({"quiet": True}, guard) as ydl:
            with pytest.raises(GuardRefusal, match="loopback"):
                ydl.urlopen(f"http://rebind.example:{port}/secret.txt")
            # file: and ftp: never reach a handler at all.
            for url in ("file:///etc/passwd", "ftp://127.0.0.1/x"):
                with pytest.raises(RequestError, match=r"(?i)unsupported url scheme"):
                    ydl.urlopen(url)
        assert server.count() == 0
        assert "rebind.example resolves to 127.0.0.1" in str(guard.refusals[0])


def test_ytdlp_allowlisted_request_goes_through(tmp_path: Path) -> None:
    (tmp_path / "ok.txt").write_text("hello")
    with RangeServer(tmp_path) as server:
        guard = URLGuard(Allowlist.parse(["127.0.0.1/32"]))
        with (
            GuardedYoutubeDL({"quiet": True}, guard) as ydl,
            ydl.urlopen(server.url("/ok.txt")) as response,
        ):
            assert response.read() == b"hello"
        assert server.count("/ok.txt") == 1


def test_unencodable_host_name_is_a_clear_error() -> None:
    from reelscribe.errors import UnsupportedSourceError
    from reelscribe.netguard import URLGuard

    with pytest.raises(UnsupportedSourceError, match="invalid host name"):
        URLGuard().check_url("http://" + "a" * 70 + ".example.com/x.mp4")


@pytest.mark.parametrize(
    "url", ["http://[fe80::1%25lo]/a.mp4", "http://[fe80::1%eth0]/", "https://[2606:4700::1%251]/"]
)
def test_scoped_ipv6_addresses_are_refused_before_any_lookup(url: str) -> None:
    def resolver(*args: Any) -> Sequence[tuple[Any, ...]]:
        raise AssertionError("no lookup for a scoped address")

    with pytest.raises(BlockedURLError, match="scoped IPv6"):
        URLGuard(resolver=resolver).check_url(url)


def test_a_host_that_does_not_resolve_is_host_not_found() -> None:
    def resolver(*args: Any) -> Sequence[tuple[Any, ...]]:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    with pytest.raises(SourceNotFoundError) as caught:
        URLGuard(resolver=resolver).check_url("https://nowhere.invalid/a.mp4")
    assert caught.value.code == "host_not_found"


class _Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_pace_enforces_the_deadline_and_the_minimum_rate() -> None:
    clock = _Clock()
    pace = Pace(deadline=100.0, min_rate=1000.0, window=10.0, clock=clock)
    pace.received(50)  # before the body: no rate rule yet
    clock.now = 20.0
    pace.check()
    pace.start_rate()
    for _ in range(10):  # 2,000 bytes/s for 10 s
        clock.now += 1.0
        pace.received(2000)
    clock.now += 5.0  # 5 s of silence: 10,000 bytes in the last 10 s, just enough
    pace.check()
    clock.now += 1.0  # 8,000 in the last 10 s
    with pytest.raises(SourceTooSlowError, match="slower than the minimum"):
        pace.check()
    assert pace.error is not None

    late = Pace(deadline=30.0, clock=clock)
    clock.now += 31.0
    with pytest.raises(SourceTooSlowError, match="deadline"):
        late.received(1)


def test_pace_cuts_registered_sockets_even_once_wrapped() -> None:
    left, right = socket.socketpair()
    with left, right:
        pace = Pace(deadline=0.0)
        pace.register(left)
        # What ssl.wrap_socket does: the guard's socket object is detached and its
        # descriptor lives on in another object.
        wrapped = socket.socket(left.family, left.type, fileno=left.detach())
        with wrapped:
            with pytest.raises(SourceTooSlowError):
                pace.check()
            assert wrapped.recv(1) == b""  # shut down: a blocked read returns at once
            late, other = socket.socketpair()
            with late, other:
                pace.register(late)  # a reconnect after the verdict is cut at once too
                assert late.recv(1) == b""
        pace.close()
        after, peer = socket.socketpair()
        with after, peer:
            pace.register(after)  # after close(): nothing is kept
            assert pace._sockets == []
