"""Overlays: class-coloured boxes and a legend, readable at 1000 px and at 5000 px."""

from __future__ import annotations

import numpy as np
import pytest

from detector.classes import BODY_LENGTH_PX, CLASS_COLORS, SEA_LION_CLASSES
from detector.counting.overlay import draw_overlay, line_width
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
    assert thickness >= 1


@pytest.mark.parametrize(("photo_scale", "width", "line"), [(1.0, 5616, 2), (0.25, 1404, 1), (None, 5616, 2)])
def test_outlines_are_thin_next_to_a_pup_at_the_photos_scale(photo_scale, width, line):
    """A pup-sized box (40 px on a survey original, 10 px on a 4x copy) keeps most of its inside clear: its outline
    is a twentieth of a pup's length (the count's scale, else auto's from the photo size), not a share of the photo."""
    height = width * 2 // 3
    pup = BODY_LENGTH_PX["pups"] * (photo_scale or 1.0)
    image = np.full((height, width, 3), 128, dtype=np.uint8)
    x1, y1 = width // 2, height // 2
    box = [x1, y1, x1 + pup, y1 + pup]
    result = CountResult([box], [4], [0.9], SEA_LION_CLASSES, (width, height), photo_scale=photo_scale)
    assert line_width(result) == line
    out = draw_overlay(image, result, legend=False)
    row = out[y1 + int(pup) // 2, x1 - 3 : x1 + int(pup) + 4]
    coloured = (row != 128).any(axis=1)
    assert (row[coloured] == CLASS_COLORS["pups"]).all()  # crisp lines, no blur around them
    assert coloured.sum() == 2 * line, coloured.astype(int)  # two thin edges across the pup, its inside clear
    assert coloured[3 : 3 + line].all() and not coloured[:3].any()  # drawn inside the box, nothing outside it
