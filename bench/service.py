"""Service benchmark: the HTTP API, the queue and the workers, as separate processes
talking over loopback, each figure measured against its baseline in the same run.

1. Submits per second (POST /api/jobs, 16 keep-alive connections, no workers) on
   SQLite and on PostgreSQL (a scratch database on 127.0.0.1:5432, skipped if
   unreachable), driven by ``loadgen.py`` so the client does not eat the server's CPU.
2. 30 s stream-copy clip jobs with 2 embedded workers: end-to-end latency (submit to
   done, p50/p95) against calling the pipeline directly on the same input.
3. Stream-copy clip jobs per minute with 2 workers (100 jobs submitted at once).
4. A 1 GiB upload (streamed) against `cp` of the same file (and, for context, `cp`
   followed by fsync, and SHA-256 of the file alone), and the server's peak RSS.

    python bench/service.py [--skip-upload]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx

import loadgen
from reelscribe.client import Client
from reelscribe.files import sha256_file
from reelscribe.media.ffmpeg import run_ffmpeg

CLI = str(Path(sys.executable).with_name("reelscribe"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    def __init__(self, root: Path, role: str, **env: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = (
            dict(os.environ)
            | {
                "REELSCRIBE_DATABASE_URL": f"sqlite:///{root / 'db.sqlite'}",
                "REELSCRIBE_STORAGE_URL": f"file://{root / 'blobs'}",
                "REELSCRIBE_SIGNING_KEY": "bench-signing-key-0123456789abcdef",
                "REELSCRIBE_CACHE_DIR": str(root / "cache"),
                "REELSCRIBE_PORT": str(self.port),
                "REELSCRIBE_RATE_LIMIT_PER_MINUTE": "10000000",
                "REELSCRIBE_MAX_QUEUED_JOBS": "1000000",
                "REELSCRIBE_ALLOW_ANONYMOUS": "true",
            }
            | env
        )
        self.role = role

    def __enter__(self) -> Server:
        args = [CLI, self.role] + (["--anonymous"] if self.role == "serve" else [])
        self.proc = subprocess.Popen(args, env=self.env, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)  # fmt: skip
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                # /readyz, not /healthz: the process answers before its runtime has
                # started, and a request then gets 503 "starting".
                if httpx.get(f"{self.url}/readyz", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"{self.role} did not start")

    def peak_rss_mb(self) -> float:
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
        return float("nan")

    def __exit__(self, *exc: object) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def make_video(dest: Path, seconds: int) -> Path:
    run_ffmpeg(["-y", "-f", "lavfi", "-i", f"testsrc2=size=1280x720:rate=30:duration={seconds}",
                "-f", "lavfi", "-i", f"sine=frequency=440:duration={seconds}",
                "-c:v", "libx264", "-preset", "ultrafast", "-g", "60", "-pix_fmt", "yuv420p",
                "-c:a", "aac", str(dest)])  # fmt: skip
    return dest


def submit_rate(url: str, upload_id: str, count: int, concurrency: int = 16) -> float:
    """POST /api/jobs ``count`` times, ``concurrency`` in flight, after a warm-up."""
    spec = {"source": {"upload_id": upload_id}, "outputs": ["clip"], "start": 0, "end": 5}
    asyncio.run(loadgen.rate(url, "POST", "/api/jobs", spec, count=64, expect=202))
    return asyncio.run(
        loadgen.rate(url, "POST", "/api/jobs", spec, count=count, concurrency=concurrency,
                     expect=202)
    )  # fmt: skip


def pg_database() -> str | None:
    try:
        import asyncpg  # noqa: F401
    except ImportError:
        return None
    name = f"rs_bench_{uuid.uuid4().hex[:8]}"

    async def create() -> None:
        import asyncpg

        conn = await asyncpg.connect("postgresql://postgres@127.0.0.1:5432/test")
        await conn.execute(f'CREATE DATABASE "{name}"')
        await conn.close()

    try:
        asyncio.run(create())
    except OSError:
        return None
    return name


def drop_pg(name: str) -> None:
    async def drop() -> None:
        import asyncpg

        conn = await asyncpg.connect("postgresql://postgres@127.0.0.1:5432/test")
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await conn.close()

    asyncio.run(drop())


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def direct_clip_times(source: Path, runs: int) -> list[float]:
    from reelscribe.models import ClipMode, TimeRange
    from reelscribe.pipeline.runner import PipelineRequest, run
    from reelscribe.sources import LocalFileSource

    times = []
    for i in range(runs):
        with tempfile.TemporaryDirectory() as tmp:
            wanted = TimeRange(10 + i % 5, 40 + i % 5)
            request = PipelineRequest(source=LocalFileSource(source), time_range=wanted, formats=(),
                                      clip_output=True, clip_mode=ClipMode.FAST)  # fmt: skip
            t0 = time.perf_counter()
            run(request, Path(tmp) / "out", Path(tmp) / "work")
            times.append(time.perf_counter() - t0)
    return times


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--submits", type=int, default=3000)
    parser.add_argument("--latency-jobs", type=int, default=30)
    parser.add_argument("--throughput-jobs", type=int, default=100)
    parser.add_argument("--skip-upload", action="store_true")
    args = parser.parse_args()
    rows: list[tuple[str, str, str]] = []
    with tempfile.TemporaryDirectory(prefix="rs-bench-") as tmp_str:
        tmp = Path(tmp_str)
        video = make_video(tmp / "source.mp4", 120)

        # 1. submits per second
        for label, env in [("SQLite", {}), ("PostgreSQL", None)]:
            db = None
            if env is None:
                db = pg_database()
                if db is None:
                    rows.append(("submits/s, PostgreSQL", "skipped (no server)", "≥ 500/s"))
                    continue
                env = {"REELSCRIBE_DATABASE_URL": f"postgresql://postgres@127.0.0.1:5432/{db}"}
            root = tmp / f"api-{label}"
            try:
                with Server(root, "api", **env) as server, Client(server.url) as client:
                    upload = client.upload(video)["id"]
                    rate = submit_rate(server.url, upload, args.submits)
            finally:
                if db is not None:
                    drop_pg(db)
            target = "≥ 300/s" if label == "SQLite" else "≥ 500/s"
            rows.append((f"submits/s, {label} (16 in flight)", f"{rate:.0f}/s", target))

        # 2 + 3. clip jobs through 2 embedded workers
        direct = direct_clip_times(video, args.latency_jobs // 2)
        with Server(tmp / "serve", "serve", REELSCRIBE_EMBEDDED_WORKERS="2") as server, \
                Client(server.url) as client:  # fmt: skip
            upload = client.upload(video)["id"]
            latencies = []
            for i in range(args.latency_jobs):
                spec = {"source": {"upload_id": upload}, "outputs": ["clip"],
                        "start": 10 + i % 5, "end": 40 + i % 5}  # fmt: skip
                t0 = time.perf_counter()
                job = client.submit(spec)
                job = client.wait(job["id"], poll=0.01)
                assert job["status"] == "done", job
                latencies.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            ids = [client.submit({"source": {"upload_id": upload}, "outputs": ["clip"],
                                  "start": 10 + i % 7, "end": 40 + i % 7})["id"]
                   for i in range(args.throughput_jobs)]  # fmt: skip
            for job_id in ids:
                assert client.wait(job_id, poll=0.05)["status"] == "done"
            per_minute = args.throughput_jobs / (time.perf_counter() - t0) * 60
        p50, p95 = percentile(latencies, 0.5), percentile(latencies, 0.95)
        d50 = statistics.median(direct)
        rows.append(
            ("30 s clip job, end-to-end p50 / p95", f"{p50 * 1000:.0f} / {p95 * 1000:.0f} ms", "")
        )
        rows.append(("… pipeline called directly, p50", f"{d50 * 1000:.0f} ms", ""))
        rows.append(("… service overhead at p50", f"{(p50 - d50) * 1000:.0f} ms", "≤ 150 ms"))
        rows.append(("clip jobs per minute, 2 workers", f"{per_minute:.0f}", "≥ 300"))

        # 4. 1 GiB upload vs cp
        if not args.skip_upload:
            big = tmp / "big.bin"
            with big.open("wb") as fh:
                for _ in range(1024):
                    fh.write(os.urandom(1 << 20))
            t0 = time.perf_counter()
            shutil.copyfile(big, tmp / "big.copy")
            cp_time = time.perf_counter() - t0
            with (tmp / "big.copy").open("rb") as fh:
                os.fsync(fh.fileno())
            cp_sync_time = time.perf_counter() - t0  # what a durable copy costs
            (tmp / "big.copy").unlink()
            t0 = time.perf_counter()
            sha256_file(big)
            hash_time = time.perf_counter() - t0
            with Server(tmp / "upload", "serve", REELSCRIBE_EMBEDDED_WORKERS="0") as server, \
                    Client(server.url, timeout=600) as client:  # fmt: skip
                t0 = time.perf_counter()
                client.upload(big)
                up_time = time.perf_counter() - t0
                rss = server.peak_rss_mb()
            rows.append(("1 GiB upload vs cp", f"{up_time:.2f} s vs {cp_time:.2f} s "
                         f"({up_time / cp_time:.2f}×)", "≤ 1.5×"))  # fmt: skip
            rows.append(("… vs cp + fsync (durable, as the upload is)",
                         f"{cp_sync_time:.2f} s ({up_time / cp_sync_time:.2f}×)", ""))  # fmt: skip
            rows.append(("… SHA-256 of the file alone", f"{hash_time:.2f} s", ""))
            rows.append(("server peak RSS during the upload", f"{rss:.0f} MB", "< 150 MB"))

    print(f"machine: {platform.machine()} cores={os.cpu_count()}")
    print("| measure | result | target |")
    print("|---|---|---|")
    for row in rows:
        print(f"| {row[0]} | {row[1]} | {row[2]} |")


if __name__ == "__main__":
    main()
