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
SPARSE = REPO_ROOT / "examples" / "noaa_train_6.jpg"  # 1248x832: a survey original downsampled 4x

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
    count_button.click()  # scale auto: the photo is recognised as a 4x copy of a survey original

    annotated = page.locator("#inspect-image img").first
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
    assert "scale auto: adult females ≈ 20 px (photo scale 0.25)" in status, status
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
    """Clicking a shipped example fills the photo; Count uses the auto scale (adult females ≈ 20 px)."""
    page = browser.new_page(viewport={"width": 1400, "height": 1300})
    page.goto(app.url, wait_until="domcontentloaded")
    page.get_by_role("button", name="Count", exact=True).wait_for(timeout=60_000)
    examples = page.get_by_text("Examples: NOAA").locator("xpath=ancestor::*[contains(@class,'block')][1]")
    examples.locator("img").first.click()
    page.locator("#photo-input img").first.wait_for(timeout=30_000)
    page.get_by_role("button", name="Count", exact=True).click()
    page.wait_for_function(
        "() => /animals in \\d+×\\d+ px/.test(document.querySelector('#count-status')?.innerText || '')",
        timeout=180_000,
    )
    status = page.locator("#count-status").inner_text()
    assert "1404×936" in status and "scale auto: adult females ≈ 20 px" in status, status
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


def _page_with_photo(browser, app, photo: Path):
    """A new page of the app with ``photo`` uploaded in the Count tab."""
    page = browser.new_page(viewport={"width": 1400, "height": 1300})
    page.goto(app.url, wait_until="domcontentloaded")
    page.get_by_role("button", name="Count", exact=True).wait_for(timeout=60_000)
    page.locator("#photo-input input[type=file]").set_input_files(str(photo))
    page.locator("#photo-input img").first.wait_for(timeout=60_000)
    return page


def _count(page, expect: str = "animals in", timeout: float = 300_000) -> tuple[str, list[list[str]]]:
    """Press Count and wait for a finished status line holding ``expect``; returns (status, counts table rows)."""
    before = page.locator("#count-status").inner_text()
    page.get_by_role("button", name="Count", exact=True).click()
    page.wait_for_function(
        "([before, expect]) => { const s = document.querySelector('#count-status')?.innerText || '';"
        " return s.includes(expect) && s !== before && !/^\\s*(processing|queue|[\\d.]+\\s*s\\b)/.test(s); }",
        arg=[before, expect],
        timeout=timeout,
    )
    rows = page.locator("#counts-table .virtual-row").evaluate_all(  # Gradio's Dataframe: a virtual grid of rows
        "rows => rows.map(r => [...r.querySelectorAll('[role=gridcell]')].map(c => c.innerText.trim()))"
    )
    return page.locator("#count-status").inner_text(), [row for row in rows if len(row) >= 2 and row[0]]


def _counts(rows: list[list[str]]) -> list[str]:
    """The count column of the counts table, in class order, total last."""
    return [row[1] for row in rows]


def _set_female_length(page, value: str) -> None:
    field = page.locator("#female-length input[type=number]")
    field.fill(value)
    field.press("Tab")


def _female_length(page) -> str:
    return page.locator("#female-length input[type=number]").input_value()


def test_scale_auto_matches_the_true_scale_warns_when_wrong_and_resets_for_a_new_photo(browser, app):
    page = _page_with_photo(browser, app, SPARSE)
    assert _female_length(page) == "0"  # auto

    auto_status, auto_table = _count(page, "scale auto")
    assert "scale auto: adult females ≈ 20 px (photo scale 0.25)" in auto_status, auto_status
    assert "Check the scale" not in auto_status

    _set_female_length(page, "20")  # the photo's true scale, typed by hand: the same counts
    true_status, true_table = _count(page, "scale manual")
    assert "scale manual: adult females ≈ 20 px" in true_status, true_status
    assert _counts(true_table) == _counts(auto_table) and int(_counts(auto_table)[-1]) > 0, (auto_table, true_table)
    assert [row[0] for row in auto_table][-1] == "total" and len(auto_table) == 6

    _set_female_length(page, "80")  # as if the 4x copy were a survey original: animals reach the model 4x too small
    wrong_status, wrong_table = _count(page, "Check the scale")
    assert "Check the scale" in wrong_status and "4.0× smaller" in wrong_status, wrong_status
    assert "auto would use adult females ≈ 20 px" in wrong_status
    page.get_by_role("tab", name="Batch").click()
    page.get_by_text("adult females ≈ 80 px in every photo").wait_for(timeout=30_000)  # what a batch would use
    page.get_by_role("tab", name="Count").click()

    page.locator("#photo-input input[type=file]").set_input_files(str(PHOTO))  # a new photo: back to auto
    page.wait_for_function(
        "() => document.querySelector('#female-length input[type=number]')?.value === '0'", timeout=30_000
    )
    page.get_by_role("tab", name="Batch").click()
    page.get_by_text("auto for each photo").wait_for(timeout=30_000)
    page.close()


def test_counts_come_with_their_typical_error(browser, app):
    page = _page_with_photo(browser, app, SPARSE)
    status, rows = _count(page)
    per_class = {row[0]: row[2] for row in rows}
    for label in ("adult males", "subadult males", "adult females", "juveniles", "pups"):
        assert per_class[label].startswith("± ") and per_class[label].endswith("per photo"), per_class
    assert "typical error" in status and "could well be" in status
    page.get_by_role("tab", name="Model").click()
    page.get_by_text("How accurate are the counts?").wait_for(timeout=30_000)
    assert "typically off by" in page.content()
    page.close()


def test_a_full_resolution_result_can_be_zoomed(browser, app, tmp_path):
    """A survey-size photo reaches the browser at full resolution, and the wheel zooms into it."""
    from PIL import Image

    with Image.open(PHOTO) as small:
        full = small.resize((small.width * 4, small.height * 4))  # 5616x3744, the size of a survey original
    photo = tmp_path / "survey-size.jpg"
    full.save(photo, quality=90)
    page = _page_with_photo(browser, app, photo)
    status, _ = _count(page)
    assert "5616×3744" in status and "photo scale 1" in status, status
    shown = page.locator("#inspect-image img")
    shown.first.wait_for(timeout=60_000)
    page.wait_for_function(
        "() => [...document.querySelectorAll('#inspect-image img')].every(i => i.complete && i.naturalWidth > 0)",
        timeout=60_000,
    )
    sizes = shown.evaluate_all("imgs => imgs.map(i => [i.naturalWidth, i.naturalHeight])")
    assert sizes and all(size == [5616, 3744] for size in sizes), sizes  # full resolution, not a preview
    box = shown.first.bounding_box()
    assert box["width"] < 5616 / 4  # shown fitted to the page: zooming is what makes each box visible
    before = shown.first.evaluate("img => img.getBoundingClientRect().width")
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    for _ in range(40):
        page.mouse.wheel(0, -120)  # scroll up: zoom in
    page.wait_for_timeout(500)
    after = shown.first.evaluate("img => img.getBoundingClientRect().width")
    assert after > 5 * before, (before, after)  # zoomed in past 5x: survey pixels at screen size or larger
    page.close()
