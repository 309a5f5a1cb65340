"""The analysis in the web UI (real Chromium against a real `reelscribe serve`): a job
asking for a summary, keywords, chapters and moderation shows them on its page, the
chapters jump the player, and the moderation badge tells the verdict."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.acceptance.test_cli_analysis import topics_video  # noqa: F401 - a fixture
from tests.acceptance.test_service import service  # noqa: F401 - a fixture
from tests.acceptance.test_web_ui import browser, page  # noqa: F401 - fixtures

sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")


def test_summary_keywords_clickable_chapters_and_badge(
    page: Any,  # noqa: F811 - the fixture
    topics_video: tuple[Path, list[float]],  # noqa: F811 - the fixture
) -> None:
    expect = sync_api.expect
    video, joins = topics_video
    page.set_input_files("#file", str(video))
    page.uncheck("#outputs input[value=srt]")
    page.check("#outputs input[value=clip]")
    page.check("#opt-summary")
    page.fill("#summary-sentences", "2")
    page.check("#opt-keywords")
    page.check("#opt-chapters")
    page.select_option("#moderate", "flag")
    page.click("#submit")
    expect(page.locator("#detail-status")).to_have_text("done", timeout=240_000)

    expect(page.locator("#summary li")).to_have_count(2)
    expect(page.locator("#keywords")).to_contain_text("Keywords: ")
    chapters = page.locator("#chapters li")
    expect(chapters).to_have_count(3)
    expect(chapters.nth(0).locator("button")).to_have_text("00:00")
    badge = page.locator("#moderation-badge")
    expect(badge).to_have_text("moderation: safe")
    expect(badge).to_have_class("badge safe")

    # A chapter's time jumps the clip there.
    third = chapters.nth(2).locator("button")
    start = float(third.get_attribute("data-time"))
    assert abs(start - joins[1]) <= 3.0
    page.locator("#player").evaluate("p => new Promise(r => p.readyState >= 1 ? r() : "
                                     "p.addEventListener('loadedmetadata', r))")  # fmt: skip
    third.click()
    position = page.locator("#player").evaluate("p => p.currentTime")
    assert abs(position - start) < 1.0
    assert page.refused == []
