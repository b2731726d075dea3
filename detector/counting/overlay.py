"""Draw class-coloured boxes and a legend of per-class counts on a photo."""

from __future__ import annotations

import cv2
import numpy as np

from detector.classes import class_color
from detector.counting.results import CountResult


def draw_overlay(image: np.ndarray, result: CountResult, legend: bool = True) -> np.ndarray:
    """Return a copy of the RGB ``image`` with the result's boxes and a counts legend.

    Line width and text size scale with the photo, so the overlay reads the same on a 1000 px
    photo and a 5000 px one.
    """
    canvas = np.ascontiguousarray(image.copy())
    height, width = canvas.shape[:2]
    longest = max(width, height)
    thickness = max(2, round(longest / 800))
    colors = [class_color(name, i) for i, name in enumerate(result.class_names)]
    for box, cid in zip(result.xyxy.round().astype(int), result.class_id, strict=True):
        x1, y1, x2, y2 = (int(v) for v in box)
        cv2.rectangle(canvas, (x1, y1), (x2, y2), colors[int(cid)], thickness, lineType=cv2.LINE_AA)
    if legend:
        _draw_legend(canvas, result, colors, longest)
    return canvas


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
