"""The SSRF guard: which hosts reelscribe may fetch from.

A source URL comes from a user, so by default only public addresses may be reached:
loopback, private, link-local, CGNAT, multicast, reserved and cloud-metadata targets
are refused (IPv4-mapped, NAT64 and 6to4 IPv6 forms included). Host names are judged
by *every* address they resolve to, and the check is made again when the socket is
connected, against the very addresses then connected to, so a name that resolves to a
public address at check time and to ``127.0.0.1`` a moment later (DNS rebinding) is
still refused. Redirects are checked hop by hop by the callers (``pipeline.fetch``,
``media.ytdlp``); connections made through :func:`guarded_transport` or
:meth:`URLGuard.connect` are checked whatever URL led to them.

``Settings.allowed_networks`` (CIDRs or host names) opens holes on purpose, e.g. a
MinIO on ``10.0.0.5/32``. Cloud-metadata addresses stay closed unless named exactly
(``169.254.169.254/32`` or the metadata host name), so opening ``169.254.0.0/16`` for
some appliance does not expose instance credentials.
"""

from __future__ import annotations

import collections
import contextlib
import ipaddress
import socket
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import httpcore
import httpx

from reelscribe.errors import (
    BlockedURLError,
    HostNotFoundError,
    InvalidInputError,
    NetworkError,
    SourceTooSlowError,
    UnsupportedSourceError,
)

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
#: ``socket.getaddrinfo``'s signature; tests and custom DNS set-ups can supply their own.
Resolver = Callable[..., Sequence[tuple[Any, ...]]]

ALLOW_HINT = "set REELSCRIBE_ALLOWED_NETWORKS to allow"
ALLOWED_SCHEMES = frozenset({"http", "https"})

METADATA_ADDRESSES: frozenset[IPAddress] = frozenset(
    ipaddress.ip_address(a)
    for a in (
        "169.254.169.254",  # AWS, GCP, Azure, OpenStack, DigitalOcean …
        "169.254.170.2",  # AWS ECS task credentials
        "fd00:ec2::254",  # AWS IMDS over IPv6
        "100.100.100.200",  # Alibaba Cloud
    )
)
METADATA_HOSTS = frozenset({"metadata.google.internal", "metadata.goog", "metadata"})

_CGNAT = ipaddress.ip_network("100.64.0.0/10")
_NAT64 = ipaddress.ip_network("64:ff9b::/96")


def _embedded_ipv4(ip: IPAddress) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv4-mapped, 6to4 or NAT64 IPv6 address stands for."""
    if not isinstance(ip, ipaddress.IPv6Address):
        return None
    embedded = ip.ipv4_mapped or ip.sixtofour
    if embedded is None and ip in _NAT64:
        embedded = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return embedded


def blocked_reason(ip: IPAddress) -> str | None:
    """Why ``ip`` may not be fetched from by default (``"a loopback address"``), or
    ``None`` for a public address."""
    if isinstance(ip, ipaddress.IPv6Address):
        # An IPv6 form of an IPv4 address reaches that IPv4 host: judge the embedded one.
        embedded = _embedded_ipv4(ip)
        if embedded is not None:
            inner = blocked_reason(embedded)
            if inner is not None:
                return f"{inner} (as {embedded} embedded in IPv6)"
            if ip in _NAT64:
                return None
        ip = ipaddress.IPv6Address(ip.compressed.split("%", 1)[0])  # drop a zone id
    if ip in METADATA_ADDRESSES:
        return "a cloud metadata address"
    checks: tuple[tuple[bool, str], ...] = (
        (ip.is_unspecified, "an unspecified address"),
        (ip.is_loopback, "a loopback address"),
        (ip.is_link_local, "a link-local address"),
        (isinstance(ip, ipaddress.IPv4Address) and ip in _CGNAT, "a shared (CGNAT) address"),
        (ip.is_multicast, "a multicast address"),
        (ip.is_private, "a private address"),
        (ip.is_reserved, "a reserved address"),
        (not ip.is_global, "a non-public address"),
    )
    return next((reason for hit, reason in checks if hit), None)


def _normalize_host(host: str) -> str:
    return host.strip().strip("[]").rstrip(".").lower()


def _parse_ip(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


@dataclass(frozen=True, slots=True)
class Allowlist:
    """Networks and host names exempt from the guard (``Settings.allowed_networks``)."""

    networks: tuple[IPNetwork, ...] = ()
    hosts: frozenset[str] = field(default_factory=frozenset)

    @classmethod
    def parse(cls, entries: Iterable[str]) -> Allowlist:
        networks: list[IPNetwork] = []
        hosts: set[str] = set()
        for raw in entries:
            entry = raw.strip()
            if not entry:
                continue
            try:
                networks.append(ipaddress.ip_network(entry, strict=False))
                continue
            except ValueError:
                pass
            name = _normalize_host(entry)
            if not name or any(c in name for c in "/:@ ") or name.startswith("*"):
                raise InvalidInputError(
                    f"invalid allowed network {raw!r}: use a CIDR (10.0.0.0/8) or a host name"
                )
            hosts.add(name)
        return cls(tuple(networks), frozenset(hosts))

    def permits(self, host: str, ip: IPAddress) -> bool:
        """Whether ``ip`` (an address of ``host``) is opened by this allowlist."""
        if ip in METADATA_ADDRESSES:
            exact = any(n.prefixlen == n.max_prefixlen and ip in n for n in self.networks)
            return exact or (host in self.hosts and host in METADATA_HOSTS)
        if host in self.hosts or any(ip in n for n in self.networks):
            return True
        embedded = _embedded_ipv4(ip)
        return embedded is not None and any(embedded in n for n in self.networks)


class URLGuard:
    """Checks URLs and connections against the SSRF policy.

    One guard serves one fetch; every refusal is also kept in :attr:`refusals`, so
    a caller whose library swallowed the exception (yt-dlp wraps everything in its
    own errors) can still report the real reason.
    """

    def __init__(
        self, allowlist: Allowlist | None = None, *, resolver: Resolver = socket.getaddrinfo
    ) -> None:
        self.allowlist = allowlist or Allowlist()
        self._resolver = resolver
        self.refusals: list[BlockedURLError] = []
        #: Set by the fetcher: every connection made through the guard is registered
        #: with it, so it can cut them when the download is too slow.
        self.pace: Pace | None = None

    @classmethod
    def from_entries(cls, entries: Iterable[str]) -> URLGuard:
        return cls(Allowlist.parse(entries))

    def _refuse(self, target: str, why: str) -> BlockedURLError:
        error = BlockedURLError(f"refusing to fetch {target}: {why} ({ALLOW_HINT})")
        self.refusals.append(error)
        return error

    def check_url(self, url: str) -> None:
        """Refuses a URL whose scheme is not http(s) or whose host is not public.

        Host names are resolved here; the connection is checked once more at connect
        time, so a check that passed here cannot be turned around by DNS.
        """
        try:
            parts = urlsplit(url)
            port = parts.port
        except ValueError as exc:
            raise UnsupportedSourceError(f"invalid URL {url!r}: {exc}") from exc
        scheme = parts.scheme.lower()
        if scheme not in ALLOWED_SCHEMES:
            raise UnsupportedSourceError(
                f"unsupported URL scheme {scheme + ':' if scheme else '(none)'} in {url!r}: "
                "only http and https URLs (or local paths) can be fetched"
            )
        host = _normalize_host(parts.hostname or "")
        if not host:
            raise UnsupportedSourceError(f"URL {url!r} has no host")
        if "%" in host:
            # fe80::1%lo names an interface of the machine that fetches: never a source.
            raise self._refuse(url, "a scoped IPv6 address (with a zone id) is never fetched")
        self.resolve(host, port or (443 if scheme == "https" else 80), target=url)

    def resolve(self, host: str, port: int, *, target: str | None = None) -> list[tuple[Any, ...]]:
        """``getaddrinfo`` results for ``host``, after checking that every address is
        public or allowed; raises :class:`BlockedURLError` otherwise."""
        target = target or f"{host}:{port}"
        name = _normalize_host(host)
        if name in METADATA_HOSTS and name not in self.allowlist.hosts:
            raise self._refuse(target, f"{name} is a cloud metadata host")
        if "%" in name:
            raise self._refuse(target, "a scoped IPv6 address (with a zone id) is never fetched")
        literal = _parse_ip(name)
        try:
            infos = self._resolver(name, port, 0, socket.SOCK_STREAM)
        except UnicodeError as exc:  # a name IDNA cannot encode (too long, bad labels)
            raise UnsupportedSourceError(f"cannot fetch {target}: invalid host name") from exc
        except socket.gaierror as exc:
            if exc.errno in (socket.EAI_NONAME, getattr(socket, "EAI_NODATA", None)):
                raise HostNotFoundError(f"cannot fetch {target}: host {name} not found") from exc
            raise NetworkError(f"cannot fetch {target}: resolving {name} failed: {exc}") from exc
        if not infos:
            raise HostNotFoundError(f"cannot fetch {target}: host {name} has no address")
        for info in infos:
            ip = ipaddress.ip_address(info[4][0])
            reason = blocked_reason(ip)
            if reason is None or self.allowlist.permits(name, ip):
                continue
            if literal is not None and literal == ip:
                raise self._refuse(target, f"{name} is {reason}")
            raise self._refuse(target, f"{name} resolves to {ip}, {reason}")
        return list(infos)

    def connect(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        source_address: tuple[str, int] | None = None,
    ) -> socket.socket:
        """Resolves, checks and connects to one of the checked addresses, so the
        address used is the address judged."""
        error: OSError | None = None
        for family, socktype, proto, _, sockaddr in self.resolve(host, port):
            sock = socket.socket(family, socktype, proto)
            try:
                if timeout is not None:
                    sock.settimeout(timeout)
                if source_address is not None:
                    sock.bind(source_address)
                sock.connect(sockaddr)
            except OSError as exc:
                sock.close()
                error = exc
                continue
            if self.pace is not None:
                self.pace.register(sock)
            return sock
        raise error or OSError(f"cannot connect to {host}:{port}")


class GuardedBackend(httpcore.SyncBackend):
    """httpcore's network backend, connecting only through :meth:`URLGuard.connect`."""

    def __init__(self, guard: URLGuard) -> None:
        self._guard = guard

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.NetworkStream:
        error: httpcore.ConnectError | httpcore.ConnectTimeout | None = None
        for *_, sockaddr in self._guard.resolve(host, port):
            try:
                # Connect to the address just checked, never to the name: a second
                # lookup could answer differently. TLS still uses the URL's host name.
                stream = super().connect_tcp(
                    sockaddr[0], port, timeout, local_address, socket_options
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                error = exc
                continue
            if self._guard.pace is not None:
                sock = stream.get_extra_info("socket")
                if isinstance(sock, socket.socket):
                    self._guard.pace.register(sock)
            return stream
        assert error is not None  # resolve() never returns an empty list
        raise error

    def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.NetworkStream:
        raise BlockedURLError(f"refusing to connect to the unix socket {path}")


def guarded_transport(guard: URLGuard, *, verify: bool = True) -> httpx.HTTPTransport:
    """An httpx transport whose every connection goes through ``guard``.

    Environment proxies are ignored (``trust_env=False``): through a proxy the guard
    would only ever see the proxy's address.
    """
    transport = httpx.HTTPTransport(verify=verify, trust_env=False)
    # httpx 0.28 has no parameter for httpcore's network backend (encode/httpx#3749),
    # so the pool it built is replaced by an equivalent one using the guarded backend.
    transport._pool.close()
    transport._pool = httpcore.ConnectionPool(
        ssl_context=httpx.create_ssl_context(verify=verify, trust_env=False),
        network_backend=GuardedBackend(guard),
    )
    return transport


class Pace:
    """An overall deadline and a minimum rate for one download.

    A source that sends a byte every few seconds never trips a per-read timeout, yet
    holds a worker for hours. The fetcher reports the bytes it receives
    (:meth:`received`); a watchdog thread (:meth:`watch`) checks twice a second that
    the deadline has not passed and that, once the first ``window`` seconds are over,
    at least ``min_rate * window`` bytes came in the last ``window`` seconds. When
    either rule is broken it keeps the error (:attr:`error`) and shuts down every
    socket registered with it (the guard registers each one it connects), so a read
    blocked on the source returns at once and the fetcher raises :attr:`error`.
    """

    def __init__(
        self,
        *,
        deadline: float,
        min_rate: float = 0.0,
        window: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.deadline = deadline
        self.min_rate = min_rate
        self.window = window
        self._clock = clock
        self._started = clock()
        self._rate_from: float | None = None
        self._samples: collections.deque[tuple[float, int]] = collections.deque()
        self._total = 0
        self._sockets: list[socket.socket] = []
        self._closed = False
        self._lock = threading.Lock()
        self.error: SourceTooSlowError | None = None

    def register(self, sock: socket.socket) -> None:
        """Keeps a duplicate descriptor of ``sock`` to cut it with: TLS wraps (and
        detaches) the socket object the guard made, but shutting down any descriptor
        of a socket shuts the socket down. The duplicates are closed by :meth:`close`
        (so a connection closed meanwhile only really closes then)."""
        try:
            duplicate = sock.dup()
        except OSError:
            return
        with self._lock:
            if self._closed:
                duplicate.close()
                return
            self._sockets.append(duplicate)
        if self.error is not None:
            self._cut()

    def start_rate(self) -> None:
        """Starts the minimum-rate rule (the body is arriving from now on)."""
        with self._lock:
            if self._rate_from is None:
                now = self._clock()
                self._rate_from = now
                self._samples.append((now, self._total))

    def received(self, count: int) -> None:
        with self._lock:
            self._total += count
            self._samples.append((self._clock(), self._total))
        self.check()

    def check(self) -> None:
        """Raises :attr:`error` (and cuts the connections) once a rule is broken."""
        if self.error is None:
            self.error = self._broken()
            if self.error is not None:
                self._cut()
        if self.error is not None:
            raise self.error

    def _broken(self) -> SourceTooSlowError | None:
        now = self._clock()
        if now - self._started > self.deadline:
            return SourceTooSlowError(
                f"the download took longer than the {self.deadline:g} s deadline"
            )
        with self._lock:
            if self.min_rate <= 0 or self._rate_from is None or now - self._rate_from < self.window:
                return None
            while len(self._samples) > 1 and self._samples[1][0] <= now - self.window:
                self._samples.popleft()
            got = self._total - self._samples[0][1]
        if got < self.min_rate * self.window:
            return SourceTooSlowError(
                f"the source sent {got} bytes in {self.window:g} s, slower than the minimum "
                f"of {self.min_rate:g} bytes/s"
            )
        return None

    def _cut(self) -> None:
        with self._lock:
            sockets = list(self._sockets)
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        """Lets go of the registered connections (the end of the fetch)."""
        with self._lock:
            sockets, self._sockets, self._closed = self._sockets, [], True
        for sock in sockets:
            sock.close()

    @contextlib.contextmanager
    def watch(self, interval: float = 0.5) -> Iterator[Pace]:
        """Runs the watchdog thread for the duration of the ``with`` block, then
        :meth:`close`."""
        stop = threading.Event()

        def loop() -> None:
            while not stop.wait(interval):
                with contextlib.suppress(SourceTooSlowError):
                    self.check()
                if self.error is not None:
                    return

        thread = threading.Thread(target=loop, name="reelscribe-pace", daemon=True)
        thread.start()
        try:
            yield self
        finally:
            stop.set()
            thread.join()
            self.close()
