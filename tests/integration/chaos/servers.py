"""A PostgreSQL and a Redis of the test's own, on their own ports (55432 and 56379,
or free ones when those are taken), so fault tests can stop and restart them without
touching the machine's servers (see ../shared/NOTES.md).

Missing binaries skip the test with the reason, or fail it where
``REELSCRIBE_REQUIRE_SERVICES`` is set (CI).
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

from tests.services import missing_service


def port_or_free(preferred: int) -> int:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", preferred))
        except OSError:
            s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_port(port: int, up: bool, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as s:
            s.settimeout(0.2)
            is_up = s.connect_ex(("127.0.0.1", port)) == 0
        if is_up == up:
            return
        time.sleep(0.05)
    raise AssertionError(f"port {port} did not go {'up' if up else 'down'}")


class PrivatePostgres:
    """``initdb`` once; ``start()``/``stop()`` as often as the test likes. As root the
    server runs as the ``postgres`` user (it refuses to run as root)."""

    def __init__(self, port: int = 55432) -> None:
        bins = sorted(glob.glob("/usr/lib/postgresql/*/bin"))
        found = shutil.which("pg_ctl")
        self.bin = Path(bins[-1]) if bins else Path(found).parent if found else None
        if self.bin is None or not (self.bin / "initdb").exists():
            missing_service("PostgreSQL server binaries (initdb, pg_ctl) are not installed")
        self.port = port_or_free(port)
        # Not under pytest's tmp_path: its parents are private to root, and the server
        # runs as postgres.
        self.root = Path(tempfile.mkdtemp(prefix="reelscribe-pg-"))
        self.data = self.root / "data"
        self.user: str | None = None
        if os.geteuid() == 0:
            self.user = "postgres"
            pw = pwd.getpwnam(self.user)
            os.chown(self.root, pw.pw_uid, pw.pw_gid)
        self._run(f"{self.bin}/initdb -D {self.data} -A trust -U postgres --no-sync -E UTF8")
        self.url = f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, command: str) -> None:
        argv = ["su", self.user, "-c", command] if self.user else ["sh", "-c", command]
        subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def create_database(self, name: str) -> str:
        """Creates an empty database (the server must be up); returns its URL."""
        self._run(f"{self.bin}/createdb -h {self.root} -p {self.port} -U postgres {name}")
        return f"postgresql://postgres@127.0.0.1:{self.port}/{name}"

    def running(self) -> bool:
        with socket.socket() as s:
            s.settimeout(0.2)
            return s.connect_ex(("127.0.0.1", self.port)) == 0

    def start(self) -> None:
        if self.running():
            return
        options = f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off"
        self._run(f"{self.bin}/pg_ctl -D {self.data} -o '{options}' -l {self.root}/log -w start")
        wait_port(self.port, up=True)

    def stop(self) -> None:
        self._run(f"{self.bin}/pg_ctl -D {self.data} -m fast -w stop")
        wait_port(self.port, up=False)

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.stop()
        shutil.rmtree(self.root, ignore_errors=True)


class PrivateRedis:
    """A Redis without persistence: each ``start()`` after a ``stop()`` is empty, like
    a restarted Redis that lost its data (the consumer group included)."""

    def __init__(self, port: int = 56379) -> None:
        self.binary = shutil.which("redis-server")
        if self.binary is None:
            missing_service("redis-server is not installed")
        self.port = port_or_free(port)
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        assert self.binary is not None
        if self.proc is not None and self.proc.poll() is None:
            return
        self.proc = subprocess.Popen(
            [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        wait_port(self.port, up=True)

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(timeout=10)
            self.proc = None
        wait_port(self.port, up=False)

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.stop()
