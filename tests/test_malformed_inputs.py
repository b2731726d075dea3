"""Malformed and unusual uploads through the running app: each gets a clear error or a correct result, and the
server keeps answering afterwards. Fixtures are generated here (nothing binary is committed)."""

from __future__ import annotations

import io
import re
import struct
import zlib
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pytest
from gradio_client import Client, handle_file  # a required dependency: a broken install fails
from gradio_client.exceptions import AppError
from PIL import Image

from tests.app_process import start_app
from tests.helpers import REPO_ROOT, SEA_LION_CLASSES

EXAMPLE = REPO_ROOT / "examples" / "noaa_train_1.jpg"


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_header_only(width: int, height: int) -> bytes:
    """A PNG that declares width x height RGB pixels but holds none (no pixel memory is ever allocated)."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", ihdr) + _png_chunk(b"IEND", b"")


def encode(image: Image.Image, fmt: str, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


def noise(width: int, height: int, mode: str = "RGB", seed: int = 0) -> Image.Image:
    rng = np.random.default_rng(seed)
    channels = {"RGB": 3, "RGBA": 4, "CMYK": 4, "L": 1}[mode]
    data = rng.integers(0, 256, (height, width, channels), dtype=np.uint8)
    return Image.fromarray(data[:, :, 0] if channels == 1 else data, mode)


def exif_rotated_jpeg() -> bytes:
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: rotate 90° clockwise to display
    return encode(noise(96, 48), "JPEG", exif=exif)


def animated_gif() -> bytes:
    frames = [noise(64, 40, seed=i).convert("P") for i in range(3)]
    return encode(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)


def palette_png() -> bytes:
    image = noise(60, 40).convert("P", palette=Image.Palette.ADAPTIVE, colors=16)
    return encode(image, "PNG", transparency=0)


def png_16bit() -> bytes:
    data = np.random.default_rng(1).integers(0, 65535, (40, 64), dtype=np.uint16)
    return encode(Image.fromarray(data, "I;16"), "PNG")


def corrupt_png_body() -> bytes:
    data = bytearray(encode(noise(64, 64), "PNG"))
    middle = len(data) // 2
    data[middle : middle + 64] = b"\x00" * 64  # damage the compressed pixel data (and its CRC)
    return bytes(data)


@dataclass(frozen=True)
class Case:
    name: str  # file name uploaded
    build: Callable[[], bytes]
    size: tuple[int, int] | None = None  # expected (width, height) when the photo must be counted
    error: str | None = None  # regex the error must match when it must be refused
    shown: tuple[int, int] | None = None  # size of the annotated JPEG when it cannot be the photo's own size


LIMIT = r"pixels is more than the 89,478,485 pixels allowed \(.*; split it, or set "  # Pillow's default limit
CASES = [
    Case("truncated.jpg", lambda: EXAMPLE.read_bytes()[: EXAMPLE.stat().st_size // 3], error=r"damaged or truncated"),
    Case("text.jpg", lambda: b"This is a text file, not a photo.\n" * 20, error=r"not an image file"),
    Case("empty.jpg", lambda: b"", error=r"empty\.jpg: the file is empty \(0 bytes\)"),  # the same in a batch
    Case("html.png", lambda: b"<html><body><script>alert(1)</script></body></html>", error=r"not an image file"),
    # Over Pillow's own hard limit (2x) and between the two: one limit quoted, and the setting that raises it.
    Case("huge-header.png", lambda: png_header_only(30000, 30000), error=LIMIT + r"SEALION_MAX_PIXELS=900000000 or"),
    Case("big-header.png", lambda: png_header_only(10000, 10000), error=LIMIT + r"SEALION_MAX_PIXELS=100000000 or"),
    Case("corrupt-body.png", corrupt_png_body, error=r"damaged or truncated|cannot decode"),
    Case("svg.svg", lambda: b'<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"/>', error=r"not an image"),
    Case("one-pixel.png", lambda: encode(noise(1, 1), "PNG"), size=(1, 1)),
    Case("sixteen-bit.png", png_16bit, size=(64, 40)),
    Case("rgba.png", lambda: encode(noise(70, 50, "RGBA"), "PNG"), size=(70, 50)),
    Case("grayscale.jpg", lambda: encode(noise(80, 60, "L"), "JPEG"), size=(80, 60)),
    Case("cmyk.jpg", lambda: encode(noise(72, 48, "CMYK"), "JPEG"), size=(72, 48)),
    Case("exif-rotated.jpg", exif_rotated_jpeg, size=(48, 96)),  # shown upright: width and height swap
    Case("animated.gif", animated_gif, size=(64, 40)),
    Case("palette.png", palette_png, size=(60, 40)),
    Case("wide-strip.png", lambda: encode(noise(12000, 3), "PNG"), size=(12000, 3)),
    Case("tall-strip.png", lambda: encode(noise(2, 9000), "PNG"), size=(2, 9000)),
    # Longer than a JPEG side can be: counted at full size, shown shrunk to the JPEG limit of 65500 px.
    Case("beyond-jpeg.png", lambda: encode(noise(70000, 4), "PNG"), size=(70000, 4), shown=(65500, 4)),
    Case("photo.tiff", lambda: encode(noise(64, 48), "TIFF"), size=(64, 48)),
    Case("photo.webp", lambda: encode(noise(64, 48), "WEBP", quality=80), size=(64, 48)),
    Case("photo.bmp", lambda: encode(noise(50, 30), "BMP"), size=(50, 30)),
    Case("photo-named.txt", lambda: encode(noise(40, 30), "PNG"), size=(40, 30)),  # content decides, not the name
]


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    running = start_app(tmp_path_factory.mktemp("app-malformed"))
    yield running
    running.stop()


@pytest.fixture(scope="module")
def client(app) -> Client:
    return Client(app.url, verbose=False, download_files=str(app.log_path.parent / "downloads"))


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_upload_gets_clear_error_or_correct_result(case: Case, app, client, tmp_path):
    path = tmp_path / case.name
    path.write_bytes(case.build())
    if case.error:
        with pytest.raises(AppError) as caught:
            client.predict(handle_file(str(path)), female_length_px=80, api_name="/count")
        message = str(caught.value)
        assert case.name in message, message  # says which file
        assert len(message.splitlines()) == 1 and len(message) < 300, message  # one human sentence
        assert re.search(case.error, message), message
        assert "Traceback" not in message
    else:
        annotated, table, result, _ = client.predict(handle_file(str(path)), female_length_px=80, api_name="/count")
        assert (result["image_size"]["width"], result["image_size"]["height"]) == case.size
        assert list(result["counts"]) == SEA_LION_CLASSES
        assert result["total"] == len(result["detections"])
        with Image.open(annotated) as image:
            assert image.size == (case.shown or case.size) and image.mode == "RGB"
        assert [row[0] for row in table["data"]][-1] == "total"
    # The server still answers, and still counts a good photo.
    assert app.alive()
    assert client.predict(api_name="/model_info")["sha256"] == app.expected_sha256


def test_batch_lists_every_bad_file_and_counts_the_rest(app, client, tmp_path):
    uploads = []
    for case in CASES:
        path = tmp_path / case.name
        path.write_bytes(case.build())
        uploads.append(handle_file(str(path)))
    summary = client.predict(uploads, api_name="/count_batch")[4]
    counted = {r["source"]: (r["image_size"]["width"], r["image_size"]["height"]) for r in summary["results"]}
    failed = {f["file"]: f["error"] for f in summary["failures"]}
    assert counted == {c.name: c.size for c in CASES if c.size}
    assert set(failed) == {c.name for c in CASES if c.error}
    for case in CASES:
        if case.error:
            assert re.search(case.error, failed[case.name]), failed[case.name]
    assert app.alive()


def test_server_survives_after_the_malformed_set(app, client):
    result = client.predict(handle_file(str(EXAMPLE)), female_length_px=20, api_name="/count")[2]
    assert result["image_size"] == {"width": 1404, "height": 936}
    assert "Unexpected failure" not in app.log()  # every bad input was refused on purpose, none by accident


def test_oversized_upload_is_refused_by_the_server(app, tmp_path):
    """Uploads above --max-file-size are refused by Gradio before any decoding."""
    import httpx

    big = tmp_path / "big.jpg"
    with big.open("wb") as handle:  # sparse: no disk used
        handle.truncate(201 * 1024 * 1024)
    with big.open("rb") as handle:
        answer = httpx.post(f"{app.url}gradio_api/upload", files={"files": ("big.jpg", handle)}, timeout=120)
    assert answer.status_code == 413, answer.text[:300]
    assert app.alive()


@pytest.mark.parametrize("valid", [True, False], ids=["valid-png", "garbage"])
def test_base64_data_url_over_raw_http(app, client, valid):
    """Raw HTTP clients may send the image inline as a data URL instead of uploading it."""
    import base64
    import json

    import httpx

    payload = encode(noise(48, 32), "PNG") if valid else b"definitely not a PNG"
    photo = {"url": "data:image/png;base64," + base64.b64encode(payload).decode(), "meta": {"_type": "gradio.FileData"}}
    version = client.predict(api_name="/model_info")["version"]
    with httpx.Client(base_url=app.url, timeout=120) as http:
        body = {"data": [photo, 0.25, 0.45, "auto", 0, 80, version]}
        event_id = http.post("gradio_api/call/count", json=body).json()["event_id"]
        stream = http.get(f"gradio_api/call/count/{event_id}").text
    last = json.loads([line for line in stream.splitlines() if line.startswith("data: ")][-1].removeprefix("data: "))
    if valid:
        assert "event: complete" in stream, stream[:500]
        assert last[2]["image_size"] == {"width": 48, "height": 32}
    else:
        assert "event: error" in stream
        assert "inline-image.png: not an image file" in last["error"]  # its own bytes, judged by the detector
    assert app.alive()
