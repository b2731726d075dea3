"""Photo scale: auto from the photo's size, the adult-female length unit, and the warnings (pure functions)."""

from __future__ import annotations

import pytest

from detector.counting.scale import (
    ADULT_FEMALE_LENGTH_PX,
    auto_photo_scale,
    choose_photo_scale,
    scale_from_female_length,
    scale_warnings,
)


@pytest.mark.parametrize(
    ("size", "expected"),
    [
        ((4992, 3328), 1.0),  # a survey original, either camera
        ((5616, 3744), 1.0),
        ((3328, 4992), 1.0),  # portrait: the long side counts
        ((1248, 832), 0.25),  # the NOAA sample's downsampled copies of both cameras
        ((1404, 936), 0.25),
        ((2496, 1664), 0.5),
        ((624, 416), 0.125),
        ((1400, 933), 0.25),  # within 2 % of 5616/4 (an export that rounded the size)
    ],
)
def test_auto_recognises_originals_and_whole_factor_copies(size, expected):
    scale, matched = auto_photo_scale(*size)
    assert matched and scale == pytest.approx(expected)


def test_auto_guesses_other_sizes_against_the_common_original_and_says_so():
    scale, matched = auto_photo_scale(1000, 800)
    assert not matched and scale == pytest.approx(1000 / 4992)
    assert auto_photo_scale(100, 80) == (1 / 16, False)  # a thumbnail is not enlarged past a 16x copy's scale
    chosen = choose_photo_scale(None, 1000, 800)
    warnings = scale_warnings(chosen, total=5, size=(1000, 800))
    assert len(warnings) == 1 and "1000×800" in warnings[0] and "measure one adult female" in warnings[0]


def test_female_length_is_the_photo_scale_in_pixels():
    assert scale_from_female_length(ADULT_FEMALE_LENGTH_PX) == 1.0
    assert scale_from_female_length(20) == 0.25
    assert choose_photo_scale(scale_from_female_length(20), 1248, 832).adult_female_px == pytest.approx(20)
    for bad in (0, -5, 4.9, float("nan"), float("inf")):  # below 5 px (photo scale 1/16) nothing is countable
        with pytest.raises(ValueError, match="adult female length must be at least 5 pixels"):
            scale_from_female_length(bad)


def test_a_manual_scale_far_from_auto_warns_and_a_close_one_does_not():
    too_large = choose_photo_scale(1.0, 1248, 832)  # the case that zeroed a count: a 4x copy taken as an original
    assert (too_large.source, too_large.auto) == ("manual", 0.25)
    warnings = scale_warnings(too_large, total=0, size=(1248, 832))
    assert "4.0× smaller" in warnings[0] and "auto would use adult females ≈ 20 px" in warnings[0]
    assert "No animals found" in warnings[1]
    too_small = scale_warnings(choose_photo_scale(0.1, 4992, 3328), total=3, size=(4992, 3328))
    assert len(too_small) == 1 and "larger than it learned them" in too_small[0]
    assert scale_warnings(choose_photo_scale(0.27, 1404, 936), total=0, size=(1404, 936)) == []  # 0.27 vs 0.25: fine
    assert scale_warnings(choose_photo_scale(None, 1404, 936), total=0, size=(1404, 936)) == []  # an empty beach


def test_bad_manual_scales_are_refused():
    for bad in (0, -1, 0.05, float("nan")):
        with pytest.raises(ValueError, match="photo_scale must be at least 0.0625"):
            choose_photo_scale(bad, 100, 100)
