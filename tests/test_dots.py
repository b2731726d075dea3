"""Dot extraction: synthetic dotted photos with known dots, and the NOAA sample's quirks on real photos."""

from __future__ import annotations

import csv

import cv2
import numpy as np
import pytest

from detector.classes import SEA_LION_CLASSES
from training.dataset import read_rgb
from training.dots import (
    DOT_COLOURS,
    Dots,
    PairMismatchError,
    align_pair,
    dots_by_colour,
    dots_by_difference,
    dots_from_pair,
    exclusion_mask,
    paint_out_dots,
)


def texture(height: int, width: int, seed: int = 0) -> np.ndarray:
    """A smooth, rock-like random RGB background (no pixel near a dot colour)."""
    rng = np.random.default_rng(seed)
    small = rng.integers(70, 200, size=(height // 16 + 1, width // 16 + 1, 3), dtype=np.uint8)
    image = cv2.resize(small, (width, height), interpolation=cv2.INTER_CUBIC)
    grey = image.mean(axis=2, keepdims=True)
    return np.clip(0.3 * image + 0.7 * grey, 0, 255).astype(np.uint8)  # desaturated like rock


def draw_dots(image: np.ndarray, dots: list[tuple[int, int, int]], radius: int = 3) -> np.ndarray:
    out = image.copy()
    for x, y, cls in dots:
        cv2.circle(out, (x, y), radius, DOT_COLOURS[SEA_LION_CLASSES[cls]], -1)
    return out


def jpeg(image: np.ndarray, quality: int = 95) -> np.ndarray:
    ok, data = cv2.imencode(".jpg", image[:, :, ::-1], [cv2.IMWRITE_JPEG_QUALITY, quality])
    assert ok
    return cv2.imdecode(data, cv2.IMREAD_COLOR)[:, :, ::-1]


KNOWN = [(60 + 90 * i, 80 + 70 * (i % 4), i % 5) for i in range(15)]  # 3 dots of each class


def test_dots_by_colour_finds_every_dot_with_its_class_and_centre():
    dotted = jpeg(draw_dots(texture(480, 1500), KNOWN))
    dots = dots_by_colour(dotted)
    assert dots.counts() == {name: 3 for name in SEA_LION_CLASSES}
    for x, y, cls in KNOWN:
        dist = np.hypot(dots.xy[:, 0] - x, dots.xy[:, 1] - y)
        nearest = int(dist.argmin())
        assert dist[nearest] < 1.0 and dots.class_id[nearest] == cls


def test_blacked_out_region_is_excluded_and_its_dots_ignored():
    raw = texture(600, 800, seed=1)
    dotted = draw_dots(raw, [(100, 100, 2), (700, 500, 0)])
    dotted[300:600, 400:800] = 0  # the biologists' blackout covers the second dot
    mask = exclusion_mask(jpeg(dotted))
    assert mask[450, 600] and not mask[100, 100]
    assert 0.2 < mask.mean() < 0.3
    assert Dots(np.array([[100, 100], [700, 500]]), np.array([2, 0])).outside(mask).counts()["adult_males"] == 0


def test_paint_out_dots_leaves_no_dot_colour():
    dotted = jpeg(draw_dots(texture(400, 1500, seed=2), KNOWN))
    painted = paint_out_dots(dotted)
    assert len(dots_by_colour(painted)) == 0
    assert np.abs(painted.astype(int) - dotted.astype(int)).max(axis=2).mean() < 2  # only the dots changed


def downsampled_pair(seed: int = 3) -> tuple[np.ndarray, np.ndarray]:
    """A raw/dotted pair made like the Kaggle downsampled copies: dots drawn at full size, then shrunk 4x + JPEG."""
    raw = texture(1200, 1600, seed)
    dots = [(100 + 140 * (i % 10), 120 + 220 * (i // 10), i % 4) for i in range(40)]  # no pups (see report)
    shrink = lambda im: jpeg(cv2.resize(im, (400, 300), interpolation=cv2.INTER_AREA), 90)  # noqa: E731
    return shrink(raw), shrink(draw_dots(raw, dots))


def test_dots_by_difference_on_a_downsampled_pair():
    raw, dotted = downsampled_pair()
    dots = dots_by_difference(raw, dotted, scale=0.25)
    counts = dots.counts()
    # 1-2 px dots after 4x shrinking + JPEG: near-exact, not exact (JPEG ringing can add a stray dot).
    assert 38 <= len(dots) <= 43 and counts["pups"] <= 2, counts
    assert all(abs(counts[name] - 10) <= 2 for name in SEA_LION_CLASSES[:4]), counts


def test_rotated_dotted_copy_is_detected_and_fixed():
    raw, dotted = downsampled_pair(seed=4)
    turned = np.ascontiguousarray(dotted[::-1, ::-1])
    assert align_pair(raw, turned).rotated_180 and not align_pair(raw, dotted).rotated_180
    assert dots_from_pair(raw, turned, 0.25).counts() == dots_from_pair(raw, dotted, 0.25).counts()


def test_a_different_photograph_is_refused_with_a_message():
    raw, _ = downsampled_pair(seed=5)
    _, other = downsampled_pair(seed=6)
    with pytest.raises(PairMismatchError, match="not the raw photo"):
        dots_from_pair(raw, other, 0.25, label="photo x")
    with pytest.raises(PairMismatchError, match="differ"):
        align_pair(raw, other[:-1])


# --- the real NOAA sample (skips without ../shared) -------------------------------------------------------------


def official_counts(shared_data) -> dict[str, dict[str, int]]:
    with open(shared_data / "counts.csv", newline="") as handle:
        return {row["train_id"]: {n: int(row[n]) for n in SEA_LION_CLASSES} for row in csv.DictReader(handle)}


@pytest.mark.parametrize("photo_id", ["2", "3", "8"])
def test_fullres_dots_match_official_counts_within_one(shared_data, photo_id):
    counts = dots_by_colour(read_rgb(shared_data / "fullres-dotted" / f"{photo_id}.jpg")).counts()
    expected = official_counts(shared_data)[photo_id]
    assert all(abs(counts[n] - expected[n]) <= 1 for n in SEA_LION_CLASSES), (counts, expected)


def test_sample_quirks_rotated_7_and_mismatched_3(shared_data):
    small = shared_data / "downsampled"
    load = lambda folder, pid: read_rgb(small / folder / f"{pid}.jpg")  # noqa: E731
    assert align_pair(load("Train", "7"), load("TrainDotted", "7")).rotated_180
    assert not align_pair(load("Train", "2"), load("TrainDotted", "2")).rotated_180
    with pytest.raises(PairMismatchError):
        align_pair(load("Train", "3"), load("TrainDotted", "3"))
    # Once fixed, the rotated pair gives counts close to the official ones (no pups to speak of in photo 7).
    counts = dots_from_pair(load("Train", "7"), load("TrainDotted", "7"), 0.25).counts()
    expected = official_counts(shared_data)["7"]
    assert sum(abs(counts[n] - expected[n]) for n in SEA_LION_CLASSES) <= 15, (counts, expected)
