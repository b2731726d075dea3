"""Overlays: class-coloured boxes and a legend, readable at 1000 px and at 5000 px."""

from __future__ import annotations

import numpy as np
import pytest

from detector.classes import CLASS_COLORS, SEA_LION_CLASSES
from detector.counting.overlay import draw_overlay
from detector.counting.results import CountResult


@pytest.mark.parametrize("width", [1000, 5000])
def test_boxes_take_their_class_colour_and_the_legend_darkens_the_corner(width):
    height = width * 2 // 3
    image = np.full((height, width, 3), 128, dtype=np.uint8)
    box = [width * 0.6, height * 0.6, width * 0.7, height * 0.7]
    result = CountResult([box], [4], [0.9], SEA_LION_CLASSES, (width, height))
    out = draw_overlay(image, result)
    assert out.shape == image.shape and (image == 128).all()  # the input is untouched
    x1, y1 = int(box[0]), int(box[1])
    assert tuple(out[y1 + 5, x1]) == CLASS_COLORS["pups"]  # left edge of the box
    assert out[int(height * 0.65), int(width * 0.65)].tolist() == [128, 128, 128]  # inside stays clear
    corner = out[: height // 20, : width // 20]
    assert corner.mean() < 100  # legend background
    thickness = (out[y1 + 5, x1 : x1 + 20] == CLASS_COLORS["pups"]).all(axis=1).sum()
    assert thickness >= (4 if width == 5000 else 1)  # lines grow with the photo
