"""The web UI's direct-to-storage upload in a real browser (Debian's Chromium driven by
Playwright) against a real API server, on local storage and on S3 (a real SeaweedFS: the
page PUTs its parts cross-origin, which its Content-Security-Policy must allow).

The network drops once: the second part's first request is aborted by Playwright, and
the page must ask the server what arrived and send only what is missing.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.integration.api.conftest import (
    Live,
    StartApi,
    start_api,  # noqa: F401 - a fixture
)
from tests.integration.storage.conftest import Seaweed, seaweed  # noqa: F401 - a fixture

sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
MiB = 1024 * 1024


@pytest.fixture(params=["sqlite"])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not Path(CHROMIUM).exists():
        pytest.skip("Chromium is not installed (apt-get install chromium; .ci/run does it)")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, args=["--no-sandbox", "--disable-dev-shm-usage"]
        )
        yield browser
        browser.close()


@pytest.mark.parametrize("store_kind", ["local", "s3"])
def test_upload_in_parts_resumes_after_a_dropped_part(
    browser: Any,
    start_api: StartApi,  # noqa: F811 - the fixture
    store_kind: str,
    request: pytest.FixtureRequest,
    tmp_path: Path,
) -> None:
    overrides: dict[str, Any] = {"upload_part_bytes": 5 * MiB, "allow_anonymous": True}
    if store_kind == "s3":
        server: Seaweed = request.getfixturevalue("seaweed")
        overrides["storage_url"] = server.url(f"ui-{uuid.uuid4().hex}")
    live: Live = start_api(**overrides)
    data = os.urandom(11 * MiB + 77)  # three parts
    source = tmp_path / "lecture.mp4"
    source.write_bytes(data)

    context = browser.new_context(base_url=live.base_url)
    page = context.new_page()
    problems: list[str] = []
    page.on("pageerror", lambda exc: problems.append(f"page error: {exc}"))
    page.on("console", lambda m: m.type == "error" and not m.text.startswith(
        "Failed to load resource") and problems.append(f"console: {m.text}"))  # fmt: skip
    puts: list[int] = []  # part numbers, in the order the page sent them
    listings: list[str] = []
    dropped: list[int] = []

    def part_number(url: str) -> int:
        query = httpx.URL(url).params
        return int(query.get("partNumber") or query.get("part") or 0)

    def on_part(route: Any) -> None:
        if route.request.method != "PUT":
            route.continue_()
            return
        number = part_number(route.request.url)
        puts.append(number)
        if number == 2 and not dropped:  # the network drops, once
            dropped.append(number)
            route.abort("connectionreset")
            return
        route.continue_()

    # S3's part URLs, or the API's own (local storage).
    page.route(lambda url: "partNumber=" in url or "/blobs/" in url, on_part)
    page.on(
        "request",
        lambda r: r.url.endswith("/parts") and r.method == "GET" and listings.append(r.url),
    )
    page.goto("/")
    policy = httpx.get(live.base_url).headers["content-security-policy"]
    origin = live.runtime.storage.direct_upload_origin()
    assert (origin is not None) == (store_kind == "s3")
    if origin is not None:  # the page may reach the bucket's endpoint, and only it
        assert f"connect-src 'self' {origin};" in f"{policy};"
    else:
        assert "connect-src" not in policy  # default-src 'self' covers the API

    page.set_input_files("#file", str(source))
    page.click("#submit")
    # Either the job's panel opens or the form says why not.
    page.wait_for_selector("#detail:not([hidden]), #form-error:not([hidden])", timeout=60_000)
    assert page.locator("#form-error").is_hidden(), (page.inner_text("#form-error"), puts)
    context.close()
    assert not problems, problems  # no script errors, no CSP violations

    assert dropped == [2]
    assert puts == [1, 2, 2, 3]  # in order; only the dropped part again
    assert len(listings) == 1  # it asked the server what had arrived

    with live.client() as client:
        jobs = client.get("/api/jobs").json()["items"]
        assert len(jobs) == 1
        upload_id = jobs[0]["spec"]["source"]["upload_id"]
        upload = client.get(f"/api/uploads/{upload_id}").json()
    assert upload["state"] == "complete"
    assert upload["filename"] == "lecture.mp4"
    assert (upload["size"], upload["sha256"]) == (len(data), hashlib.sha256(data).hexdigest())
    stored = b"".join(
        live.run(_read(live, f"uploads/{upload_id}/source.mp4"))  # the bytes themselves
    )
    assert stored == data


async def _read(live: Live, key: str) -> list[bytes]:
    return [chunk async for chunk in live.runtime.storage.get_stream(key)]
