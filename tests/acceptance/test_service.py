"""End to end: a real `reelscribe serve` process, a real HTTP client, real media.

upload → job → live progress over SSE → result → download of the SRT and the clip;
a URL job against a local HTTP server (with Range support); a webhook receiver on
loopback that verifies the signature of every delivery.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import av
import httpx
import pysrt
import pytest

from reelscribe.service.webhook_signing import (
    HEADER_EVENT,
    HEADER_SIGNATURE,
    HEADER_TIMESTAMP,
    verify_signature,
)
from tests.acceptance.test_cli import jfk_video  # noqa: F401 - a fixture
from tests.rangeserver import RangeServer

CLI = str(Path(sys.executable).with_name("reelscribe"))
SECRET = "e2e-signing-key-0123456789abcdef"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Receiver:
    """A webhook receiver that checks each delivery's signature, as a user's would."""

    def __init__(self) -> None:
        self.deliveries: list[dict[str, Any]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                valid = verify_signature(SECRET, self.headers[HEADER_TIMESTAMP], body,
                                         self.headers[HEADER_SIGNATURE])  # fmt: skip
                receiver.deliveries.append({"event": self.headers[HEADER_EVENT],
                                            "valid": valid, "body": json.loads(body)})  # fmt: skip
                self.send_response(204 if valid else 401)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory, models_dir: Path) -> Iterator[str]:
    root = tmp_path_factory.mktemp("serve")
    port = free_port()
    env = dict(os.environ) | {
        "REELSCRIBE_DATABASE_URL": f"sqlite:///{root / 'db.sqlite'}",
        "REELSCRIBE_STORAGE_URL": f"file://{root / 'blobs'}",
        "REELSCRIBE_SIGNING_KEY": SECRET,
        "REELSCRIBE_MODELS_DIR": str(models_dir),
        "REELSCRIBE_CACHE_DIR": str(root / "cache"),
        "REELSCRIBE_PORT": str(port),
        "REELSCRIBE_ALLOWED_NETWORKS": "127.0.0.1/32",
    }
    proc = subprocess.Popen([CLI, "serve", "--anonymous"], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""
            assert time.monotonic() < deadline, "reelscribe serve did not become ready"
            time.sleep(0.2)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=60)
        if proc.stdout is not None:
            proc.stdout.close()


def follow(client: httpx.Client, job_id: str) -> list[tuple[str, dict[str, Any]]]:
    """Reads the job's SSE stream to its end; returns (event, data) pairs."""
    events: list[tuple[str, dict[str, Any]]] = []
    name = "message"
    with client.stream("GET", f"/api/jobs/{job_id}/events", timeout=120) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        for line in response.iter_lines():
            if line.startswith("event:"):
                name = line.split(":", 1)[1].strip()
            elif line.startswith("data:"):
                events.append((name, json.loads(line.split(":", 1)[1])))
                if name == "end":
                    break
    return events


def test_upload_job_progress_result_download(
    service: str,
    jfk_video: Path,  # noqa: F811
    tmp_path: Path,
) -> None:
    receiver = Receiver()
    try:
        with httpx.Client(base_url=service, timeout=60) as client:
            with jfk_video.open("rb") as fh:
                upload = client.post("/api/uploads", content=fh,
                                     headers={"X-Filename": "jfk%20video.mp4"})  # fmt: skip
            assert upload.status_code == 201, upload.text
            assert upload.json()["size"] == jfk_video.stat().st_size

            job = client.post("/api/jobs", json={
                "source": {"upload_id": upload.json()["id"]},
                "start": 2, "end": 9, "outputs": ["srt", "clip"],
                "options": {"clip_mode": "exact"}, "webhook_url": receiver.url,
            })  # fmt: skip
            assert job.status_code == 202, job.text
            job_id = job.json()["id"]

            events = follow(client, job_id)
            progress = [d["progress"] for name, d in events if name == "progress"]
            assert progress == sorted(progress)
            assert progress[-1] == pytest.approx(100.0)
            steps = {d["data"]["step"] for name, d in events if name == "step_start"}
            assert {"fetch", "clip", "transcribe", "upload"} <= steps
            assert events[-1] == ("end", {"status": "done"})

            result = client.get(f"/api/jobs/{job_id}/result")
            assert result.status_code == 200, result.text
            links = {o["name"]: o["url"] for o in result.json()["outputs"]}
            assert set(links) == {"srt", "clip"}
            srt = client.get(links["srt"])
            assert srt.status_code == 200
            (tmp_path / "a.srt").write_bytes(srt.content)
            subs = pysrt.open(str(tmp_path / "a.srt"))
            text = " ".join(s.text for s in subs).lower()
            assert "country" in text
            assert "fellow" not in text  # said before 2 s
            clip = client.get(links["clip"])
            assert clip.status_code == 200
            (tmp_path / "clip.mp4").write_bytes(clip.content)
            with av.open(str(tmp_path / "clip.mp4")) as container:
                assert container.duration / 1e6 == pytest.approx(7.0, abs=0.1)
            partial = client.get(links["clip"], headers={"Range": "bytes=0-99"})
            assert partial.status_code == 206
            assert partial.content == clip.content[:100]

        deadline = time.monotonic() + 30
        while not receiver.deliveries and time.monotonic() < deadline:
            time.sleep(0.2)
        assert [d["event"] for d in receiver.deliveries] == ["job.completed"]
        assert receiver.deliveries[0]["valid"]
        assert receiver.deliveries[0]["body"]["data"]["job"]["id"] == job_id
    finally:
        receiver.close()


def test_url_job_from_a_local_server(
    service: str,
    jfk_video: Path,  # noqa: F811
    tmp_path: Path,
) -> None:
    with RangeServer(jfk_video.parent) as media, httpx.Client(base_url=service,
                                                               timeout=60) as client:  # fmt: skip
        job = client.post("/api/jobs", json={
            "source": {"url": media.url("/" + jfk_video.name.replace(" ", "%20"))},
            "outputs": ["txt", "json"],
        })  # fmt: skip
        assert job.status_code == 202, job.text
        events = follow(client, job.json()["id"])
        assert events[-1] == ("end", {"status": "done"})
        result = client.get(f"/api/jobs/{job.json()['id']}/result").json()
        assert result["transcript"] is not None
        assert "fellow americans" in json.dumps(result["transcript"]).lower()
        assert media.count() >= 1


def test_bad_requests_get_clear_errors(service: str) -> None:
    with httpx.Client(base_url=service, timeout=30) as client:
        blocked = client.post("/api/jobs", json={"source": {"url": "http://10.1.2.3/a.mp4"}})
        assert blocked.status_code == 400
        assert blocked.json()["error"]["code"] == "blocked_url"
        missing = client.get("/api/jobs/00000000-0000-0000-0000-000000000000")
        assert missing.status_code == 404
        assert missing.json()["error"]["code"]
        bad = client.post("/api/jobs", json={"source": {"url": "https://x.test/a"}, "end": -1})
        assert bad.status_code == 422
        assert bad.json()["error"]["code"] == "validation_error"
