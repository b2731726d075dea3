"""Bounded work per request: the work budget, 16-bit photos, inline photos, hostile zips through the app."""

from __future__ import annotations

import base64
import io
import json
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from detector import Detector
from detector.counting.images import load_image
from detector.errors import DetectorError
from detector.settings import ModelSettings
from tests.app_process import start_app
from tests.helpers import REPO_ROOT, SEA_LION_CLASSES

EXAMPLE = REPO_ROOT / "examples" / "noaa_train_6.jpg"


@pytest.fixture(scope="module")
def detector(tiny_models) -> Detector:
    return Detector.load(ModelSettings(weights=tiny_models["v1"], device="cpu"), warmup=False)


def test_work_beyond_the_budget_is_refused_up_front_naming_the_setting(detector):
    photo = np.zeros((832, 1248, 3), np.uint8)
    with pytest.raises(DetectorError) as caught:
        detector.count(photo, photo_scale=1 / 16)  # 5 px females: the photo would become 19968×13312 px
    message = str(caught.value)
    assert "19968×13312" in message and "over the 64 MP" in message and "adult female length" in message
    with pytest.raises(DetectorError, match=r"tiles of 32 px .* use a larger tile size"):
        detector.count(photo, photo_scale=0.25, tile_size=32)  # 4992×3328 px in 32 px tiles: ~20,000 tiles
    assert detector.count(photo, photo_scale=1.0, slicing="off").tiles == 1  # a normal request still works


def test_a_16_bit_greyscale_png_is_scaled_to_8_bits_correctly():
    values = np.array([[0, 256, 32768, 65535]], dtype=np.uint16)
    buffer = io.BytesIO()
    Image.fromarray(values).save(buffer, "PNG")
    rgb = load_image(buffer.getvalue())
    assert rgb.dtype == np.uint8 and rgb.shape == (1, 4, 3)
    assert rgb[0, :, 0].tolist() == [0, 1, 128, 255] and (rgb[..., 0] == rgb[..., 2]).all()


@pytest.mark.skipif(not Path("/proc/self/status").is_file(), reason="reads the peak memory from Linux's /proc")
def test_a_huge_16_bit_png_decodes_without_full_size_float_copies(tmp_path):
    path = tmp_path / "big16.png"
    Image.fromarray(np.full((9400, 9400), 40000, np.uint16)).save(path)  # ~170 KB on disk, 88 MP
    code = (  # VmHWM: this process's own peak (ru_maxrss would carry the forking pytest's peak across exec)
        "from detector.counting.images import load_image;"
        f"rgb = load_image({str(path)!r}); assert rgb.shape == (9400, 9400, 3) and rgb[0, 0, 0] == 156;"
        "peak = [l for l in open('/proc/self/status') if l.startswith('VmHWM')][0].split()[1];"
        "print(int(peak) // 1024)"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    peak_mb = int(done.stdout.strip().splitlines()[-1])
    # Pillow's 16-bit buffer (177 MB) + the 8-bit grey (88 MB) + the RGB result (265 MB) + Python: well under 1 GB;
    # the float64 conversion it replaced peaked at +2.4 GB.
    assert peak_mb < 1200, peak_mb


@pytest.fixture(scope="module")
def small_limit_app(tmp_path_factory):
    running = start_app(tmp_path_factory.mktemp("limits"), args=["--max-file-size", "1mb"])
    yield running
    running.stop()


def _call(app, endpoint: str, data: list) -> tuple[str, object]:
    import httpx

    with httpx.Client(base_url=app.url, timeout=300) as http:
        event_id = http.post(f"gradio_api/call/{endpoint}", json={"data": data}).json()["event_id"]
        stream = http.get(f"gradio_api/call/{endpoint}/{event_id}").text
    events = [line.removeprefix("event: ") for line in stream.splitlines() if line.startswith("event: ")]
    last = json.loads([line for line in stream.splitlines() if line.startswith("data: ")][-1].removeprefix("data: "))
    return events[-1], last


def _inline(data: bytes, mime: str = "image/jpeg") -> dict:
    return {"url": f"data:{mime};base64," + base64.b64encode(data).decode(), "meta": {"_type": "gradio.FileData"}}


def _uploaded(app, path) -> dict:
    import httpx

    with httpx.Client(base_url=app.url, timeout=120) as http, path.open("rb") as handle:
        (server_path,) = http.post("gradio_api/upload", files={"files": (path.name, handle)}).json()
    return {"path": server_path, "meta": {"_type": "gradio.FileData"}}


def test_an_inline_photo_is_counted_from_its_own_bytes_and_obeys_the_upload_limit(small_limit_app, tmp_path):
    options = [0, 0.45, "auto", 0, 0, small_limit_app.expected_version]
    inline_event, inline = _call(small_limit_app, "count", [_inline(EXAMPLE.read_bytes()), *options])
    file_event, uploaded = _call(small_limit_app, "count", [_uploaded(small_limit_app, EXAMPLE), *options])
    assert inline_event == file_event == "complete"
    assert inline[2]["counts"] == uploaded[2]["counts"] and inline[2]["total"] == uploaded[2]["total"] > 0
    assert [d["xyxy"] for d in inline[2]["detections"]] == [d["xyxy"] for d in uploaded[2]["detections"]]

    big = np.random.default_rng(0).integers(0, 255, (1200, 1200, 3), np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(big).save(buffer, "PNG")  # ~4 MB: over the 1 MB this app accepts
    event, error = _call(small_limit_app, "count", [_inline(buffer.getvalue(), "image/png"), *options])
    assert event == "error" and "over the 1 MB upload limit" in error["error"] and "--max-file-size" in error["error"]
    again, result = _call(small_limit_app, "count", [_inline(EXAMPLE.read_bytes()), *options])
    assert again == "complete" and result[2]["counts"] == uploaded[2]["counts"]  # and the server keeps serving


def test_a_hostile_zip_loses_nothing_and_the_server_keeps_serving(small_limit_app, tmp_path):
    photo = EXAMPLE.read_bytes()
    archive = tmp_path / "survey.zip"
    with zipfile.ZipFile(archive, "w") as out:
        out.writestr("IMG_1.jpg", photo)
        out.writestr("IMG_1.jpg", photo[: len(photo) // 2])  # same name, truncated content
        out.writestr("../IMG_2.jpg", photo)
        bad = zipfile.ZipInfo("ab.jpg")
        bad.flag_bits |= 0x800
        out.writestr(bad, photo)
    archive.write_bytes(archive.read_bytes().replace(b"ab.jpg", b"\xff\xfe.jpg"))
    event, summary = _call(small_limit_app, "count_batch", [[_uploaded(small_limit_app, archive)], 0, 0.45, "auto",
                                                             0, 0, small_limit_app.expected_version])  # fmt: skip
    assert event == "complete", summary
    data = summary[4]
    counted = [r["source"] for r in data["results"]]
    failed = [f["file"] for f in data["failures"]]
    assert sorted(counted + failed) == sorted(
        ["survey.zip/IMG_1.jpg", "survey.zip/IMG_1.jpg (2)", "survey.zip/../IMG_2.jpg", counted[-1]]
    )
    assert "survey.zip/IMG_1.jpg (2)" in failed and len(counted) == 3  # the truncated copy fails on its own
    assert list(data["results"][0]["counts"]) == SEA_LION_CLASSES
    event, result = _call(
        small_limit_app,
        "count",
        [_uploaded(small_limit_app, EXAMPLE), 0, 0.45, "auto", 0, 0, small_limit_app.expected_version],
    )
    assert event == "complete" and result[2]["total"] > 0
