"""Draw class-coloured boxes and a legend of per-class counts on a photo."""

from __future__ import annotations

import cv2
import numpy as np

from detector.classes import BODY_LENGTH_PX, class_color
from detector.counting.results import CountResult
from detector.counting.scale import auto_photo_scale

LINE_PER_PUP_LENGTH = 1 / 20  # box outline width as a fraction of a pup's length in the photo: 2 px on a survey
# original (pups ≈ 40 px), 1 px on a 4x copy; drawn inside the box, so it never covers an animal beside it


def draw_overlay(image: np.ndarray, result: CountResult, legend: bool = True) -> np.ndarray:
    """Return a copy of the RGB ``image`` with the result's boxes and a counts legend.

    Outlines scale with the animals (:func:`line_width`), so at zoom they frame a pup without hiding its
    neighbours; the legend's text scales with the photo, so it reads the same on a 1000 px photo and a 5000 px one.
    """
    canvas = np.ascontiguousarray(image.copy())
    height, width = canvas.shape[:2]
    longest = max(width, height)
    thickness = line_width(result)
    colors = [class_color(name, i) for i, name in enumerate(result.class_names)]
    for box, cid in zip(result.xyxy.round().astype(int), result.class_id, strict=True):
        _outline(canvas, box, colors[int(cid)], thickness)
    if legend:
        _draw_legend(canvas, result, colors, longest)
    return canvas


def _outline(canvas: np.ndarray, box: np.ndarray, color: tuple[int, int, int], width: int) -> None:
    """A ``width``-pixel outline just inside ``box`` (x1, y1, x2, y2), clipped to the canvas. Slicing, not
    cv2.rectangle: OpenCV centres thick lines on the edge and draws them wider than asked (2 → 3 px, 3 → 5 px)."""
    height, full_width = canvas.shape[:2]
    x1, y1 = max(int(box[0]), 0), max(int(box[1]), 0)
    x2, y2 = min(int(box[2]), full_width - 1), min(int(box[3]), height - 1)
    if x2 < x1 or y2 < y1:
        return
    canvas[y1 : min(y1 + width, y2 + 1), x1 : x2 + 1] = color  # top
    canvas[max(y2 - width + 1, y1) : y2 + 1, x1 : x2 + 1] = color  # bottom
    canvas[y1 : y2 + 1, x1 : min(x1 + width, x2 + 1)] = color  # left
    canvas[y1 : y2 + 1, max(x2 - width + 1, x1) : x2 + 1] = color  # right


def line_width(result: CountResult) -> int:
    """Box outline width in pixels: :data:`LINE_PER_PUP_LENGTH` of a pup's length at the photo's scale (the
    count's, else auto's from the photo size), at least 1."""
    scale = result.photo_scale or auto_photo_scale(*result.image_size)[0]
    return max(1, round(BODY_LENGTH_PX["pups"] * scale * LINE_PER_PUP_LENGTH))


def _draw_legend(canvas: np.ndarray, result: CountResult, colors: list[tuple[int, int, int]], longest: int) -> None:
    font = cv2.FONT_HERSHEY_SIMPLEX
    scale = max(0.45, longest / 2000)
    text_thickness = max(1, round(scale * 1.6))
    lines = [(f"{name.replace('_', ' ')}: {count}", colors[i]) for i, (name, count) in enumerate(result.counts.items())]
    lines.append((f"total: {result.total}", (255, 255, 255)))
    sizes = [cv2.getTextSize(text, font, scale, text_thickness)[0] for text, _ in lines]
    line_height = max(h for _, h in sizes) * 1.8
    swatch = int(line_height * 0.6)
    pad = int(line_height * 0.4)
    box_w = int(max(w for w, _ in sizes) + swatch + 3 * pad)
    box_h = int(line_height * len(lines) + pad)
    box_w, box_h = min(box_w, canvas.shape[1]), min(box_h, canvas.shape[0])
    region = canvas[:box_h, :box_w]
    region[:] = (region * 0.35).astype(np.uint8)  # darken behind the legend so text stays readable
    for i, (text, color) in enumerate(lines):
        baseline = int(pad + line_height * (i + 0.75))
        cv2.rectangle(canvas, (pad, baseline - swatch), (pad + swatch, baseline), color, -1)
        cv2.putText(
            canvas, text, (2 * pad + swatch, baseline), font, scale, (255, 255, 255), text_thickness, cv2.LINE_AA
        )
