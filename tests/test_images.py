"""Reading inputs: every supported form becomes an RGB uint8 array; bad files give one clear error."""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from detector.counting.images import load_image
from detector.errors import ImageLoadError
from detector.settings import ModelSettings


def png_bytes(image: Image.Image, **kwargs) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=kwargs.pop("format", "PNG"), **kwargs)
    return buffer.getvalue()


def test_rgb_jpeg_path(tmp_path):
    path = tmp_path / "a.jpg"
    Image.new("RGB", (40, 30), (200, 10, 10)).save(path)
    array = load_image(path)
    assert array.shape == (30, 40, 3) and array.dtype == np.uint8
    assert array[15, 20, 0] > 150 and array[15, 20, 2] < 60


def test_exif_rotation_is_applied(tmp_path):
    image = Image.new("RGB", (60, 20), (0, 0, 0))
    image.paste((255, 255, 255), (0, 0, 10, 20))  # white band on the left
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90° clockwise to display"
    path = tmp_path / "rotated.jpg"
    image.save(path, exif=exif)
    array = load_image(path)
    assert array.shape[:2] == (60, 20)  # displayed portrait
    assert array[:10].mean() > 200  # the white band is now on top


def test_grayscale_rgba_palette_and_16_bit():
    gray = load_image(png_bytes(Image.new("L", (5, 4), 77)))
    assert gray.shape == (4, 5, 3) and (gray == 77).all()
    rgba = load_image(png_bytes(Image.new("RGBA", (5, 4), (255, 0, 0, 0))))
    assert (rgba == 255).all()  # fully transparent → white background
    palette = load_image(png_bytes(Image.new("P", (5, 4), 3)))
    assert palette.shape == (4, 5, 3)
    deep = Image.fromarray(np.full((4, 5), 65535, dtype=np.uint16))
    assert (load_image(png_bytes(deep)) == 255).all()


def test_cmyk_jpeg_and_animated_gif():
    cmyk = load_image(png_bytes(Image.new("CMYK", (8, 8), (0, 255, 255, 0)), format="JPEG"))
    assert cmyk.shape == (8, 8, 3) and cmyk[4, 4, 0] > 200 and cmyk[4, 4, 1] < 60
    frames = [Image.new("RGB", (6, 6), color) for color in ((255, 0, 0), (0, 0, 255))]
    buffer = io.BytesIO()
    frames[0].save(buffer, format="GIF", save_all=True, append_images=frames[1:])
    gif = load_image(buffer.getvalue())
    assert gif.shape == (6, 6, 3) and gif[0, 0, 0] > 200  # the first frame


@pytest.mark.parametrize(
    ("array", "expected_shape"),
    [
        (np.zeros((7, 9), np.uint8), (7, 9, 3)),
        (np.zeros((7, 9, 1), np.uint8), (7, 9, 3)),
        (np.zeros((7, 9, 4), np.uint8), (7, 9, 3)),
        (np.full((7, 9, 3), 4096, np.uint16), (7, 9, 3)),
    ],
)
def test_numpy_inputs(array, expected_shape):
    assert load_image(array).shape == expected_shape


def png_header_only(width: int, height: int) -> bytes:
    """A valid PNG signature and IHDR claiming a size, with no pixel data (a decompression bomb's header)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0")) + chunk(b"IEND", b"")


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        (b"", "empty"),
        (b"this is not an image", "not an image"),
        (png_header_only(30000, 30000), "pixels"),
    ],
)
def test_bad_bytes_give_one_clear_line(payload, message):
    with pytest.raises(ImageLoadError, match=message) as caught:
        load_image(payload, label="upload.jpg") if payload else load_image(np.zeros((0, 5)), label="upload.jpg")
    assert "\n" not in str(caught.value)


def test_truncated_jpeg_and_missing_and_empty_files(tmp_path):
    full = png_bytes(Image.fromarray(np.random.default_rng(0).integers(0, 255, (200, 200, 3), np.uint8)), format="JPEG")
    truncated = tmp_path / "truncated.jpg"
    truncated.write_bytes(full[: len(full) // 3])
    with pytest.raises(ImageLoadError, match="truncated.jpg: the image is damaged or truncated"):
        load_image(truncated)
    (tmp_path / "empty.jpg").write_bytes(b"")
    with pytest.raises(ImageLoadError, match="0 bytes"):
        load_image(tmp_path / "empty.jpg")
    with pytest.raises(ImageLoadError, match="no such file"):
        load_image(tmp_path / "missing.jpg")


def test_unsupported_array_types_are_refused():
    with pytest.raises(ImageLoadError, match="float"):
        load_image(np.zeros((4, 4, 3), np.float32))
    with pytest.raises(ImageLoadError, match="shape"):
        load_image(np.zeros((4, 4, 2), np.uint8))
    with pytest.raises(ImageLoadError, match="Unsupported input type"):
        load_image(12)  # type: ignore[arg-type]


def test_a_jpeg_decodes_at_the_size_it_will_be_used(tmp_path):
    from detector.counting.images import header_size

    pixels = np.random.default_rng(3).integers(0, 255, (800, 1200, 3), np.uint8)
    jpeg, png = tmp_path / "a.jpg", tmp_path / "a.png"
    Image.fromarray(pixels).save(jpeg, quality=90)
    Image.fromarray(pixels).save(png)
    assert load_image(jpeg, reduce=0.5).shape == (400, 600, 3)  # Pillow's draft mode: half of each side
    assert load_image(jpeg, reduce=0.3).shape == (400, 600, 3)  # never below what was asked for (1/4 would be)
    assert load_image(jpeg, reduce=0.1).shape == (100, 150, 3)  # 1/8: the smallest draft scale
    assert load_image(jpeg).shape == (800, 1200, 3) and load_image(png, reduce=0.5).shape == (800, 1200, 3)
    exif = Image.Exif()
    exif[0x0112] = 6  # rotated: the header size is reported upright
    Image.fromarray(pixels).save(rotated := tmp_path / "r.jpg", exif=exif)
    assert header_size(rotated) == (800, 1200) and header_size(jpeg.read_bytes()) == (1200, 800)
    assert header_size(b"not an image") is None and header_size(pixels) is None


def test_counts_from_a_survey_jpeg_decoded_small_match_a_full_decode():
    """The shipped model on a survey-size JPEG: decoded at half size (its working scale) vs decoded in full and
    shrunk — the per-class counts agree within 5 % or two animals (v3 counts pups, whose scores sit near its
    threshold: the two resamplings move 3 of ~75; v2 agreed within 1 % because it found none). With torch, so the
    decoding alone is compared:
    the bf16 of the default CPU runtime adds its own rounding (tests/test_runtimes.py holds that to torch)."""
    from detector import Detector
    from tests.helpers import REPO_ROOT

    detector = Detector.load(ModelSettings(device="cpu", runtime="torch"))
    with Image.open(REPO_ROOT / "examples" / "noaa_train_0.jpg") as small:
        survey = small.resize((small.width * 4, small.height * 4))  # 5616x3744: a survey original's size
    buffer = io.BytesIO()
    survey.save(buffer, "JPEG", quality=90)
    drafted = detector.count(buffer.getvalue())
    full = detector.count(load_image(buffer.getvalue()))
    assert drafted.photo_scale == full.photo_scale == 1.0 and drafted.total > 100
    for name, count in full.counts.items():
        assert abs(drafted.counts[name] - count) <= max(2, 0.05 * count), (drafted.counts, full.counts)
