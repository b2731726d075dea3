"""Read any supported input (path, bytes, PIL image, numpy array) as an RGB uint8 array, safely."""

from __future__ import annotations

import io
import math
import os
import re
import sys
import warnings
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from detector.errors import ImageLoadError
from detector.settings import ENV_MAX_PIXELS

ImageInput = str | os.PathLike | bytes | Image.Image | np.ndarray

# Pillow's decompression-bomb limit (~89 MP, e.g. 9460 x 9460) unless an entry point sets another
# (SEALION_MAX_PIXELS, through set_max_pixels); a survey photo is ~17 MP.
DEFAULT_MAX_PIXELS = int(Image.MAX_IMAGE_PIXELS or 0)
MAX_PIXELS = DEFAULT_MAX_PIXELS
SUPPORTED_SUFFIXES = (".jpg", ".jpeg", ".png", ".tif", ".tiff", ".bmp", ".webp", ".gif", ".heic", ".heif")

try:  # HEIC/HEIF photos (phones, some drones) when the optional pi-heif plugin is installed
    from pi_heif import register_heif_opener

    register_heif_opener()
except ImportError:  # pragma: no cover - optional
    pass


def set_max_pixels(limit: int | None) -> None:
    """The largest image (in pixels) this process decodes; None: Pillow's default. Called by entry points."""
    global MAX_PIXELS
    MAX_PIXELS = int(limit or DEFAULT_MAX_PIXELS)
    Image.MAX_IMAGE_PIXELS = max(MAX_PIXELS, DEFAULT_MAX_PIXELS)


def _pil_open(stream: io.BytesIO | Path) -> Image.Image:
    """Pillow's own ``Image.open``.

    Importing ultralytics replaces ``PIL.Image.open`` with a wrapper that, on the first file Pillow cannot identify,
    tries to pip-install pi-heif (a network call at request time) and, offline, raises ModuleNotFoundError
    instead of UnidentifiedImageError.
    """
    patches = sys.modules.get("ultralytics.utils.patches")
    opener = getattr(patches, "_image_open", None) or Image.open
    return opener(stream)


def too_many_pixels(label: str, pixels: int, size: str = "") -> ImageLoadError:
    """The one message for a photo over the pixel limit: the limit in force and the setting that raises it."""
    return ImageLoadError(
        f"{label}: {size or f'{pixels:,} pixels'} is more than the {MAX_PIXELS:,} pixels allowed (a decompression "
        f"bomb or a mosaic; split it, or set {ENV_MAX_PIXELS}={pixels} or more to count it)."
    )


def _check_size(width: int, height: int, label: str) -> None:
    if width < 1 or height < 1:
        raise ImageLoadError(f"{label}: the image is empty ({width}x{height} pixels).")
    if width * height > MAX_PIXELS:
        raise too_many_pixels(label, width * height, f"{width}x{height} pixels")


ROWS_PER_CHUNK = 512  # wide greyscale conversions run a band of rows at a time, so no full-size float copy exists


def _greyscale_to_8bit(image: Image.Image) -> np.ndarray:
    """16-bit or 32-bit greyscale → uint8, a band of rows at a time: only Pillow's own buffer is full size."""
    width, height = image.size
    high = float(image.getextrema()[1]) if width and height else 0.0
    grey = np.empty((height, width), dtype=np.uint8)
    for top in range(0, height, ROWS_PER_CHUNK):
        band = np.asarray(image.crop((0, top, width, min(height, top + ROWS_PER_CHUNK))))
        if band.dtype == np.uint16 or band.dtype.str.endswith("u2"):
            grey[top : top + ROWS_PER_CHUNK] = band >> 8 if high > 255 else band
        else:  # 32-bit integer or float greyscale
            scaled = band.astype(np.float32) * (255.0 / 65535.0 if high > 255 else 1.0)
            grey[top : top + ROWS_PER_CHUNK] = np.clip(scaled, 0, 255)
    return grey


def _to_rgb_array(image: Image.Image) -> np.ndarray:
    if image.mode in {"I;16", "I;16B", "I;16L", "I", "F"}:  # 16-bit or float greyscale: scale to 8 bits
        grey = _greyscale_to_8bit(image)
        return np.repeat(grey[:, :, None], 3, axis=2)
    if image.mode in {"RGBA", "LA", "PA"} or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        image = Image.alpha_composite(background, rgba)
    return np.asarray(image.convert("RGB"))


def load_pil(image: Image.Image, label: str = "image", owned: bool = False) -> np.ndarray:
    """A PIL image as an RGB array. ``owned``: the image is ours to change (rotated in place, no full-size copy)."""
    _check_size(image.width, image.height, label)
    try:
        if owned:
            ImageOps.exif_transpose(image, in_place=True)
        else:
            image = ImageOps.exif_transpose(image) or image
        if getattr(image, "n_frames", 1) > 1:
            image.seek(0)  # animated: count the first frame
        return _to_rgb_array(image)
    except (OSError, ValueError, SyntaxError) as exc:
        raise ImageLoadError(f"{label}: cannot decode the image ({exc}).") from exc


def load_array(array: np.ndarray, label: str = "array") -> np.ndarray:
    """Normalise a numpy image (HxW, HxWx1/3/4; uint8 or uint16; RGB order) to HxWx3 uint8."""
    array = np.asarray(array)
    if array.ndim == 2:
        array = array[:, :, None]
    if array.ndim != 3 or array.shape[2] not in (1, 3, 4):
        raise ImageLoadError(f"{label}: expected an HxW or HxWxC (C=1,3,4) array, got shape {array.shape}.")
    _check_size(array.shape[1], array.shape[0], label)
    if array.dtype == np.uint16:
        array = (array >> 8).astype(np.uint8)
    elif array.dtype != np.uint8:
        raise ImageLoadError(f"{label}: expected uint8 or uint16 pixels, got {array.dtype}.")
    if array.shape[2] == 1:
        array = np.repeat(array, 3, axis=2)
    elif array.shape[2] == 4:
        alpha = array[:, :, 3:4].astype(np.float32) / 255.0
        array = (array[:, :, :3] * alpha + 255 * (1 - alpha)).astype(np.uint8)
    return np.ascontiguousarray(array)


def load_image(source: ImageInput, label: str | None = None, reduce: float = 1.0) -> np.ndarray:
    """Any supported input → HxWx3 uint8 RGB array, EXIF orientation applied.

    ``reduce`` < 1 lets a JPEG decode at a smaller size (Pillow's draft mode: 1/2, 1/4 or 1/8 of each side, never
    below ``reduce`` times it) for a caller that resizes to that scale anyway; other formats decode in full.
    Raises :class:`ImageLoadError` with a one-line reason for anything that is not a readable photo.
    """
    if isinstance(source, np.ndarray):
        return load_array(source, label or "array")
    if isinstance(source, Image.Image):
        return load_pil(source, label or "image")
    if isinstance(source, bytes):
        stream: io.BytesIO | Path = io.BytesIO(source)
        label = label or "uploaded bytes"
        if not source:
            raise ImageLoadError(f"{label}: the file is empty (0 bytes).")
    elif isinstance(source, (str, os.PathLike)):
        stream = Path(source)
        label = label or stream.name
        if not stream.is_file():
            raise ImageLoadError(f"{label}: no such file.")
        if stream.stat().st_size == 0:
            raise ImageLoadError(f"{label}: the file is empty (0 bytes).")
    else:
        raise ImageLoadError(f"Unsupported input type {type(source).__name__}; give a path, bytes, PIL image or array.")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with _pil_open(stream) as image:
                _check_size(image.width, image.height, label)
                if reduce < 1 and image.format == "JPEG":
                    image.draft(
                        "RGB", (max(1, math.ceil(image.width * reduce)), max(1, math.ceil(image.height * reduce)))
                    )
                image.load()
                return load_pil(image, label, owned=True)
    except ImageLoadError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:  # Pillow's check at open
        found = re.search(r"\((\d+) pixels\)", str(exc))
        raise too_many_pixels(label, int(found[1]) if found else MAX_PIXELS + 1) from exc
    except UnidentifiedImageError as exc:
        raise ImageLoadError(f"{label}: not an image file (or an unsupported format).") from exc
    except (OSError, ValueError, SyntaxError) as exc:
        raise ImageLoadError(f"{label}: the image is damaged or truncated ({exc}).") from exc


def resize_to(rgb: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Resize to exactly ``size`` (width, height), area averaging when shrinking; the same array at that size."""
    height, width = rgb.shape[:2]
    if (width, height) == tuple(size):
        return rgb
    shrinking = size[0] * size[1] < width * height
    return cv2.resize(rgb, tuple(size), interpolation=cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR)


def header_size(source: ImageInput, label: str | None = None) -> tuple[int, int] | None:
    """A file's (width, height) after EXIF rotation, read from its header only; None for arrays, PIL images, and
    anything whose header cannot be read (the full loader then gives the reason)."""
    if not isinstance(source, (bytes, str, os.PathLike)):
        return None
    try:
        stream = io.BytesIO(source) if isinstance(source, bytes) else Path(source)
        with _pil_open(stream) as image:
            width, height = image.size
            orientation = image.getexif().get(0x0112, 1)
    except Exception:  # noqa: BLE001 - the loader reports unreadable files with its own clear message
        return None
    return (height, width) if orientation in (5, 6, 7, 8) else (width, height)


def rescale(rgb: np.ndarray, factor: float) -> np.ndarray:
    """Resize an image by ``factor`` (area averaging when shrinking); the same array when factor is ~1.

    The one resize used for training chips, inference and the benchmarks, so all of them see the same pixels.
    """
    if abs(factor - 1) <= 1e-3:
        return rgb
    height, width = rgb.shape[:2]
    return resize_to(rgb, (max(1, round(width * factor)), max(1, round(height * factor))))


def greyscale(rgb: np.ndarray) -> np.ndarray:
    """The image's luma (ITU-R 601, as Pillow's "L" and OpenCV use) in all three channels."""
    import cv2

    grey = cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2GRAY)
    return np.repeat(grey[:, :, None], 3, axis=2)
