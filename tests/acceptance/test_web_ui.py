"""The web UI in a real browser (Debian's Chromium driven by Playwright) against a real
`reelscribe serve`: upload a recording, watch the job finish, download the subtitles;
a refused URL shows the API's error; the page's security headers.

Chromium comes from Debian (`apt-get install chromium`, which .ci/run does); without it
these tests report themselves skipped with that reason.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.acceptance.test_service import service  # noqa: F401 - a fixture
from tests.services import REQUIRE_SERVICES, missing_service

try:
    from playwright import sync_api
except ImportError:  # pragma: no cover - CI installs it (the dev extra)
    if REQUIRE_SERVICES:
        raise
    pytest.skip("playwright is not installed", allow_module_level=True)

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not Path(CHROMIUM).exists():
        missing_service("Chromium is not installed (apt-get install chromium; .ci/run does it)")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, args=["--no-sandbox", "--disable-dev-shm-usage"]
        )
        yield browser
        browser.close()


@pytest.fixture
def page(browser: Any, service: str) -> Iterator[Any]:  # noqa: F811 - the fixture
    context = browser.new_context(base_url=service)
    page = context.new_page()
    problems: list[str] = []
    refused: list[tuple[int, str]] = []  # the API's 4xx answers, checked by the tests
    page.on("pageerror", lambda exc: problems.append(f"page error: {exc}"))
    page.on("console", lambda m: m.type == "error" and not m.text.startswith(
        "Failed to load resource") and problems.append(f"console: {m.text}"))  # fmt: skip
    page.on("response", lambda r: r.status >= 400 and refused.append((r.status, r.url)))
    page.refused = refused
    page.goto("/")
    yield page
    context.close()
    assert not problems, problems  # no script errors, no CSP violations


def test_upload_watch_and_download(page: Any, shared_media: Path, service: str) -> None:  # noqa: F811
    expect = sync_api.expect
    page.set_input_files("#file", str(shared_media / "jfk.flac"))
    page.check("#outputs input[value=txt]")
    page.fill("#end", "00:00:08")
    page.click("#submit")

    # The job appears, is selected, and its live status reaches "done".
    expect(page.locator("#detail")).to_be_visible()
    expect(page.locator("#detail-status")).to_have_text("done", timeout=180_000)
    selected = page.locator("#jobs tbody tr.selected td")
    expect(selected.nth(0)).to_have_text("jfk.flac")  # the name this browser uploaded
    expect(selected.nth(1)).to_have_text("done")
    expect(page.locator("#transcript")).to_contain_text("fellow Americans")

    links = page.locator("#downloads a")
    expect(links).to_have_count(4)  # srt, json, txt and the clip the workspace plays
    srt_url = page.locator("#downloads a[data-output=srt]").get_attribute("href")
    response = httpx.get(srt_url)  # a signed link: no key needed, as a user would click it
    assert response.status_code == 200
    assert response.text.startswith("1\n00:00:00,")
    assert "Americans" in response.text
    txt_url = page.locator("#downloads a[data-output=txt]").get_attribute("href")
    assert "ask not" in httpx.get(txt_url).text
    assert page.refused == []


def test_a_refused_url_shows_the_api_error(page: Any, service: str) -> None:  # noqa: F811
    before = len(httpx.get(f"{service}/api/jobs").json()["items"])
    page.fill("#url", "http://169.254.169.254/latest/meta-data/")
    page.click("#submit")
    error = page.locator("#form-error")
    sync_api.expect(error).to_be_visible()
    sync_api.expect(error).to_contain_text("blocked_url")
    assert page.refused == [(400, f"{service}/api/jobs")]
    assert len(httpx.get(f"{service}/api/jobs").json()["items"]) == before  # nothing created


def test_form_checks_before_sending(page: Any) -> None:
    page.click("#submit")
    sync_api.expect(page.locator("#form-error")).to_have_text("choose a file or enter a URL")
    page.fill("#url", "https://example.com/talk.mp4")
    page.fill("#start", "ten")
    page.click("#submit")
    sync_api.expect(page.locator("#form-error")).to_contain_text("is not a time")


def test_page_headers_and_assets(service: str) -> None:  # noqa: F811
    page = httpx.get(f"{service}/")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    policy = page.headers["content-security-policy"]
    assert "default-src 'self'" in policy
    assert "frame-ancestors 'none'" in policy
    assert httpx.get(f"{service}/ui/app.js").headers["content-type"].startswith("text/javascript")
    for probe in ("/ui/../config.py", "/ui/index.html.bak", "/ui/%2e%2e%2fpyproject.toml"):
        assert httpx.get(f"{service}{probe}").status_code == 404
    # The UI is not part of the API's contract.
    assert "/" not in httpx.get(f"{service}/openapi.json").json()["paths"]


def test_transcript_shows_speaker_turns(page: Any, shared_media: Path) -> None:
    expect = sync_api.expect
    page.set_input_files("#file", str(shared_media / "stereo_diarization.wav"))
    page.select_option("#speakers", "split")
    page.click("#submit")
    expect(page.locator("#detail-status")).to_have_text("done", timeout=180_000)
    turns = page.locator("#transcript .turn")
    expect(turns).to_have_count(2)
    names = sorted(turns.nth(i).locator("strong").inner_text() for i in range(2))
    assert names == ["Channel 1", "Channel 2"]
    expect(page.locator("#transcript")).to_contain_text("The horizon seems extremely distant.")
