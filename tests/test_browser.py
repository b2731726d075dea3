"""Drive the real app in Debian's Chromium with Playwright: upload a photo, press Count, see the result.

Set SEALION_SCREENSHOT_PATH=docs/screenshot.png to keep the screenshot (the README's).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from urllib.parse import urlparse

import pytest

from tests.app_process import start_app
from tests.helpers import REPO_ROOT

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
PHOTO = REPO_ROOT / "examples" / "noaa_train_0.jpg"  # the busiest example: hundreds of animals

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def browser():
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
    if not CHROMIUM.is_file():
        pytest.skip(f"{CHROMIUM} not found (apt-get install -y chromium)")
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        yield chromium
        chromium.close()


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    running = start_app(tmp_path_factory.mktemp("app-browser"))
    yield running
    running.stop()


def test_upload_count_and_see_the_result(browser, app, tmp_path):
    page = browser.new_page(viewport={"width": 1400, "height": 1300})
    page_errors: list[str] = []
    outside: list[str] = []
    page.on("pageerror", lambda error: page_errors.append(str(error)))
    page.on(
        "request",
        lambda request: (
            outside.append(request.url)
            if urlparse(request.url).hostname not in {"127.0.0.1", "localhost", None} and request.url.startswith("http")
            else None
        ),
    )
    page.goto(app.url, wait_until="domcontentloaded")
    count_button = page.get_by_role("button", name="Count", exact=True)
    count_button.wait_for(timeout=60_000)

    page.locator("#photo-input input[type=file]").set_input_files(str(PHOTO))
    page.locator("#photo-input img").first.wait_for(timeout=30_000)  # the upload preview
    scale = page.locator("#photo-scale input[type=number]")
    scale.fill("0.25")  # the example photos are downsampled 4x
    scale.press("Tab")
    count_button.click()

    annotated = page.locator("#annotated-image img").first
    annotated.wait_for(timeout=180_000)
    table = page.locator("#counts-table")
    page.wait_for_function(
        "() => { const t = document.querySelector('#counts-table'); return t && /total/.test(t.innerText); }",
        timeout=60_000,
    )
    text = table.inner_text()
    for label in ("adult males", "subadult males", "adult females", "juveniles", "pups", "total"):
        assert label in text, text
    status = page.locator("#count-status").inner_text()
    assert "animals in 1404×936 px" in status and " on " in status, status
    natural = annotated.evaluate("img => [img.naturalWidth, img.naturalHeight]")
    assert natural == [1404, 936]
    assert annotated.get_attribute("src").split("?")[0].endswith((".jpeg", ".jpg"))

    shot = tmp_path / "app-count.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 10_000
    if os.environ.get("SEALION_SCREENSHOT_PATH"):
        shutil.copyfile(shot, os.environ["SEALION_SCREENSHOT_PATH"])
    assert not page_errors, page_errors
    assert not outside, f"the page reached outside the machine: {outside[:5]}"
    page.close()


def test_example_then_count(browser, app):
    """Clicking a shipped example fills the photo and its photo scale (0.25); Count uses both."""
    page = browser.new_page(viewport={"width": 1400, "height": 1300})
    page.goto(app.url, wait_until="domcontentloaded")
    page.get_by_role("button", name="Count", exact=True).wait_for(timeout=60_000)
    examples = page.get_by_text("Examples: NOAA").locator("xpath=ancestor::*[contains(@class,'block')][1]")
    examples.locator("img").first.click()
    page.wait_for_function(
        "() => document.querySelector('#photo-scale input[type=number]').value === '0.25'", timeout=30_000
    )
    page.locator("#photo-input img").first.wait_for(timeout=30_000)
    page.get_by_role("button", name="Count", exact=True).click()
    page.wait_for_function(
        "() => /animals in \\d+×\\d+ px/.test(document.querySelector('#count-status')?.innerText || '')",
        timeout=180_000,
    )
    assert "1404×936" in page.locator("#count-status").inner_text()
    page.close()


def test_batch_tab_counts_and_lists_bad_files(browser, app, tmp_path):
    broken = tmp_path / "broken.jpg"
    broken.write_text("not a photo")
    page = browser.new_page(viewport={"width": 1400, "height": 1300})
    page.goto(app.url, wait_until="domcontentloaded")
    page.get_by_role("tab", name="Batch").click()
    with page.expect_response(lambda r: "/gradio_api/upload?" in r.url and r.request.method == "POST"):
        page.locator("#batch-files input[type=file]").set_input_files([str(PHOTO), str(broken)])
    page.locator("#batch-files").get_by_text("broken").first.wait_for(timeout=30_000)  # listed as uploaded
    page.get_by_role("button", name="Count all").click()
    page.wait_for_function(
        "() => /Counted/.test(document.querySelector('#batch-status')?.innerText || '')", timeout=180_000
    )
    assert "Counted 1 photo(s), 1 file(s) failed" in page.locator("#batch-status").inner_text()
    assert "not an image file" in page.locator("#batch-errors").inner_text()
    assert PHOTO.name in page.locator("#batch-table").inner_text()
    page.locator("#batch-gallery img").first.wait_for(timeout=30_000)
    page.close()


def test_other_tabs_render(browser, app):
    page = browser.new_page(viewport={"width": 1300, "height": 1000})
    page.goto(app.url, wait_until="domcontentloaded")
    page.get_by_role("tab", name="Model").click()
    page.get_by_text("weights sha256").wait_for(timeout=30_000)
    assert app.expected_sha256 in page.content()
    page.get_by_role("tab", name="About / data").click()
    page.get_by_text("How it works").wait_for(timeout=30_000)
    page.locator("canvas, svg.marks").first.wait_for(timeout=30_000)  # the class distribution plot
    page.get_by_role("tab", name="Batch").click()
    page.get_by_role("button", name="Count all").wait_for(timeout=30_000)
    page.close()
