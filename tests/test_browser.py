"""Drive the real app in Debian's Chromium with Playwright: upload a photo, press Count, see the result.

Run: ``nice -n 19 python -m pytest tests/test_browser.py -m browser`` (needs /usr/bin/chromium, ``apt-get install -y
chromium``, and the playwright package; never ``playwright install``). The dense-photo tests need the NOAA sample's
photo 43 (SEALION_NOAA_DATA, README 'Tests'). Set SEALION_SCREENSHOT_PATH=docs/screenshot.png to keep the README's
screenshot, and SEALION_SCREENSHOTS_DIR=docs/screenshots to keep the inspection screenshots (docs/app.md).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from urllib.parse import urlparse

import pytest

from tests.app_process import start_app
from tests.helpers import NO_SHARED_DATA, REPO_ROOT, SEA_LION_CLASSES, SHARED_DATA

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
DENSE = SHARED_DATA / "fullres-raw" / "43.jpg"  # a survey original (5616x3744) of a colony: about 600 animals
CLASS_LABELS = ["male", "subadult", "female", "juvenile", "pup"]  # the Review tab's labels, in class order
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


def _clip(page, *selectors: str) -> dict[str, float]:
    """The page area spanning these elements (for a screenshot of a control and what it acts on)."""
    boxes = [page.locator(selector).first.bounding_box() for selector in selectors]
    left, top = min(b["x"] for b in boxes), min(b["y"] for b in boxes)
    right, bottom = max(b["x"] + b["width"] for b in boxes), max(b["y"] + b["height"] for b in boxes)
    return {"x": left, "y": top, "width": right - left, "height": bottom - top}


def _keep(page_or_element, name: str, tmp_path: Path, **options) -> Path:
    """A JPEG screenshot (small enough to commit), also copied into SEALION_SCREENSHOTS_DIR when that is set."""
    shot = tmp_path / name
    page_or_element.screenshot(path=str(shot), type="jpeg", quality=70, **options)
    assert 10_000 < shot.stat().st_size < 400_000, shot.stat().st_size
    if os.environ.get("SEALION_SCREENSHOTS_DIR"):
        folder = Path(os.environ["SEALION_SCREENSHOTS_DIR"])
        folder.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(shot, folder / name)
    return shot


def _dense_photo() -> Path:
    if not DENSE.is_file():
        pytest.skip(NO_SHARED_DATA)
    return DENSE


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


def test_a_bad_file_on_the_count_tab_shows_its_reason_where_the_result_would_be(browser, app, tmp_path):
    notes = tmp_path / "notes.jpg"
    notes.write_text("field notes, not a photo")
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.goto(app.url, wait_until="domcontentloaded")
    count_button = page.get_by_role("button", name="Count", exact=True)
    count_button.wait_for(timeout=60_000)
    with page.expect_response(lambda r: "/gradio_api/upload?" in r.url and r.request.method == "POST"):
        page.locator("#photo-input input[type=file]").set_input_files(str(notes))
    count_button.click()
    page.wait_for_function(
        "() => /Cannot count/.test(document.querySelector('#count-status')?.innerText || '')", timeout=60_000
    )
    status = page.locator("#count-status").inner_text()
    assert "notes.jpg: not an image file" in status, status
    page.wait_for_timeout(6_000)  # longer than a toast stays: the reason stays
    assert "notes.jpg: not an image file" in page.locator("#count-status").inner_text()
    assert page.locator("#photo-input img").count() == 0  # no broken preview of the file left behind
    _keep(page, "count-bad-file.jpg", tmp_path, clip=_clip(page, "#photo-input", "#count-status"))
    page.close()


def test_batch_tab_counts_and_lists_bad_files(browser, app, tmp_path):
    broken = tmp_path / "broken.jpg"
    broken.write_text("not a photo")
    page = browser.new_page(viewport={"width": 1400, "height": 1100})
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
    table = page.locator("#batch-table").inner_text()
    assert PHOTO.name in table and " ± " in table, table  # each count with its typical error
    page.locator("#batch-gallery img").first.wait_for(timeout=30_000)
    page.wait_for_timeout(500)
    _keep(page, "batch.jpg", tmp_path, full_page=True)
    page.close()


def test_other_tabs_render(browser, app):
    page = browser.new_page(viewport={"width": 1300, "height": 1000})
    page.goto(app.url, wait_until="domcontentloaded")
    page.locator("#advanced").get_by_text("Advanced").first.click()  # expert settings are folded away
    runtime = page.locator("#runtime input")  # the Runtime chooser, under Advanced
    runtime.wait_for(timeout=30_000)
    assert runtime.input_value() == "auto"
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


def _zoom_of_viewer(page) -> list[str]:
    """The CSS transform of each image of the Count tab's viewer (photo and counted photo zoom together)."""
    return page.locator("#inspect-image img[data-testid=imageslider-image]").evaluate_all(
        "imgs => imgs.map(i => i.style.transform)"
    )


def _scale_of_viewer(page) -> float:
    transforms = set(_zoom_of_viewer(page))
    assert len(transforms) == 1, transforms  # both layers in step
    return float(transforms.pop().split("scale(")[1].rstrip(")"))


def _wait_for_zoom(page, low: float, high: float) -> None:
    """Wait until the viewer's zoom is within [low, high] and stays there a moment."""
    try:
        page.wait_for_function(
            "([low, high]) => { const m = document.querySelector('#inspect-image img')?.style.transform"
            ".match(/scale\\(([^)]+)\\)/); const s = m ? parseFloat(m[1]) : 0;"
            " return s >= low - 1e-6 && s <= high + 1e-6; }",
            arg=[low, high],
            timeout=15_000,
        )
    except Exception as exc:
        raise AssertionError(f"zoom not in [{low}, {high}]: {_zoom_of_viewer(page)}") from exc
    page.wait_for_timeout(500)
    assert low - 1e-6 <= _scale_of_viewer(page) <= high + 1e-6, _zoom_of_viewer(page)


def test_a_dense_photo_zooms_to_animal_level_in_a_few_steps_and_its_boxes_turn_off_and_on(browser, app, tmp_path):
    """Photo 43 (a colony, ~600 animals, 5616x3744): the zoom buttons reach the viewer's 15x in one click and a
    wheel notch zooms about 1.2x (fit to 15x in 14 notches); Show boxes hides the counted layer at that zoom and
    brings it back, the zoom and pan unchanged and nothing recounted."""
    page = _page_with_photo(browser, app, _dense_photo())
    status, rows = _count(page)
    assert "5616×3744" in status and int(_counts(rows)[-1]) > 300, (status, rows)
    page.wait_for_function(
        "() => { const imgs = [...document.querySelectorAll('#inspect-image img')];"
        " return imgs.length === 2 && imgs.every(i => i.complete && i.naturalWidth > 0); }",
        timeout=60_000,
    )
    counted = page.locator("#inspect-image img[data-testid=imageslider-image]").nth(1)
    assert _scale_of_viewer(page) == 1
    box = counted.bounding_box()
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    for _ in range(14):  # fourteen wheel notches
        page.mouse.wheel(0, -100)
        page.wait_for_timeout(60)
    page.wait_for_timeout(300)
    assert _scale_of_viewer(page) == 15, _zoom_of_viewer(page)
    page.locator("#zoom-1").click()
    page.wait_for_function("() => /scale\\(1\\)/.test(document.querySelector('#inspect-image img').style.transform)")
    page.locator("#zoom-4").click()
    _wait_for_zoom(page, 3.8, 4.2)
    page.locator("#zoom-15").click()  # one click from 4x to the viewer's maximum
    _wait_for_zoom(page, 15, 15)
    zoomed = _zoom_of_viewer(page)

    assert counted.evaluate("img => getComputedStyle(img).visibility") == "visible"
    area = _clip(page, "#inspect-controls", "#inspect-image")  # the controls and the viewer
    with_boxes = _keep(page, "count-zoomed-boxes-on.jpg", tmp_path, clip=area)
    page.locator("#show-boxes input").uncheck()
    page.wait_for_function(
        "() => getComputedStyle(document.querySelectorAll('#inspect-image img')[1]).visibility === 'hidden'"
    )
    without = _keep(page, "count-zoomed-boxes-off.jpg", tmp_path, clip=area)
    assert with_boxes.read_bytes() != without.read_bytes()
    assert _zoom_of_viewer(page) == zoomed  # the same place at the same zoom
    assert page.locator("#count-status").inner_text() == status  # not recounted
    page.locator("#show-boxes input").check()
    page.wait_for_function(
        "() => getComputedStyle(document.querySelectorAll('#inspect-image img')[1]).visibility === 'visible'"
    )
    assert _zoom_of_viewer(page) == zoomed
    page.close()


def _canvas_point(page, image_size: tuple[int, int]):
    """A function from photo pixels to page coordinates on the review annotator's canvas (the photo fitted, centred)."""
    frame = page.locator("#review-annotator canvas").bounding_box()
    width, height = image_size
    scale = min(frame["width"] / width, frame["height"] / height)
    left = frame["x"] + (frame["width"] - width * scale) / 2
    top = frame["y"] + (frame["height"] - height * scale) / 2
    return lambda x, y: (left + x * scale, top + y * scale)


def _draw_box(page, at, start: tuple[float, float], end: tuple[float, float]) -> None:
    """Draw a new box on the review annotator, dragging from ``start`` to ``end`` (photo pixels; ``at`` from
    :func:`_canvas_point`) through their midpoint."""
    middle = ((start[0] + end[0]) / 2, (start[1] + end[1]) / 2)
    page.locator("#review-annotator button[aria-label='Create box']").click()
    page.mouse.move(*at(*start))
    page.mouse.down()
    page.mouse.move(*at(*middle), steps=4)
    page.mouse.move(*at(*end), steps=4)
    page.mouse.up()


def _choose_class(page, name: str) -> None:
    """In the annotator's box dialog (a new box, or a double-clicked one): pick the class, press OK."""
    from sealion_app.review import short_label

    name = short_label(name)  # the annotator shows short labels (female, pup, ...)
    dialog = page.locator("#model-box-edit")
    dialog.wait_for(state="visible", timeout=10_000)
    _wait_for_every_class(dialog)  # not only the box's current class
    dialog.locator("input[aria-label=Label]").fill(name)
    dialog.locator(f"li[data-testid=dropdown-option][aria-label={name}]").click()
    dialog.get_by_role("button", name="OK").click()
    dialog.wait_for(state="hidden", timeout=10_000)


def _wait_for_every_class(dialog) -> list[str]:
    """The class list of the open box dialog, once it lists every class (it must, as it opens)."""
    dialog.page.wait_for_function(
        "n => document.querySelector('#model-box-edit')?.dataset.listing === 'all'"
        " && document.querySelectorAll('#model-box-edit li[data-testid=dropdown-option]').length === n",
        arg=len(CLASS_LABELS),
        timeout=10_000,
    )
    from sealion_app import present
    from sealion_app.review import by_frequency

    options = dialog.locator("li[data-testid=dropdown-option]").all_inner_texts()
    sample = present.class_distribution()
    order = by_frequency(SEA_LION_CLASSES, dict(zip(sample["class"], sample["animals"], strict=True)))
    assert [o.strip() for o in options] == [CLASS_LABELS[i] for i in order], options  # the most numerous first
    return options


def _review_counts(page) -> dict[str, list[str]]:
    """The review table as {class: [model, reviewed, added, removed, reclassified]}."""
    rows = page.locator("#review-table .virtual-row").evaluate_all(
        "rows => rows.map(r => [...r.querySelectorAll('[role=gridcell]')].map(c => c.innerText.trim()))"
    )
    return {row[0]: row[1:] for row in rows if len(row) >= 6 and row[0]}


def _wait_for_status(page, selector: str, pattern: str, timeout: float = 60_000) -> str:
    page.wait_for_function(
        "([sel, pattern]) => new RegExp(pattern).test(document.querySelector(sel)?.innerText || '')",
        arg=[selector, pattern],
        timeout=timeout,
    )
    return page.locator(selector).inner_text()


def test_review_of_clustered_animals_hides_labels_and_a_new_box_starts_as_the_commonest_class(browser, app, tmp_path):
    """noaa_train_6: 61 animals, under the old 100-box rule, but in clusters where their labels would pile up: the
    Review tab opens with labels hidden. A new box's dialog offers "female" (the most numerous class), not "male",
    and shows no colour picker."""
    from gradio_client import Client, handle_file

    from sealion_app.review import labels_overlap, short_label

    result = Client(app.url, verbose=False).predict(handle_file(str(SPARSE)), api_name="/count")[2]
    size = (result["image_size"]["width"], result["image_size"]["height"])
    labels = [short_label(d["class_name"]) for d in result["detections"]]
    assert len(labels) < 100 and labels_overlap([d["xyxy"] for d in result["detections"]], labels, size) > 0.5
    page = _page_with_photo(browser, app, SPARSE)
    page.set_viewport_size({"width": 1400, "height": 1700})
    _count(page, "scale auto")
    page.get_by_role("tab", name="Review").click()
    _wait_for_status(page, "#review-status", "after review")
    assert not page.locator("#show-labels input").is_checked()
    _keep(page, "review-clustered-labels-hidden.jpg", tmp_path, clip=_clip(page, "#show-labels", "#review-annotator"))
    at = _canvas_point(page, size)
    _draw_box(page, at, (30, 30), (60, 54))
    dialog = page.locator("#model-box-edit")
    dialog.wait_for(state="visible", timeout=10_000)
    page.wait_for_function("() => document.querySelector('#model-box-edit')?.dataset.listing === 'all'")
    assert dialog.locator("input[aria-label=Label]").input_value() == "female"
    assert not dialog.locator("input[type=color]").is_visible()
    _keep(
        page,
        "review-add-dialog.jpg",
        tmp_path,
        clip=_clip(page, "#review-annotator", "#model-box-edit .modal-container"),
    )
    page.close()


def test_review_delete_add_reclassify_save_and_export(browser, app, tmp_path):
    """Count a photo, then in the Review tab delete a detection, add a missed animal, change a class, save; the
    counts shown, the corrected-counts CSV and the dots table say what the reviewer did.

    Set SEALION_REVIEW_SCREENSHOT_PATH=docs/review.png to keep the screenshot of the review in progress."""
    import csv
    import io
    import urllib.request

    import numpy as np
    from gradio_client import Client, handle_file

    result = Client(app.url, verbose=False).predict(handle_file(str(SPARSE)), api_name="/count")[2]
    boxes = np.array([d["xyxy"] for d in result["detections"]])
    names = [d["class_name"] for d in result["detections"]]
    assert len(boxes) >= 3, "the example photo should have a few detections to review"
    centres = (boxes[:, :2] + boxes[:, 2:]) / 2
    apart = np.sqrt(((centres[:, None] - centres[None]) ** 2).sum(-1)) + np.eye(len(centres)) * 1e9
    relabel, delete, later = (int(i) for i in np.argsort(-apart.min(axis=1))[:3])  # the most isolated detections
    size = (result["image_size"]["width"], result["image_size"]["height"])
    grid = np.array([(x, y) for x in range(60, size[0] - 60, 8) for y in range(60, size[1] - 60, 8)], dtype=float)
    added = grid[np.argmax(np.sqrt(((grid[:, None] - centres[None]) ** 2).sum(-1)).min(axis=1))]  # far from all
    new_class = "juveniles"
    relabel_to = "pups" if names[relabel] != "pups" else "adult_females"

    page = _page_with_photo(browser, app, SPARSE)
    page.set_viewport_size({"width": 1400, "height": 1700})  # the whole annotator on screen
    page_errors: list[str] = []
    page.on("pageerror", lambda error: page_errors.append(str(error)))
    _count(page, "scale auto")
    page.get_by_role("tab", name="Review").click()
    _wait_for_status(page, "#review-status", "after review")
    model_counts = {k: v[0] for k, v in _review_counts(page).items()}
    assert model_counts["total"] == str(len(boxes))
    at = _canvas_point(page, size)

    page.mouse.dblclick(*at(*centres[relabel]))  # change a class
    _choose_class(page, relabel_to)
    _wait_for_status(page, "#review-status", "1 reclassified")
    page.mouse.click(*at(*centres[delete]))  # select, then remove
    page.locator("#review-annotator button[aria-label='Remove box']").click()
    _wait_for_status(page, "#review-status", "1 removed")
    x, y = (float(v) for v in added)
    _draw_box(page, at, (x - 12, y - 10), (x + 12, y + 10))  # a missed animal
    _choose_class(page, new_class)
    status = _wait_for_status(page, "#review-status", "1 added, 1 removed, 1 reclassified")
    assert f"{len(boxes)} animals after review" in status, status

    expected = {pretty: int(count) for pretty, count in model_counts.items()}
    expected[names[relabel].replace("_", " ")] -= 1
    expected[relabel_to.replace("_", " ")] += 1
    expected[names[delete].replace("_", " ")] -= 1
    expected[new_class] += 1
    shown = _review_counts(page)
    assert {k: int(v[1]) for k, v in shown.items() if k != "total"} == {
        k: v for k, v in expected.items() if k != "total"
    }
    assert shown["total"] == [str(len(boxes)), str(len(boxes)), "1", "1", "1"]
    assert shown[new_class][2] == "1"  # added, by the reviewer's class

    page.locator("#reviewer input").fill("A. Biologist")
    shot = tmp_path / "review.png"
    page.screenshot(path=str(shot), full_page=True)
    if os.environ.get("SEALION_REVIEW_SCREENSHOT_PATH"):
        shutil.copyfile(shot, os.environ["SEALION_REVIEW_SCREENSHOT_PATH"])
    page.get_by_role("button", name="Save review").click()
    saved = _wait_for_status(page, "#review-saved", "Saved the review", timeout=60_000)
    assert "A. Biologist" in saved and "1 added, 1 removed, 1 reclassified" in saved, saved
    page.locator("#review-files a").nth(3).wait_for(timeout=30_000)
    links = {
        Path(urlparse(href).path).name: href
        for href in page.locator("#review-files a").evaluate_all("links => links.map(a => a.href)")
    }
    stem = f"{SPARSE.stem}_reviewed"
    assert {f"{stem}_counts.csv", f"{stem}_dots.csv", f"{stem}_coco.json", f"{stem}_viame.csv"} <= set(links), links

    def download(name: str) -> list[dict[str, str]]:
        with urllib.request.urlopen(links[name], timeout=30) as response:
            return list(csv.DictReader(io.StringIO(response.read().decode())))

    (row,) = download(f"{stem}_counts.csv")
    assert row["file"] == SPARSE.name and row["reviewed"] == "true" and row["reviewer"] == "A. Biologist"
    assert row["total"] == str(len(boxes)) and row["model_version"] == app.expected_version
    assert (row["added"], row["removed"], row["reclassified"]) == ("1", "1", "1")
    assert row[f"added_{new_class}"] == "1" and row[f"removed_{names[delete]}"] == "1"
    assert row[f"reclassified_{names[relabel]}"] == "1"
    for name, count in expected.items():
        if name != "total":
            assert row[name.replace(" ", "_")] == str(count), (name, row)

    dots = download(f"{stem}_dots.csv")
    assert len(dots) == len(boxes)
    full = np.array([[float(d["x"]), float(d["y"])] for d in dots])
    photo_px = (full + 0.5) * 0.25 - 0.5  # the dots are in survey-original pixels; this photo is a 4x copy

    def dot_near(x: float, y: float, tolerance: float = 3.0) -> list[str]:
        return [d["class"] for d, p in zip(dots, photo_px, strict=True) if np.abs(p - [x, y]).max() <= tolerance]

    assert dot_near(x, y) == [new_class]
    assert dot_near(*centres[relabel], tolerance=1.0) == [relabel_to]
    assert dot_near(*centres[delete], tolerance=1.0) == []

    # one more deletion, then the saved VIAME CSV imported (as from DIVE) puts the saved boxes back
    page.locator("#review-annotator button[aria-label='Drag boxes']").click()  # out of create mode
    page.locator("#review-annotator canvas").scroll_into_view_if_needed()
    at = _canvas_point(page, size)  # the page may have scrolled
    page.mouse.click(*at(*centres[later]))
    page.locator("#review-annotator button[aria-label='Remove box']").click()
    _wait_for_status(page, "#review-status", "1 added, 2 removed, 1 reclassified")
    viame = tmp_path / f"{stem}_viame.csv"
    with urllib.request.urlopen(links[viame.name], timeout=30) as response:
        viame.write_bytes(response.read())
    page.get_by_text("Import annotations made elsewhere").click()
    page.locator("#review-import input[type=file]").set_input_files(str(viame))
    _wait_for_status(page, "#review-status", f"{len(boxes)} animals after review .* 1 added, 1 removed, 1 reclassified")
    assert not page_errors, page_errors
    page.close()


def test_review_a_survey_original_with_hundreds_of_animals(browser, app, tmp_path):
    """A full-resolution colony photo (43: 5616x3744, ~600 detections) in the Review tab: it opens with class labels
    hidden (its labels would pile up; the box colours give the class), the wheel zooms the annotator, a box's
    dialog opens on its class and lists every class, a relabel and a deletion are counted within seconds, and showing
    the labels keeps every edit."""
    import time

    import numpy as np
    from gradio_client import Client, handle_file

    from sealion_app.review import LABELS_OVERLAP_SHARE, labels_overlap, short_label

    survey = _dense_photo()
    result = Client(app.url, verbose=False).predict(handle_file(str(survey)), api_name="/count")[2]
    size = (result["image_size"]["width"], result["image_size"]["height"])
    assert size[0] >= 4992 and len(result["detections"]) > 200, (size, result["total"])
    boxes = np.array([d["xyxy"] for d in result["detections"]])
    names = [d["class_name"] for d in result["detections"]]
    assert labels_overlap(boxes, [short_label(n) for n in names], size) > LABELS_OVERLAP_SHARE
    centres = (boxes[:, :2] + boxes[:, 2:]) / 2
    apart = np.sqrt(((centres[:, None] - centres[None]) ** 2).sum(-1)) + np.eye(len(centres)) * 1e9
    lonely, relabel = (int(i) for i in np.argsort(-apart.min(axis=1))[:2])
    relabel_to = "pups" if names[relabel] != "pups" else "adult_females"

    page = _page_with_photo(browser, app, survey)
    page.set_viewport_size({"width": 1400, "height": 1700})  # the whole annotator on screen
    _count(page, "scale auto")
    page.get_by_role("tab", name="Review").click()
    _wait_for_status(page, "#review-status", f"{len(boxes)} animals after review", timeout=120_000)
    assert not page.locator("#show-labels input").is_checked()  # a colony: labels hidden
    canvas = page.locator("#review-annotator canvas")
    canvas.scroll_into_view_if_needed()
    page.wait_for_timeout(500)
    _keep(page, "review-dense-labels-hidden.jpg", tmp_path)
    frame = canvas.bounding_box()
    whole = canvas.screenshot()
    page.mouse.move(frame["x"] + frame["width"] / 2, frame["y"] + frame["height"] / 2)
    for _ in range(6):
        page.mouse.wheel(0, -300)
        page.wait_for_timeout(100)
    page.wait_for_timeout(500)
    assert canvas.screenshot() != whole  # zoomed in
    page.locator("#review-annotator .annotator-container").focus()
    page.keyboard.press("Space")  # back to the whole photo
    page.wait_for_timeout(500)

    at = _canvas_point(page, size)
    page.mouse.dblclick(*at(*centres[relabel]))  # a box without its label: the dialog names its class
    dialog = page.locator("#model-box-edit")
    dialog.wait_for(state="visible", timeout=10_000)
    _wait_for_every_class(dialog)
    assert dialog.locator("input[aria-label=Label]").input_value() == short_label(names[relabel])
    _choose_class(page, relabel_to)
    _wait_for_status(page, "#review-status", "0 added, 0 removed, 1 reclassified")
    page.mouse.click(*at(*centres[lonely]))
    started = time.monotonic()
    page.locator("#review-annotator button[aria-label='Remove box']").click()
    _wait_for_status(page, "#review-status", f"{len(boxes) - 1} animals after review .* 1 removed, 1 reclassified")
    assert time.monotonic() - started < 10, "the counts should follow an edit within seconds on a survey photo"
    table = _review_counts(page)

    page.locator("#show-labels input").check()  # the labels back on every box, the edits kept
    page.wait_for_timeout(3000)
    status = _wait_for_status(page, "#review-status", f"{len(boxes) - 1} animals after review .* 1 reclassified")
    assert "0 added, 1 removed, 1 reclassified" in status, status
    assert _review_counts(page) == table
    page.close()


def test_switching_to_a_seal_version_relabels_the_length_setting_and_the_review(browser, tmp_path):
    """A manifest with the sea lion default and a bull/cow/pup version: choosing the seal version names the length
    setting after its reference class (cows), and its count opens in the Review tab with the seal classes: their
    legend, and a new box that takes a seal class, not "female"."""
    from sealion_app.review import short_label
    from tests.test_version_classes import TILE, seal_manifest

    running = start_app(tmp_path, extra_env={"SEALION_MANIFEST": str(seal_manifest(tmp_path / "weights"))})
    try:
        page = _page_with_photo(browser, running, TILE)
        page.set_viewport_size({"width": 1400, "height": 1700})
        assert "Adult female length" in page.locator("#female-length").inner_text()
        page.locator("#model-version input").click()
        page.get_by_role("option", name="es", exact=True).click()
        page.get_by_text("Cow length in this photo (px)").wait_for(timeout=30_000)
        _count(page, "scale auto: cows ≈ 38 px (photo scale 1)")
        page.get_by_role("tab", name="Review").click()
        _wait_for_status(page, "#review-status", "after review")
        legend = page.locator("#review-legend").inner_text()
        assert all(short_label(n) in legend for n in ("bull", "cow", "pup")) and "female" not in legend, legend
        at = _canvas_point(page, (500, 500))
        _draw_box(page, at, (20, 20), (60, 50))
        dialog = page.locator("#model-box-edit")
        dialog.wait_for(state="visible", timeout=10_000)
        assert dialog.locator("input[aria-label=Label]").input_value() in {
            short_label(n) for n in ("bull", "cow", "pup")
        }
        page.close()
    finally:
        running.stop()


def test_the_elephant_seal_version_counts_a_seal_tile(browser, app, tmp_path):
    """The shipped elephant-seal version, chosen in the app, counts a real 500 px drone tile of the pinniped data:
    the heading becomes the version's title and names its classes (sea lion text gone), the counts table lists bull,
    cow and pup (and no sea lion class), auto takes the tile as a whole frame of the seal data (cows ≈ 100 px), the
    boxes are drawn, and with no cross-validation on its card the typical errors say plainly that they are unknown.
    Kept as docs/screenshots/count-elephant-seals.jpg (SEALION_SCREENSHOTS_DIR=docs/screenshots; docs/pinnipeds.md)."""
    from tests.test_version_classes import TILE

    page = _page_with_photo(browser, app, TILE)
    heading = page.locator("#heading")
    assert heading.inner_text().startswith("Steller sea lion counter"), heading.inner_text()
    page.locator("#model-version input").click()
    page.get_by_role("option", name="elephant-seals-v1", exact=True).click()
    page.get_by_text("Cow length in this photo (px)").wait_for(timeout=30_000)
    page.get_by_role("heading", name="Elephant seal counter").wait_for(timeout=30_000)
    said = heading.inner_text()
    assert "northern elephant seals" in said and said.rstrip().endswith("per class: bull, cow, pup."), said
    assert not any(word in said for word in ("sea lion", "Steller", "adult", "juvenile")), said
    assert "typical errors unknown" in page.locator("#counts-table").inner_text()
    status, rows = _count(page, "scale auto: cows ≈ 100 px (photo scale 1)")
    counts = {row[0]: row[1] for row in rows}
    assert list(counts) == ["bull", "cow", "pup", "total"], rows
    assert all(counts[name].split("±")[0].strip().isdigit() for name in counts), rows
    total = int(counts["total"].split("±")[0])
    assert total == sum(int(counts[n].split("±")[0]) for n in ("bull", "cow", "pup")) and total > 0, rows
    assert f"{total} animals in 500×500 px" in status, status
    assert not any(name in page.locator("#counts-table").inner_text() for name in ("female", "juvenile")), rows
    assert all(row[2] == "unknown" for row in rows[:-1]), rows
    assert "elephant-seals-v1 has no cross-validated count errors" in status and "survey photos" not in status
    page.locator("#inspect-image img").first.wait_for(timeout=60_000)
    _keep(page, "count-elephant-seals.jpg", tmp_path, full_page=True)
    page.get_by_role("tab", name="About / data").click()
    intro = page.locator("#about-intro")
    intro.get_by_text("elephant-seals-v1").wait_for(timeout=30_000)
    assert "bull, cow, pup" in intro.inner_text() and "The app counts Steller sea lions" not in intro.inner_text()
    page.close()
