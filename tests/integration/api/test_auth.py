"""API keys: 401 without one, 403 without the scope, 429 past the rate or the quota;
secrets are shown once and stored only as SHA-256; keyless access only when allowed."""

from __future__ import annotations

import hashlib
import json
import logging
import time

import httpx
import pytest
from sqlalchemy import select

from reelscribe.backends.db.schema import ApiKeyRow
from tests.integration.api.conftest import ADMIN_SECRET, MEDIA_URL, Live, StartApi

JOB = {"source": {"url": MEDIA_URL}}


def new_key(admin: httpx.Client, *scopes: str, **limits: float) -> str:
    response = admin.post("/api/keys", json={"name": "k", "scopes": list(scopes), **limits})
    assert response.status_code == 201, response.text
    secret: str = response.json()["secret"]
    return secret


def test_no_key_bad_key_and_scopes(live: Live, admin: httpx.Client) -> None:
    with live.client(None) as anonymous:
        refused = anonymous.get("/api/jobs")
    assert refused.status_code == 401
    assert refused.json()["error"]["code"] == "unauthorized"
    assert refused.headers["www-authenticate"] == "Bearer"
    with live.client("rsk_not-a-key") as wrong:
        assert wrong.get("/api/jobs").status_code == 401

    reader = new_key(admin, "read")
    with live.client(reader) as client:
        assert client.get("/api/jobs").status_code == 200
        forbidden = client.post("/api/jobs", json=JOB)
        assert forbidden.status_code == 403
        assert forbidden.json()["error"]["code"] == "forbidden"
        assert client.get("/api/keys").status_code == 403
        assert client.get("/metrics").status_code == 403

    submitter = new_key(admin, "submit")
    headers = {"X-API-Key": submitter}  # the other way to send a key
    with httpx.Client(base_url=live.base_url, headers=headers) as client:
        assert client.post("/api/jobs", json=JOB).status_code == 202
        assert client.get("/api/jobs").status_code == 403


def test_keys_are_stored_hashed_listed_without_secrets_and_revocable(
    live: Live, admin: httpx.Client
) -> None:
    created = admin.post("/api/keys", json={"name": "ci", "scopes": ["read", "submit"]}).json()
    secret = created["secret"]
    assert secret.startswith("rsk_")

    async def rows() -> list[tuple[str, str]]:
        async with live.runtime.engine.connect() as conn:
            result = await conn.execute(select(ApiKeyRow.id, ApiKeyRow.key_hash))
            return [(row.id, row.key_hash) for row in result]

    stored = dict(live.run(rows()))
    assert stored[created["id"]] == hashlib.sha256(secret.encode()).hexdigest()
    listed = admin.get("/api/keys").json()
    assert {k["name"] for k in listed} == {"admin", "ci"}
    assert secret not in json.dumps(listed)

    with live.client(secret) as client:
        job = client.post("/api/jobs", json=JOB).json()
        assert client.get(f"/api/jobs/{job['id']}").status_code == 200
    other = new_key(admin, "read", "submit")
    with live.client(other) as client:  # another key's job does not exist for it
        assert client.get(f"/api/jobs/{job['id']}").status_code == 404
        assert client.get("/api/jobs").json()["items"] == []
    assert admin.get(f"/api/jobs/{job['id']}").status_code == 200  # admins see all

    revoked = admin.delete(f"/api/keys/{created['id']}")
    assert revoked.status_code == 200
    assert revoked.json()["revoked_at"] is not None
    with live.client(secret) as client:
        assert client.get("/api/jobs").status_code == 401
    assert admin.delete("/api/keys/unknown").status_code == 404


def test_rate_limit_per_key(live: Live, admin: httpx.Client) -> None:
    limited = new_key(admin, "read", rate_limit_per_minute=3)
    with live.client(limited) as client:
        statuses = [client.get("/api/jobs").status_code for _ in range(4)]
        assert statuses == [200, 200, 200, 429]
        refused = client.get("/api/jobs")
        assert refused.json()["error"]["code"] == "rate_limited"
        assert 1 <= int(refused.headers["retry-after"]) <= 60
    assert admin.get("/api/jobs").status_code == 200  # other keys are not affected


def test_daily_audio_quota(live: Live, admin: httpx.Client) -> None:
    key = new_key(admin, "read", "submit", quota_audio_minutes_per_day=1)
    with live.client(key) as client:
        assert client.post("/api/jobs", json=JOB | {"start": 10, "end": 50}).status_code == 202
        over = client.post("/api/jobs", json=JOB | {"start": 0, "end": 30})
        assert over.status_code == 429
        assert over.json()["error"]["code"] == "quota_exceeded"
        assert 1 <= int(over.headers["retry-after"]) <= 86400
        # 40 s used: 20 more still fit.
        assert client.post("/api/jobs", json=JOB | {"end": 20}).status_code == 202
        assert len(client.get("/api/jobs").json()["items"]) == 2


def test_anonymous_access_only_when_allowed(start_api: StartApi) -> None:
    live = start_api(allow_anonymous=True, admin_api_key=None)
    with live.client(None) as client:
        assert client.post("/api/jobs", json=JOB).status_code == 202
        assert client.get("/api/keys").status_code == 200
        assert client.get("/metrics").status_code == 200


def test_access_log_is_json_without_secrets(
    live: Live, admin: httpx.Client, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="reelscribe.api.access")
    admin.get("/api/jobs", params={"limit": 5, "sig": "s3cr3t-sig", "token": "t0k"})
    # The server thread logs after the response has gone out: wait for the line.
    deadline = time.monotonic() + 5
    while True:
        lines = [json.loads(r.getMessage()) for r in caplog.records if r.name.endswith("access")]
        entry = next((line for line in lines if line["path"] == "/api/jobs"), None)
        if entry is not None or time.monotonic() > deadline:
            break
        time.sleep(0.02)
    assert entry is not None, "no access log line for /api/jobs"
    assert entry["status"] == 200
    assert entry["query"] == "limit=5&sig=REDACTED&token=REDACTED"
    assert entry["key_id"]
    assert ADMIN_SECRET not in caplog.text
    assert "s3cr3t-sig" not in caplog.text
