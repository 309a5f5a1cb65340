"""The transcript workspace in a real browser (Debian's Chromium driven by Playwright)
against a real `reelscribe serve`: one jfk.flac job, shared by the tests below (CI has
two cores), played, searched, corrected, its speaker renamed, a selection exported as a
clip, and the page checked by axe-core (vendored in tests/vendor/axe-core).

With REELSCRIBE_SCREENSHOTS=<folder> the tests also save the README's screenshots there
(`REELSCRIBE_SCREENSHOTS=docs pytest tests/acceptance/test_workspace.py`).
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pysrt
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
AXE = Path(__file__).parents[1] / "vendor" / "axe-core" / "axe.min.js"
SHOTS = os.environ.get("REELSCRIBE_SCREENSHOTS")
WIDE = {"width": 1280, "height": 900}


@dataclass
class Workspace:
    page: Any
    job_id: str
    result: dict[str, Any]  # GET /api/jobs/{id}/result when the job was done
    base: str

    @property
    def words(self) -> list[dict[str, Any]]:
        return [w for s in self.result["transcript"]["segments"] for w in s["words"]]

    def download(self, name: str) -> str:
        href = self.page.locator(f"#downloads a[data-output={name}]").get_attribute("href")
        response = httpx.get(href)  # a signed link: no key needed, as a user would click it
        assert response.status_code == 200
        return response.text


def _screenshot(page: Any, name: str, selector: str | None = None) -> None:
    if SHOTS:
        Path(SHOTS).mkdir(parents=True, exist_ok=True)
        path = str(Path(SHOTS) / name)
        if selector is None:
            page.screenshot(path=path, full_page=True)
        else:
            page.locator(selector).screenshot(path=path)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not Path(CHROMIUM).exists():
        missing_service("Chromium is not installed (apt-get install chromium; .ci/run does it)")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM,
            # Playback starts from a key press, which headless Chromium may not count as
            # a user gesture.
            args=["--no-sandbox", "--disable-dev-shm-usage",
                  "--autoplay-policy=no-user-gesture-required"],
        )  # fmt: skip
        yield browser
        browser.close()


def _watch(page: Any) -> list[str]:
    problems: list[str] = []
    page.on("pageerror", lambda exc: problems.append(f"page error: {exc}"))
    page.on("console", lambda m: m.type == "error" and not m.text.startswith(
        "Failed to load resource") and problems.append(f"console: {m.text}"))  # fmt: skip
    return problems


def _axe(page: Any) -> list[str]:
    """Serious and critical axe-core violations on the page, as readable lines."""
    page.evaluate(AXE.read_text(encoding="utf-8"))  # DevTools, not a <script>: the CSP stays
    found = page.evaluate(
        "async () => (await axe.run(document, {resultTypes: ['violations']})).violations"
        ".map(v => ({id: v.id, impact: v.impact, nodes: v.nodes.map(n => n.target.join(' '))}))"
    )
    return [f"{v['id']} ({v['impact']}): {v['nodes'][:3]}" for v in found
            if v["impact"] in ("serious", "critical")]  # fmt: skip


def test_the_empty_page_has_no_serious_accessibility_problems(browser: Any, service: str) -> None:  # noqa: F811
    context = browser.new_context(base_url=service, viewport=WIDE)
    page = context.new_page()
    problems = _watch(page)
    page.goto("/")
    sync_api.expect(page.locator("#jobs-empty")).to_be_visible()
    sync_api.expect(page.locator("#model option")).not_to_have_count(0)
    _screenshot(page, "ui-empty.png")
    assert _axe(page) == []
    # Phone width: one column, nothing wider than the screen.
    page.set_viewport_size({"width": 375, "height": 800})
    assert page.evaluate("document.documentElement.scrollWidth") <= 375
    assert _axe(page) == []
    context.close()
    assert not problems, problems


@pytest.fixture(scope="module")
def workspace(browser: Any, service: str, shared_media: Path) -> Iterator[Workspace]:  # noqa: F811
    context = browser.new_context(base_url=service, viewport=WIDE)
    page = context.new_page()
    problems = _watch(page)
    page.goto("/")
    page.set_input_files("#file", str(shared_media / "jfk.flac"))
    page.check("#outputs input[value=txt]")
    page.select_option("#speakers", "detect")
    page.fill("#num-speakers", "1")
    page.click("#submit")
    status = page.locator("#detail-status")
    sync_api.expect(status).to_have_text(re.compile("queued|processing|done"), timeout=60_000)
    if SHOTS:  # a moment of the running job, if the screenshot can catch one
        page.wait_for_function(
            """() => {
              const status = document.getElementById('detail-status').textContent;
              const progress = document.getElementById('detail-progress').value;
              return status === 'done' || (status === 'processing' && progress > 0);
            }""",
            timeout=300_000,
        )
        if status.text_content() == "processing":  # inner_text is upper-cased by CSS
            _screenshot(page, "ui-running.png")
    sync_api.expect(status).to_have_text("done", timeout=300_000)
    sync_api.expect(page.locator("#transcript .segment").first).to_be_visible()
    job_id = page.inner_text("#detail-id")
    result = httpx.get(f"{service}/api/jobs/{job_id}/result").json()
    assert result["transcript"]["segments"], result
    page.locator("#player").evaluate(
        "p => new Promise(r => p.readyState >= 1 ? r() : p.addEventListener('loadedmetadata', r))"
    )
    yield Workspace(page, job_id, result, service)
    context.close()
    assert not problems, problems  # no script errors, no CSP violations


def test_segments_show_with_their_times_beside_the_one_player(workspace: Workspace) -> None:
    page, doc = workspace.page, workspace.result["transcript"]
    assert page.locator("video, audio").count() == 1
    assert page.locator("#player").evaluate("p => p.tagName") == "AUDIO"  # an audio-only job
    segments = page.locator("#transcript .segment")
    sync_api.expect(segments).to_have_count(len(doc["segments"]))
    for i, seg in enumerate(doc["segments"]):
        row = segments.nth(i)
        assert float(row.get_attribute("data-start")) == pytest.approx(seg["start"])
        assert float(row.get_attribute("data-end")) == pytest.approx(seg["end"])
        secs = int(seg["start"])
        assert row.locator(".seg-time").inner_text() == f"{secs // 60:02d}:{secs % 60:02d}"
    words = page.locator("#transcript .word")
    assert words.count() == len(workspace.words)
    assert float(words.nth(1).get_attribute("data-start")) == pytest.approx(
        workspace.words[1]["start"]
    )
    sync_api.expect(page.locator("#transcript")).to_contain_text("fellow Americans")
    names = {o["name"] for o in workspace.result["outputs"]}
    assert names == {"srt", "json", "txt", "clip"}
    sync_api.expect(page.locator("#downloads a")).to_have_count(4)


def test_clicking_the_third_word_seeks_there(workspace: Workspace) -> None:
    page = workspace.page
    third = workspace.words[2]
    page.locator("#transcript .word").nth(2).click()
    position = page.locator("#player").evaluate("p => p.currentTime")
    assert abs(position - third["start"]) <= 0.3
    sync_api.expect(page.locator("#transcript .word.current")).to_have_text(third["text"].strip())
    # The form's range takes the player's position.
    page.click("#start-from-player")
    assert float(page.input_value("#start")) == pytest.approx(position, abs=0.01)
    page.fill("#start", "")


def test_the_highlight_follows_playback_and_keys_control_it(workspace: Workspace) -> None:
    page = workspace.page
    player = page.locator("#player")
    player.evaluate("p => { p.muted = true; p.currentTime = 0; }")
    # Keys typed into a field are text, not shortcuts.
    page.fill("#search", "")
    page.focus("#search")
    page.keyboard.type("k")
    assert page.input_value("#search") == "k"
    assert player.evaluate("p => p.paused")
    page.fill("#search", "")
    page.locator("#detail-heading").click()  # focus out of the field
    page.keyboard.press("k")
    page.wait_for_function("() => !document.getElementById('player').paused", timeout=10_000)
    seen = set()
    sample = """() => {
      const p = document.getElementById('player');
      const words = [...document.querySelectorAll('#transcript .word')];
      const at = words.findIndex(w => w.classList.contains('current'));
      const next = words[at + 1];
      return {t: p.currentTime, at, start: at < 0 ? null : Number(words[at].dataset.start),
              next: next ? Number(next.dataset.start) : Infinity};
    }"""
    for threshold in (1.5, 3.0, 4.5):
        page.wait_for_function(
            f"() => document.getElementById('player').currentTime > {threshold}", timeout=20_000
        )
        got = page.evaluate(sample)
        assert got["at"] >= 0, got
        # Highlighting runs every frame: allow a frame or two of lag either way.
        assert got["start"] <= got["t"] + 0.25, got
        assert got["t"] <= got["next"] + 0.25, got
        seen.add(got["at"])
    assert len(seen) == 3  # it moved on with the audio
    page.keyboard.press("k")
    page.wait_for_function("() => document.getElementById('player').paused")
    before = player.evaluate("p => p.currentTime")
    page.keyboard.press("j")
    after = player.evaluate("p => p.currentTime")
    assert after == pytest.approx(max(0.0, before - 5), abs=0.05)


def test_search_finds_a_word(workspace: Workspace) -> None:
    page = workspace.page
    expected = sum("country" in w["text"].lower() for w in workspace.words)
    assert expected >= 1
    page.fill("#search", "country")
    sync_api.expect(page.locator("#search-count")).to_have_text(f"1 of {expected}")
    hits = page.locator("#transcript .word.hit")
    sync_api.expect(hits).to_have_count(expected)
    sync_api.expect(page.locator("#transcript .word.hit-current")).to_contain_text("country")
    if expected > 1:
        page.click("#search-next")
        sync_api.expect(page.locator("#search-count")).to_have_text(f"2 of {expected}")
    page.fill("#search", "zebra")
    sync_api.expect(page.locator("#search-count")).to_have_text("no matches")
    page.fill("#search", "")


def test_rename_a_speaker_and_see_it_in_the_srt(workspace: Workspace) -> None:
    page = workspace.page
    speaker = page.locator("#transcript .speaker-name").first
    sync_api.expect(speaker).to_be_visible()
    speaker.click()
    box = page.locator("#transcript .speaker-input")
    box.fill("Jack Kennedy")
    box.press("Enter")
    sync_api.expect(page.locator("#edit-status")).to_contain_text("Renamed", timeout=30_000)
    sync_api.expect(page.locator("#transcript .speaker-name").first).to_have_text("Jack Kennedy")
    cues = pysrt.from_string(workspace.download("srt"))
    assert "[Jack Kennedy]" in cues[0].text


def test_edit_a_word_see_it_in_the_txt_then_undo(workspace: Workspace) -> None:
    page = workspace.page
    first = page.locator("#transcript .segment").first
    original = workspace.result["transcript"]["segments"][0]["text"].strip()
    words = original.split()
    corrected = " ".join([*words[:2], "REELSCRIBED", *words[3:]])
    first.locator(".seg-edit").click()
    box = first.locator("textarea")
    sync_api.expect(box).to_be_focused()
    box.fill(corrected)
    first.locator(".seg-save").click()
    sync_api.expect(page.locator("#edit-status")).to_contain_text("Saved", timeout=30_000)
    sync_api.expect(page.locator("#transcript .segment").first).to_contain_text("REELSCRIBED")
    assert "REELSCRIBED" in workspace.download("txt")
    # The corrected word is marked as a timing guess; its neighbours keep theirs.
    word = page.locator("#transcript .word", has_text="REELSCRIBED")
    sync_api.expect(word).to_have_class(re.compile("guessed"))

    page.click("#undo")
    sync_api.expect(page.locator("#edit-status")).to_have_text("Undone.", timeout=30_000)
    sync_api.expect(page.locator("#undo")).to_be_disabled()
    assert "REELSCRIBED" not in workspace.download("txt")
    assert "Jack Kennedy" in workspace.download("srt")  # the rename stayed
    if SHOTS:  # the workspace as the README shows it: renamed, searched
        page.fill("#search", "country")
        _screenshot(page, "ui-workspace.png", "#detail")
        page.fill("#search", "")


def test_the_workspace_has_no_serious_accessibility_problems(workspace: Workspace) -> None:
    page = workspace.page
    assert _axe(page) == []
    # At phone width: one column, nothing wider than the screen, still clean.
    page.set_viewport_size({"width": 375, "height": 800})
    try:
        assert page.evaluate("document.documentElement.scrollWidth") <= 375
        player, transcript = (
            page.locator("#player").bounding_box(),
            page.locator("#transcript").bounding_box(),
        )
        assert transcript["y"] > player["y"] + player["height"] - 1  # below, not beside
        assert _axe(page) == []
    finally:
        page.set_viewport_size(WIDE)


def test_the_transcripts_warnings_are_listed_with_their_times(workspace: Workspace) -> None:
    """Transcripts may carry ``warnings`` ({start, end, reason}); this one gets one on its
    way to the page."""
    page = workspace.page

    def add_a_warning(route: Any) -> None:
        response = route.fetch()
        body = response.json()
        body["transcript"]["warnings"] = [{"start": 2.0, "end": 3.5, "reason": "music"}]
        route.fulfill(response=response, json=body)

    pattern = f"**/api/jobs/{workspace.job_id}/result"
    page.route(pattern, add_a_warning)
    try:
        page.locator(f"#jobs tbody tr[data-id='{workspace.job_id}'] button.open").click()
        items = page.locator("#warnings li")
        sync_api.expect(items).to_have_count(1)
        sync_api.expect(items.first).to_have_text("00:02 music")
        sync_api.expect(page.locator("#transcript .segment").first).to_be_visible()
    finally:
        page.unroute(pattern)
    player = page.locator("#player")
    player.evaluate(
        "p => new Promise(r => p.readyState >= 1 ? r() : p.addEventListener('loadedmetadata', r))"
    )
    items.first.locator("button").click()
    player.evaluate("p => p.pause()")
    assert player.evaluate("p => p.currentTime") == pytest.approx(2.0, abs=0.3)


def test_export_a_selection_as_a_clip_then_filter_and_delete(workspace: Workspace) -> None:
    page = workspace.page
    segment = page.locator("#transcript .segment").first
    start, end = (
        float(segment.get_attribute("data-start")),
        float(segment.get_attribute("data-end")),
    )
    # Selected text is a range: from the first word touched to the last.
    page.evaluate("""() => {
      const words = document.querySelectorAll('#transcript .word');
      const range = document.createRange();
      range.setStart(words[1].firstChild, 1);
      range.setEnd(words[3].firstChild, 1);
      getSelection().removeAllRanges();
      getSelection().addRange(range);
      document.getElementById('transcript').dispatchEvent(new MouseEvent('mouseup'));
    }""")
    first, last = workspace.words[1]["start"], workspace.words[3]["end"]
    sync_api.expect(page.locator("#selection-label")).to_contain_text(f"({last - first:.1f} s)")
    page.evaluate("() => getSelection().removeAllRanges()")
    # A segment's time, then a shift-click on a (here: the same) segment's time.
    segment.locator(".seg-time").click()
    segment.locator(".seg-time").click(modifiers=["Shift"])
    sync_api.expect(page.locator("#selection-label")).to_contain_text(f"({end - start:.1f} s)")
    sync_api.expect(page.locator("#selection-label")).to_contain_text("Selected")
    page.click("#export-clip")
    # The new job opens: the same source, the selected range.
    sync_api.expect(page.locator("#detail-id")).not_to_have_text(workspace.job_id)
    clip_id = page.inner_text("#detail-id")
    spec = httpx.get(f"{workspace.base}/api/jobs/{clip_id}").json()["spec"]
    original = httpx.get(f"{workspace.base}/api/jobs/{workspace.job_id}").json()["spec"]
    assert spec["source"] == original["source"]
    assert spec["start"] == pytest.approx(start, abs=0.01)
    assert spec["end"] == pytest.approx(end, abs=0.01)
    sync_api.expect(page.locator("#detail-status")).to_have_text("done", timeout=300_000)

    page.select_option("#job-filter", "failed")
    sync_api.expect(page.locator("#jobs-empty")).to_have_text("No failed jobs.")
    page.select_option("#job-filter", "done")
    sync_api.expect(page.locator("#jobs tbody tr")).to_have_count(2)
    page.locator(f"#jobs tbody tr[data-id='{clip_id}'] button.delete").click()
    sync_api.expect(page.locator("#jobs tbody tr")).to_have_count(1)
    sync_api.expect(page.locator("#detail")).to_be_hidden()
    assert httpx.get(f"{workspace.base}/api/jobs/{clip_id}").status_code == 404
