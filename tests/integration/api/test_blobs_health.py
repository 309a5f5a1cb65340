"""Signed download links (Range, expiry, tampering), health, readiness and metrics."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from urllib.parse import parse_qsl, urlencode, urlsplit

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from reelscribe.backends.db import EventKind
from reelscribe.backends.storage import LocalStorage
from tests.integration.api.conftest import MEDIA_URL, Live

DATA = bytes(range(256)) * 40  # 10,240 bytes


async def _one(data: bytes) -> AsyncIterator[bytes]:
    yield data


def _link(live: Live, key: str = "results/x/clip.srt", filename: str = "clip.srt") -> str:
    live.run(live.runtime.storage.put_stream(key, _one(DATA), "application/x-subrip"))
    url: str = live.run(live.runtime.storage.signed_url(key, 60, filename=filename))
    return url


def _with(url: str, **changes: str) -> str:
    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query)) | changes
    return parts._replace(query=urlencode(query)).geturl()


def test_signed_links_serve_whole_files_and_ranges(live: Live) -> None:
    url = _link(live)
    assert url.startswith(f"{live.base_url}/blobs/results/x/clip.srt?")
    whole = httpx.get(url)  # no API key: the signature is the permission
    assert whole.status_code == 200
    assert whole.content == DATA
    assert whole.headers["content-type"] == "application/x-subrip"
    assert whole.headers["accept-ranges"] == "bytes"
    assert whole.headers["content-disposition"] == 'attachment; filename="clip.srt"'

    part = httpx.get(url, headers={"Range": "bytes=100-355"})
    assert part.status_code == 206
    assert part.content == DATA[100:356]
    assert part.headers["content-range"] == f"bytes 100-355/{len(DATA)}"
    tail = httpx.get(url, headers={"Range": "bytes=-10"})
    assert (tail.status_code, tail.content) == (206, DATA[-10:])
    past = httpx.get(url, headers={"Range": "bytes=999999-"})
    assert past.status_code == 416
    assert past.headers["content-range"] == f"bytes */{len(DATA)}"


def test_tampered_and_expired_links_are_403(live: Live) -> None:
    url = _link(live)
    sig = dict(parse_qsl(urlsplit(url).query))["sig"]
    forged = [
        _with(url, sig=sig[:-2] + ("AA" if not sig.endswith("AA") else "BB")),
        _with(url, filename="evil.html"),
        _with(url, expires=str(int(time.time()) + 10**6)),
        url.replace("/clip.srt?", "/other.srt?"),
    ]
    for bad in forged:
        response = httpx.get(bad)
        assert response.status_code == 403, bad
        assert response.json()["error"]["code"] == "link_invalid"

    storage = live.runtime.storage
    assert isinstance(storage, LocalStorage)
    assert storage.signer is not None
    expired = storage.signer.url(
        f"{live.base_url}/blobs", "results/x/clip.srt", int(time.time()) - 1, "clip.srt"
    )
    response = httpx.get(expired)
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "link_expired"
    assert httpx.get(url.split("?")[0]).status_code == 422  # no signature at all


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"], indirect=True)
def test_health_readiness_and_metrics(live: Live, admin: httpx.Client) -> None:
    assert httpx.get(f"{live.base_url}/healthz").json() == {"status": "ok"}
    ready = httpx.get(f"{live.base_url}/readyz")
    assert ready.status_code == 200
    body = ready.json()
    assert body["status"] == "ready"
    assert {name: check["ok"] for name, check in body["checks"].items()} == {
        "database": True,
        "queue": True,
        "storage": True,
        "workers": True,  # no worker, but no job has waited long either
    }

    ids = [admin.post("/api/jobs", json={"source": {"url": MEDIA_URL}}).json()["id"] for _ in "abc"]
    claim = live.claim()
    live.add_events(
        claim.job_id,
        (EventKind.STEP_FINISH, {"step": "fetch", "duration": 1.0}),
        (EventKind.STEP_FINISH, {"step": "fetch", "duration": 3.0}),
        (EventKind.STEP_FINISH, {"step": "transcribe", "duration": 10.0}),
    )
    admin.post(f"/api/jobs/{ids[2]}/cancel")

    response = admin.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(response.text)
        for s in family.samples
    }
    assert samples[("reelscribe_queue_depth", ())] == 1
    assert samples[("reelscribe_jobs", (("status", "processing"),))] == 1
    assert samples[("reelscribe_jobs", (("status", "cancelled"),))] == 1
    assert samples[("reelscribe_jobs", (("status", "done"),))] == 0
    assert samples[("reelscribe_step_duration_seconds_count", (("step", "fetch"),))] == 2
    assert samples[("reelscribe_step_duration_seconds_sum", (("step", "fetch"),))] == 4.0
    assert (
        samples[("reelscribe_step_duration_seconds", (("quantile", "0.5"), ("step", "fetch")))]
        == 2.0
    )
    assert samples[("reelscribe_step_duration_seconds_sum", (("step", "transcribe"),))] == 10.0
    assert samples[("reelscribe_claim_latency_seconds_count", ())] == 1
    assert 0 <= samples[("reelscribe_claim_latency_seconds_sum", ())] < 30
    with live.client(None) as anonymous:
        assert anonymous.get("/metrics").status_code == 401
