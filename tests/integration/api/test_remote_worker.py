"""A remote worker (``reelscribe worker --remote URL``) in a subprocess that has only
the API's URL and a ``worker`` key: no database, Redis or storage settings, and data
and cache folders that start empty. It runs a job, is SIGKILLed in the middle of it,
and a second remote worker finishes the job exactly once."""

from __future__ import annotations

import asyncio
import hashlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from reelscribe.backends.db import workers
from reelscribe.backends.db.enums import EventKind
from reelscribe.backends.db.schema import JobEventRow
from reelscribe.config import Settings
from reelscribe.hub.remote import RemoteHub
from reelscribe.service.auth import KeyService
from reelscribe.service.runtime import Runtime
from reelscribe.worker import Worker
from tests.conftest import make_media
from tests.integration.api.conftest import Live, StartApi, _bound_socket, serve, settings_for
from tests.integration.api.test_worker_api import worker_client

CLI = str(Path(sys.executable).with_name("reelscribe"))


def remote_env(home: Path, token: str, models_dir: Path) -> dict[str, str]:
    # Nothing of the test's own REELSCRIBE_* settings leaks in: only what a rented GPU
    # machine would be given.
    env = {k: v for k, v in os.environ.items() if not k.startswith("REELSCRIBE_")}
    env.update({
        "HOME": str(home), "XDG_DATA_HOME": str(home / "data"),
        "XDG_CACHE_HOME": str(home / "cache"), "TMPDIR": str(home / "tmp"),
        "REELSCRIBE_REMOTE_TOKEN": token,
        "REELSCRIBE_MODELS_DIR": str(models_dir),  # the model, assembled once per session
        "REELSCRIBE_LEASE_SECONDS": "2",
        "REELSCRIBE_HEARTBEAT_SECONDS": "0.3",
        "REELSCRIBE_REMOTE_CLAIM_WAIT_SECONDS": "1",
        "REELSCRIBE_WORKER_CONCURRENCY": "1",
        # sequential decoding: slow enough to be killed in the middle of it
        "REELSCRIBE_BATCHED_MIN_DURATION": "100000",
    })  # fmt: skip
    (home / "tmp").mkdir(parents=True, exist_ok=True)
    return env


def wait_for(admin: httpx.Client, job_id: str, worker: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 180
    while True:
        job = admin.get(f"/api/jobs/{job_id}").json()
        if job["stage"] == "transcribe" and job["progress"] > 40:
            return
        assert job["status"] in ("queued", "processing"), job
        assert time.monotonic() < deadline, "the first worker never got to transcribe"
        assert worker.poll() is None, "the first worker exited early"
        time.sleep(0.1)


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_remote_worker_killed_mid_job_completes_elsewhere_once(
    start_api: StartApi, models_dir: Path, shared_media: Path, tmp_path: Path
) -> None:
    live: Live = start_api()
    home = tmp_path / "gpu-box"
    with live.client() as admin, worker_client(live, admin) as worker_key:
        token = worker_key.headers["Authorization"].removeprefix("Bearer ")
        media = tmp_path / "multilingual.mp3"
        shutil.copy(shared_media / "multilingual.mp3", media)
        upload = admin.post("/api/uploads", content=media.read_bytes(),
                            headers={"X-Filename": media.name}).json()  # fmt: skip
        spec = {"source": {"upload_id": upload["id"]}, "outputs": ["srt", "json"]}
        job_id = admin.post("/api/jobs", json=spec).json()["id"]

        env = remote_env(home, token, models_dir)
        command = [CLI, "worker", "--remote", live.base_url]
        first = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL,
                                 stderr=subprocess.PIPE)  # fmt: skip
        try:
            wait_for(admin, job_id, first)
            # The API wrote the remote worker's liveness row on its behalf.
            rows = live.run(workers.live_workers(live.runtime.engine, within=30))
            assert [r.id.split(":", 1)[0] for r in rows] == ["remote"]
            assert rows[0].busy == 1
        finally:
            first.send_signal(signal.SIGKILL)
            _, first_err = first.communicate(timeout=30)
        assert token not in first_err.decode(errors="replace")
        job = admin.get(f"/api/jobs/{job_id}").json()
        assert job["status"] == "processing"  # the killed worker still holds the lease
        time.sleep(2.5)  # its lease (2 s) runs out; the job is claimable again

        second = subprocess.run([*command, "--burst"], env=env, capture_output=True,
                                text=True, timeout=300, check=False)  # fmt: skip
        assert second.returncode == 0, second.stderr[-3000:]
        assert token not in second.stderr + second.stdout

        job = admin.get(f"/api/jobs/{job_id}").json()
        assert job["status"] == "done", job
        assert job["attempts"] == 2
        result = admin.get(f"/api/jobs/{job_id}/result").json()
        links = {o["name"]: o["url"] for o in result["outputs"]}
        srt = admin.get(links["srt"])
        assert srt.status_code == 200
        assert "-->" in srt.text

    async def events() -> list[JobEventRow]:
        async with live.runtime.engine.connect() as conn:
            rows = await conn.execute(select(JobEventRow).where(JobEventRow.job_id == job_id)
                                      .order_by(JobEventRow.id))  # fmt: skip
            return list(rows.all())  # type: ignore[arg-type]

    rows = live.run(events())
    starts = [e for e in rows if e.kind == EventKind.STEP_START and e.data["step"] == "fetch"]
    assert [e.data["attempt"] for e in starts] == [1, 2]
    transitions = [(e.data["from"], e.data["to"]) for e in rows if e.kind == EventKind.TRANSITION]
    assert transitions[-1] == ("processing", "done")
    assert sum(1 for t in transitions if t[1] == "done") == 1
    # exactly one set of results: each output stored once, nothing else under the job
    outputs = live.run(live.runtime.jobs.get(job_id)).result["outputs"]  # type: ignore[union-attr]
    assert set(outputs) == {"srt", "json"}
    assert live.run(live.runtime.storage.delete_prefix(f"results/{job_id}/")) == len(outputs)
    # The remote worker used no database or storage of its own.
    # (onnxruntime keeps a telemetry id in a .db under ~/.cache: not ours.)
    made = [p.relative_to(home) for p in home.rglob("*")]
    ours = [p for p in made if "Microsoft" not in p.parts]
    assert not [p for p in ours if p.name.startswith(("reelscribe.db", "signing.key"))
                or "blobs" in p.parts or p.suffix in (".db", ".sqlite")], ours  # fmt: skip
    assert not (home / "data" / "reelscribe").exists(), ours


def test_remote_worker_rides_out_api_outages(tmp_path: Path, models_dir: Path) -> None:
    """The API is down when the worker starts, comes up, runs a job through the worker,
    goes down and comes back: the worker keeps its slot throughout and takes the next
    job (in-process here, over real HTTP; a video clip, so outputs are binary)."""
    sock = _bound_socket()  # bound, not listening yet: connections are refused
    port = sock.getsockname()[1]
    settings = settings_for(tmp_path / "api", port)
    (tmp_path / "api").mkdir()
    token = asyncio.run(_worker_key(settings))
    media = make_media(tmp_path / "talk.mp4", duration=4.0)
    worker_settings = Settings(
        models_dir=models_dir, cache_dir=tmp_path / "worker-cache", lease_seconds=5.0,
        heartbeat_seconds=0.3, worker_concurrency=1, backend_retry_max_seconds=0.5,
    )  # fmt: skip
    state: dict[str, Any] = {}

    async def work() -> None:
        hub = RemoteHub(f"http://127.0.0.1:{port}", token, claim_wait=1.0)
        async with hub:
            worker = Worker(hub, worker_settings)
            state.update(worker=worker, loop=asyncio.get_running_loop())
            await worker.run()

    thread = threading.Thread(target=lambda: asyncio.run(work()), daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 30
        while not (state.get("worker") and state["worker"].claim_failing):
            assert time.monotonic() < deadline, "the worker never tried to claim"
            time.sleep(0.05)
        for round_ in range(2):
            with serve(settings, sock) as live, live.client() as admin:
                upload = admin.post("/api/uploads", content=media.read_bytes(),
                                    headers={"X-Filename": media.name}).json()  # fmt: skip
                spec = {"source": {"upload_id": upload["id"]}, "outputs": ["clip"],
                        "start": 1, "end": 3, "options": {"clip_mode": "exact"}}  # fmt: skip
                job_id = admin.post("/api/jobs", json=spec).json()["id"]
                job = _wait_done(admin, job_id)
                assert job["status"] == "done", job
                assert job["attempts"] == 1
                result = admin.get(f"/api/jobs/{job_id}/result").json()
                clip = next(o for o in result["outputs"] if o["name"] == "clip")
                body = admin.get(clip["url"]).content
                assert hashlib.sha256(body).hexdigest() == clip["sha256"]
                assert body[4:8] == b"ftyp"  # an MP4 came through the PUT intact
                assert state["worker"].jobs_done == round_ + 1
            # The API is down again: the worker's claims fail, and it stays.
            deadline = time.monotonic() + 30
            while not state["worker"].claim_failing:
                assert time.monotonic() < deadline, "the worker did not notice the outage"
                time.sleep(0.05)
            assert thread.is_alive()
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind(("127.0.0.1", port))
    finally:
        if "worker" in state:
            state["loop"].call_soon_threadsafe(state["worker"].stop.set)
        thread.join(30)
        sock.close()


async def _worker_key(settings: Settings) -> str:
    async with Runtime(settings) as runtime:
        _, secret = await KeyService(runtime.engine, settings).create("gpu", ["worker"])
    return secret


def _wait_done(admin: httpx.Client, job_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + 120
    while True:
        job: dict[str, Any] = admin.get(f"/api/jobs/{job_id}").json()
        if job["status"] not in ("queued", "processing") or time.monotonic() > deadline:
            return job
        time.sleep(0.1)
