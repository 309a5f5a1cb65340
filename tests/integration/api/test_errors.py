"""Bad input gets one error shape and a 4xx, never a 500, and creates nothing."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.integration.api.conftest import MEDIA_URL, Live


def error_of(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"code", "message", "details"}
    assert body["error"]["message"]
    error: dict[str, Any] = body["error"]
    return error


def test_malformed_json(admin: httpx.Client) -> None:
    response = admin.post(
        "/api/jobs", content=b'{"source": {"url": ', headers={"Content-Type": "application/json"}
    )
    assert error_of(response, 400)["code"] == "invalid_json"


@pytest.mark.parametrize(
    ("body", "where"),
    [
        ({"source": {"url": MEDIA_URL}, "start": 30, "end": 10}, "end"),
        ({"source": {"url": MEDIA_URL}, "start": "1:xx"}, "start"),
        ({"source": {"url": MEDIA_URL}, "outputs": ["srt", "pdf"]}, "outputs"),
        ({"source": {"url": MEDIA_URL, "upload_id": "u"}}, "exactly one"),
        ({"source": {"url": "ftp://media.example/a.mp4"}}, "http"),
        ({"source": {"url": MEDIA_URL}, "surprise": True}, "surprise"),
    ],
)
def test_invalid_specs_are_422_with_details(
    admin: httpx.Client, body: dict[str, Any], where: str
) -> None:
    error = error_of(admin.post("/api/jobs", json=body), 422)
    assert error["code"] == "validation_error"
    assert where in str(error["details"])
    assert admin.get("/api/jobs").json()["items"] == []


@pytest.mark.parametrize(
    "body",
    [
        {"source": {"url": "http://127.0.0.1:8080/admin"}},
        {"source": {"url": "http://169.254.169.254/latest/meta-data/"}},
        {"source": {"url": "http://[::1]/a.mp4"}},
        {"source": {"url": "http://10.1.2.3/a.mp4"}},
        {"source": {"url": MEDIA_URL}, "webhook_url": "http://127.0.0.1:9/hook"},
        {"source": {"url": "http://metadata.google.internal/computeMetadata/v1/"}},
    ],
)
def test_blocked_urls_are_refused_at_submit(admin: httpx.Client, body: dict[str, Any]) -> None:
    error = error_of(admin.post("/api/jobs", json=body), 400)
    assert error["code"] == "blocked_url"
    assert admin.get("/api/jobs").json()["items"] == []


def test_limits_and_missing_things(live: Live, admin: httpx.Client) -> None:
    too_long = {"source": {"url": MEDIA_URL}, "start": 0, "end": 4 * 3600}
    assert error_of(admin.post("/api/jobs", json=too_long), 400)["code"] == "range_too_long"

    missing = admin.post("/api/jobs", json={"source": {"upload_id": "no-such-upload"}})
    assert error_of(missing, 404)["code"] == "upload_not_found"

    partial = admin.post("/api/uploads/resumable", json={"size": 10, "filename": "a.mp4"}).json()
    unfinished = admin.post("/api/jobs", json={"source": {"upload_id": partial["id"]}})
    assert error_of(unfinished, 400)["code"] == "upload_incomplete"

    assert error_of(admin.get("/api/jobs/nope"), 404)["code"] == "job_not_found"
    assert error_of(admin.get("/api/jobs", params={"cursor": "%%%"}), 422)["code"] == (
        "validation_error"
    )
    assert error_of(admin.get("/api/jobs", params={"limit": 0}), 422)["code"] == "validation_error"
    assert error_of(admin.get("/api/nothing-here"), 404)["code"] == "not_found"
    not_allowed = admin.put("/api/jobs")
    assert error_of(not_allowed, 405)["code"] == "method_not_allowed"
    assert "POST" in not_allowed.headers["allow"]
    assert admin.get("/api/jobs").json()["items"] == []
