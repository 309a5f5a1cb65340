"""Direct-to-storage (presigned) uploads through the real API, on local storage (part
URLs served by the API itself) and on S3 (a real SeaweedFS, which checks its own
presigned signatures): parts, a dropped connection and a resume, completion checks,
refused URLs, and the abandoned-upload sweep."""

from __future__ import annotations

import hashlib
import os
import time
import uuid
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import httpx
import pytest

from reelscribe.errors import BlobNotFoundError
from tests.integration.api.conftest import Live, StartApi
from tests.integration.storage.conftest import Seaweed, seaweed  # noqa: F401 - a fixture

MiB = 1024 * 1024
PART = 5 * MiB  # the smallest part S3 allows: a ~11 MiB file is three parts


@pytest.fixture(params=["local", "s3"])
def store_kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def start(start_api: StartApi, store_kind: str, request: pytest.FixtureRequest) -> StartApi:
    """Starts an API on the store kind under test, with 5 MiB parts."""

    def starter(**overrides: Any) -> Live:
        values: dict[str, Any] = {"upload_part_bytes": PART}
        if store_kind == "s3":
            server: Seaweed = request.getfixturevalue("seaweed")
            values["storage_url"] = server.url(f"api-{uuid.uuid4().hex}")
        return start_api(**(values | overrides))

    return starter


@pytest.fixture
def live(start: StartApi) -> Live:
    return start()


@pytest.fixture
def admin(live: Live) -> Iterator[httpx.Client]:
    with live.client() as client:
        yield client


def begin(client: httpx.Client, data: bytes, **fields: Any) -> dict[str, Any]:
    body = {
        "size": len(data),
        "sha256": hashlib.sha256(data).hexdigest(),
        "filename": "talk.mp4",
        "content_type": "video/mp4",
        **fields,
    }
    response = client.post("/api/uploads/presigned", json=body)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


def send(part: dict[str, Any], data: bytes) -> httpx.Response:
    """A part goes to its URL as a browser would send it: no API key."""
    return httpx.put(part["url"], content=data[part["start"] : part["end"] + 1], timeout=30)


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"], indirect=True)
def test_multipart_upload_with_a_resume(live: Live, admin: httpx.Client) -> None:
    data = os.urandom(11 * MiB + 999)
    created = begin(admin, data)
    upload = created["upload"]
    assert (upload["state"], upload["size"], upload["offset"]) == ("presigned", len(data), 0)
    assert upload["sha256"] is None  # not until the bytes are checked
    assert created["part_size"] == PART
    parts = created["parts"]
    assert [(p["number"], p["start"], p["size"]) for p in parts] == [
        (1, 0, PART),
        (2, PART, PART),
        (3, 2 * PART, len(data) - 2 * PART),
    ]
    assert all(p["url"] and not p["received"] for p in parts)
    origin = live.runtime.storage.direct_upload_origin() or live.base_url  # S3, or the API
    assert all(p["url"].startswith(f"{origin}/") for p in parts)

    # Part 1 arrives; part 2's connection drops halfway (the generator fails mid-body).
    assert send(parts[0], data).status_code == 200

    def dropping() -> Iterator[bytes]:
        yield data[PART : PART + MiB]
        raise ConnectionResetError("the network went away")

    with pytest.raises((ConnectionResetError, httpx.HTTPError)):
        httpx.put(
            parts[1]["url"],
            content=dropping(),
            headers={"Content-Length": str(PART)},
            timeout=30,
        )

    # Completing now is refused with what is missing.
    early = admin.post(created["complete_url"])
    assert early.status_code == 409, early.text
    assert early.json()["error"]["code"] == "upload_parts_missing"
    assert early.json()["error"]["details"] == {"missing": [2, 3]}

    # Resume: ask what arrived, send only the rest, with the fresh URLs.
    listed = admin.get(created["parts_url"])
    assert listed.status_code == 200, listed.text
    state = listed.json()["parts"]
    assert [(p["number"], p["received"], p["url"] is None) for p in state] == [
        (1, True, True),
        (2, False, False),
        (3, False, False),
    ]
    for part in state[1:]:
        assert send(part, data).status_code == 200

    done = admin.post(created["complete_url"])
    assert done.status_code == 200, done.text
    upload = done.json()
    assert (upload["state"], upload["size"], upload["offset"]) == ("complete", len(data), len(data))
    assert upload["sha256"] == hashlib.sha256(data).hexdigest()
    assert admin.get(f"/api/uploads/{upload['id']}").json()["state"] == "complete"
    key = f"uploads/{upload['id']}/source.mp4"
    info = live.run(live.runtime.storage.stat(key))
    assert (info.size, info.content_type) == (len(data), "video/mp4")

    # An ordinary complete upload: a job takes it as its source.
    job = admin.post("/api/jobs", json={"source": {"upload_id": upload["id"]}})
    assert job.status_code == 202, job.text
    # Completing again, or listing a complete upload's parts, is a conflict.
    assert admin.post(created["complete_url"]).status_code == 409
    assert admin.get(created["parts_url"]).json()["error"]["code"] == "upload_complete"


def test_a_small_file_is_one_part(live: Live, admin: httpx.Client) -> None:
    data = b"RIFF tiny wav"
    created = begin(admin, data, filename="a.wav", content_type="audio/wav")
    (part,) = created["parts"]
    assert (part["number"], part["start"], part["end"], part["size"]) == (1, 0, len(data) - 1, 13)
    assert send(part, data).status_code == 200
    early = admin.post("/api/jobs", json={"source": {"upload_id": created["upload"]["id"]}})
    assert early.json()["error"]["code"] == "upload_incomplete"  # not before completion
    done = admin.post(created["complete_url"])
    assert done.status_code == 200, done.text
    assert done.json()["sha256"] == hashlib.sha256(data).hexdigest()


def test_a_wrong_checksum_is_refused_and_nothing_is_kept(live: Live, admin: httpx.Client) -> None:
    data = os.urandom(6 * MiB)
    created = begin(admin, data, sha256=hashlib.sha256(b"other bytes").hexdigest())
    for part in created["parts"]:
        assert send(part, data).status_code == 200
    refused = admin.post(created["complete_url"])
    assert refused.status_code == 400, refused.text
    assert refused.json()["error"]["code"] == "upload_checksum_mismatch"
    upload_id = created["upload"]["id"]
    assert admin.get(f"/api/uploads/{upload_id}").status_code == 404
    assert not live.run(live.runtime.storage.exists(f"uploads/{upload_id}/source.mp4"))
    job = admin.post("/api/jobs", json={"source": {"upload_id": upload_id}})
    assert job.status_code == 404


def test_tampered_and_oversized_parts_are_refused(live: Live, admin: httpx.Client) -> None:
    data = os.urandom(1000)
    created = begin(admin, data)
    (part,) = created["parts"]
    url = urlsplit(part["url"])
    query = dict(parse_qsl(url.query))
    s3 = "partNumber" in query
    for field, value in (("partNumber", "2"), ("uploadId", "x")) if s3 else (
        ("part", "2"), ("size", "5000"), ("upload_id", "0" * 32), ("expires", "9999999999")
    ):  # fmt: skip
        tampered = urlunsplit(url._replace(query=urlencode({**query, field: value})))
        response = httpx.put(tampered, content=data)
        assert response.status_code == 403, (field, response.text)
    if not s3:  # another key under the same signature
        other = urlunsplit(url._replace(path=url.path.replace("source.mp4", "other.mp4")))
        assert httpx.put(other, content=data).status_code == 403
        assert httpx.put(part["url"], content=data + b"!").json()["error"]["code"] == (
            "upload_too_large"
        )
    else:
        assert httpx.put(part["url"], content=data + b"!").status_code == 403
    incomplete = admin.post(created["complete_url"])
    assert incomplete.status_code == 409  # nothing was kept
    assert send(part, data).status_code == 200
    assert admin.post(created["complete_url"]).status_code == 200


def test_expired_part_urls_are_refused_and_listing_renews_them(start: StartApi) -> None:
    # 3 s: expiries count whole seconds, so a fresh URL still has 2 s or more to live.
    live = start(upload_url_ttl_seconds=3)
    with live.client() as admin:
        data = os.urandom(2000)
        created = begin(admin, data)
        time.sleep(3.2)
        expired = send(created["parts"][0], data)
        assert expired.status_code == 403
        fresh = admin.get(created["parts_url"]).json()["parts"][0]
        assert fresh["url"] != created["parts"][0]["url"]
        assert send(fresh, data).status_code == 200
        assert admin.post(created["complete_url"]).status_code == 200


def test_limits_scope_and_owner(start: StartApi) -> None:
    live = start(max_upload_bytes=10 * MiB)
    with live.client() as admin:
        body = {"size": 10 * MiB + 1, "sha256": "0" * 64, "filename": "big.mp4"}
        too_big = admin.post("/api/uploads/presigned", json=body)
        assert too_big.status_code == 413
        assert too_big.json()["error"]["code"] == "upload_too_large"
        bad = admin.post("/api/uploads/presigned", json={"size": 10, "sha256": "abc"})
        assert bad.status_code == 422

        reader = admin.post("/api/keys", json={"name": "r", "scopes": ["read"]}).json()["secret"]
        other = admin.post("/api/keys", json={"name": "o", "scopes": ["read", "submit"]})
        created = begin(admin, b"0123456789")
        with live.client(reader) as client:
            refused = client.post("/api/uploads/presigned", json={"size": 10, "sha256": "0" * 64})
            assert refused.status_code == 403
            assert client.get(created["parts_url"]).status_code == 403
        with live.client(other.json()["secret"]) as client:
            assert client.get(created["parts_url"]).status_code == 404  # not theirs
            assert client.post(created["complete_url"]).status_code == 404


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"], indirect=True)
def test_abandoned_and_deleted_uploads_lose_their_parts(live: Live, admin: httpx.Client) -> None:
    data = b"abandoned bytes"
    services = live.app.state.services
    storage = live.runtime.storage
    created = [begin(admin, data) for _ in range(2)]
    for upload in created:
        assert send(upload["parts"][0], data).status_code == 200
    keys = []
    for upload in created:
        row = live.run(services.uploads.get(upload["upload"]["id"], _admin_key(live)))
        keys.append((row.storage_key, row.multipart_id))

    # DELETE aborts the first; the sweep takes the second.
    assert admin.delete(f"/api/uploads/{created[0]['upload']['id']}").status_code == 204
    assert live.run(services.direct_uploads.sweep_abandoned(max_age=3600)) == 0  # too new
    assert live.run(services.direct_uploads.sweep_abandoned(max_age=0)) == 1
    for upload, (key, multipart) in zip(created, keys, strict=True):
        assert admin.get(f"/api/uploads/{upload['upload']['id']}").status_code == 404
        with pytest.raises(BlobNotFoundError):
            live.run(storage.list_parts(key, multipart))
    assert httpx.put(created[1]["parts"][0]["url"], content=data).status_code >= 400


def _admin_key(live: Live) -> Any:
    from tests.integration.api.conftest import ADMIN_SECRET

    return live.run(live.app.state.services.keys.authenticate(ADMIN_SECRET))


def test_a_completion_cut_short_is_finished_later(live: Live, admin: httpx.Client) -> None:
    """The parts were joined but the upload never recorded (the API died while hashing):
    listing says nothing is missing, and completing checks and records the object."""
    data = os.urandom(3000)
    created = begin(admin, data)
    assert send(created["parts"][0], data).status_code == 200
    row = live.run(live.app.state.services.uploads.get(created["upload"]["id"], _admin_key(live)))
    storage = live.runtime.storage
    parts = live.run(storage.list_parts(row.storage_key, row.multipart_id))
    live.run(storage.complete_multipart(row.storage_key, row.multipart_id, parts))

    listed = admin.get(created["parts_url"]).json()["parts"]
    assert [(p["received"], p["url"]) for p in listed] == [(True, None)]
    done = admin.post(created["complete_url"])
    assert done.status_code == 200, done.text
    assert done.json()["sha256"] == hashlib.sha256(data).hexdigest()


def test_an_upload_whose_parts_are_gone_is_gone(live: Live, admin: httpx.Client) -> None:
    created = begin(admin, b"some bytes")
    row = live.run(live.app.state.services.uploads.get(created["upload"]["id"], _admin_key(live)))
    live.run(live.runtime.storage.abort_multipart(row.storage_key, row.multipart_id))
    gone = admin.get(created["parts_url"])
    assert gone.status_code == 410, gone.text
    assert gone.json()["error"]["code"] == "gone"
    assert admin.get(f"/api/uploads/{created['upload']['id']}").status_code == 404
