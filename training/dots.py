"""Biologists' dots → a table of animals (x, y, class).

Two ways to find the dots, because the survey data comes both ways:

* :func:`dots_by_colour` – a dotted photo alone, at (or near) full resolution, where a dot is a 6–7 px disc of
  one of five pure colours: nearest-colour matching plus connected components.
* :func:`dots_by_difference` – a raw photo and its dotted copy at any scale (also 4x downsampled, where a dot has
  blurred to 1–2 px and lost most of its colour to JPEG chroma subsampling): the difference of the two finds the
  dots, and each dot's class is the colour whose mix with the local background best explains the difference.

Also here: blacked-out regions (:func:`exclusion_mask`), a dotted copy rotated 180° or a copy of another photo
(:func:`align_pair`), and painting the dots out of a dotted photo (:func:`paint_out_dots`). Hand-written on
numpy/OpenCV because no library reads this annotation format.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from detector.classes import SEA_LION_CLASSES
from training.errors import PairMismatchError
from training.io import Dots, read_counts, read_rgb

# RGB at dot centres in the full-resolution dotted photos (data README), in SEA_LION_CLASSES order.
DOT_COLOURS: dict[str, tuple[int, int, int]] = {
    "adult_males": (243, 8, 5),  # red
    "subadult_males": (244, 8, 242),  # magenta
    "adult_females": (87, 46, 10),  # brown
    "juveniles": (25, 56, 176),  # blue
    "pups": (38, 174, 21),  # green
}
_PALETTE = np.array([DOT_COLOURS[name] for name in SEA_LION_CLASSES], dtype=np.float32)

# Colour matching at full resolution: a pixel belongs to a dot when its RGB lies within this distance of the dot
# colour. Brown is also a colour of rock and animals, so a brown dot must cover most of its 6-7 px disc.
COLOUR_DISTANCE = 30.0
MIN_DOT_AREA = np.array([6, 6, 18, 6, 6])  # pixels at full resolution, per class
MAX_DOT_AREA = 60

# Pair difference: thresholds on the 3x3-smoothed difference magnitude, adapted to the pair's JPEG noise.
DIFF_THRESHOLD = 12.0
DIFF_NOISE_FACTOR = 3.0
DIFF_WINDOW = 7  # px window over which a blurred dot's colour difference is summed before classifying it
RING_RADIUS, RING_RATIO = 6.0, 2.5  # JPEG ringing: a peak this near a much stronger one is not a dot

# A pair whose best orientation still differs this much (median over pixels of the per-pixel max channel
# difference, 0-255) is not the same photograph.
MISMATCH_MEDIAN_DIFF = 8.0


def _colour_labels(rgb: np.ndarray, max_distance: float) -> np.ndarray:
    """Per pixel: index of the nearest dot colour when within ``max_distance``, else -1."""
    rgb = np.ascontiguousarray(rgb, dtype=np.uint8)
    # Cheap pre-filter with cv2.inRange (a cube around each colour), exact distances only for those pixels.
    margin = int(np.ceil(max_distance))
    candidates = np.zeros(rgb.shape[:2], dtype=np.uint8)
    for colour in _PALETTE.astype(int):
        lower = np.clip(colour - margin, 0, 255).astype(np.uint8)
        upper = np.clip(colour + margin, 0, 255).astype(np.uint8)
        candidates |= cv2.inRange(rgb, lower, upper)
    ys, xs = np.nonzero(candidates)
    label = np.full(rgb.shape[:2], -1, dtype=np.int8)
    if not len(ys):
        return label
    pixels = rgb[ys, xs].astype(np.float32)
    distance = ((pixels[:, None, :] - _PALETTE[None, :, :]) ** 2).sum(axis=2)  # (P, 5)
    nearest = distance.argmin(axis=1)
    close = distance[np.arange(len(nearest)), nearest] < max_distance**2
    label[ys[close], xs[close]] = nearest[close]
    return label


def _dot_components(rgb: np.ndarray, max_distance: float) -> list[tuple[int, np.ndarray, np.ndarray]]:
    """(class, stats, centroids) of each accepted colour component per class."""
    labels = _colour_labels(rgb, max_distance)
    found = []
    for index in range(len(SEA_LION_CLASSES)):
        mask = (labels == index).astype(np.uint8)
        n, _, stats, centroids = cv2.connectedComponentsWithStats(mask, connectivity=8)
        area = stats[1:, cv2.CC_STAT_AREA]
        keep = (area >= MIN_DOT_AREA[index]) & (area <= MAX_DOT_AREA)
        found.append((index, stats[1:][keep], centroids[1:][keep]))
    return found


def dots_by_colour(dotted_rgb: np.ndarray, max_distance: float = COLOUR_DISTANCE) -> Dots:
    """Dots of a full-resolution dotted photo, by nearest dot colour and connected components.

    Needs crisp dots (about 6 px wide): use :func:`dots_by_difference` for downsampled photos.
    """
    xy, cls = [], []
    for index, _, centroids in _dot_components(dotted_rgb, max_distance):
        xy.append(centroids)
        cls.append(np.full(len(centroids), index))
    return Dots(np.concatenate(xy) if xy else np.zeros((0, 2)), np.concatenate(cls) if cls else np.zeros(0))


def dot_pixels(dotted_rgb: np.ndarray, max_distance: float = COLOUR_DISTANCE, grow: int = 3) -> np.ndarray:
    """Boolean mask of the dot discs (grown by ``grow`` px to cover their JPEG halo), for inpainting."""
    labels = _colour_labels(dotted_rgb, max_distance)
    mask = np.zeros(dotted_rgb.shape[:2], dtype=np.uint8)
    for index, stats, _ in _dot_components(dotted_rgb, max_distance):
        for x, y, w, h, _area in stats:
            window = labels[y : y + h, x : x + w] == index
            mask[y : y + h, x : x + w][window] = 1
    if grow:
        mask = cv2.dilate(mask, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * grow + 1, 2 * grow + 1)))
    return mask.astype(bool)


def paint_out_dots(dotted_rgb: np.ndarray, max_distance: float = COLOUR_DISTANCE) -> np.ndarray:
    """The dotted photo with its dots inpainted (OpenCV Telea), so it looks like a raw survey photo."""
    mask = dot_pixels(dotted_rgb, max_distance).astype(np.uint8)
    return cv2.inpaint(np.ascontiguousarray(dotted_rgb), mask, 5, cv2.INPAINT_TELEA)


def exclusion_mask(dotted_rgb: np.ndarray, raw_rgb: np.ndarray | None = None, scale: float = 1.0) -> np.ndarray:
    """Regions the biologists blacked out in the dotted copy (True = excluded: no dots, animals not counted).

    With the raw photo, a region counts only where the raw photo is not itself black there. ``scale`` is the
    photo's scale relative to full resolution (to size the smallest region, 2000 px at full resolution).
    """
    dark = dotted_rgb.max(axis=2) < 16
    if raw_rgb is not None:
        dark &= raw_rgb.max(axis=2) >= 30
    dark = dark.astype(np.uint8)
    radius = max(1, round(4 * scale))
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))
    dark = cv2.morphologyEx(dark, cv2.MORPH_OPEN, kernel)  # drop specks: dark pixels of dots and shadows
    n, labels, stats, _ = cv2.connectedComponentsWithStats(dark, connectivity=8)
    big = np.flatnonzero(stats[:, cv2.CC_STAT_AREA] >= 2000 * scale * scale)
    big = big[big > 0]
    mask = np.isin(labels, big).astype(np.uint8)
    return cv2.dilate(mask, kernel).astype(bool)  # include the JPEG-blurred rim


def _median_difference(a: np.ndarray, b: np.ndarray, ignore: np.ndarray | None = None) -> float:
    diff = np.abs(a.astype(np.int16) - b.astype(np.int16)).max(axis=2)
    return float(np.median(diff[~ignore] if ignore is not None else diff))


@dataclass(frozen=True)
class Alignment:
    """How a dotted copy relates to its raw photo."""

    rotated_180: bool
    median_difference: float  # 0-255, after fixing the orientation
    other_orientation: float

    def upright(self, dotted_rgb: np.ndarray) -> np.ndarray:
        """The dotted copy (at any scale) turned to the raw photo's orientation."""
        return np.ascontiguousarray(dotted_rgb[::-1, ::-1]) if self.rotated_180 else dotted_rgb


def align_pair(raw_rgb: np.ndarray, dotted_rgb: np.ndarray, label: str = "pair") -> Alignment:
    """Check that ``dotted_rgb`` is a dotted copy of ``raw_rgb``, possibly rotated by 180 degrees.

    Raises :class:`PairMismatchError` (with the numbers) when the sizes differ or neither orientation matches.
    """
    if raw_rgb.shape != dotted_rgb.shape:
        raise PairMismatchError(f"{label}: raw {raw_rgb.shape[1::-1]} and dotted {dotted_rgb.shape[1::-1]} differ")
    # Blacked-out pixels differ from the raw photo by design: ignore every near-black dotted pixel.
    straight = _median_difference(raw_rgb, dotted_rgb, dotted_rgb.max(axis=2) < 16)
    turned_copy = dotted_rgb[::-1, ::-1]
    turned = _median_difference(raw_rgb, turned_copy, turned_copy.max(axis=2) < 16)
    rotated = turned < straight
    best, other = (turned, straight) if rotated else (straight, turned)
    if best > MISMATCH_MEDIAN_DIFF:
        raise PairMismatchError(
            f"{label}: the dotted copy is not the raw photo (median pixel difference {best:.0f} as is or rotated "
            f"180 degrees, at most {MISMATCH_MEDIAN_DIFF:.0f} expected); refusing to take dots from it"
        )
    return Alignment(rotated_180=rotated, median_difference=best, other_orientation=other)


def dots_by_difference(raw_rgb: np.ndarray, dotted_rgb: np.ndarray, scale: float = 1.0) -> Dots:
    """Dots of an aligned raw/dotted pair (see :func:`align_pair`), at any scale.

    A dot is a local maximum of the smoothed difference above a threshold that adapts to the pair's JPEG
    noise. Its class: the dot colour ``C`` for which ``a * (C - background)`` (``a`` >= 0, the share of the
    window the blurred dot covers) best explains the difference summed over a small window.
    """
    raw = raw_rgb.astype(np.float32)
    excluded = exclusion_mask(dotted_rgb, raw_rgb, scale)
    excluded = cv2.dilate(excluded.astype(np.uint8), np.ones((7, 7), np.uint8)).astype(bool)
    diff = dotted_rgb.astype(np.float32) - raw
    diff[excluded] = 0
    magnitude = np.linalg.norm(cv2.blur(diff, (3, 3)), axis=2)
    noise = float(np.median(magnitude[~excluded])) if (~excluded).any() else 0.0
    threshold = DIFF_THRESHOLD + DIFF_NOISE_FACTOR * noise
    peaks = (magnitude >= cv2.dilate(magnitude, np.ones((3, 3), np.uint8))) & (magnitude > threshold)
    ys, xs = np.nonzero(peaks)
    if not len(xs):
        return Dots.empty()
    ys, xs = _separate_peaks(ys, xs, magnitude[ys, xs])
    window = (DIFF_WINDOW, DIFF_WINDOW)
    summed = cv2.boxFilter(diff, -1, window, normalize=False)[ys, xs]  # (N, 3)
    background = cv2.blur(raw, window)[ys, xs]  # (N, 3)
    residuals = []
    for colour in _PALETTE:
        direction = colour[None, :] - background  # (N, 3)
        share = np.clip((summed * direction).sum(1) / np.maximum((direction**2).sum(1), 1e-3), 0, None)
        residuals.append(((summed - share[:, None] * direction) ** 2).sum(1))
    class_id = np.argmin(np.stack(residuals, axis=1), axis=1)
    return Dots(np.stack([xs, ys], axis=1), class_id)


def _separate_peaks(
    ys: np.ndarray, xs: np.ndarray, strength: np.ndarray, min_distance: float = 1.5, ring: float = RING_RADIUS
):
    """Drop peaks that are not dots of their own: closer than ``min_distance`` px to a stronger peak (a plateau),
    or within ``ring`` px of a peak RING_RATIO times stronger (JPEG ringing around a strong dot)."""
    order = np.argsort(-strength, kind="stable")
    ys, xs, strength = ys[order], xs[order], strength[order]
    keep = np.ones(len(ys), dtype=bool)
    for i in range(len(ys)):
        if keep[i]:
            dist = np.hypot(ys[i + 1 :] - ys[i], xs[i + 1 :] - xs[i])
            weak = strength[i + 1 :] * RING_RATIO < strength[i]
            keep[i + 1 :] &= ~((dist < min_distance) | ((dist <= ring) & weak))
    return ys[keep], xs[keep]


def dots_from_pair(raw_rgb: np.ndarray, dotted_rgb: np.ndarray, scale: float = 1.0, label: str = "pair") -> Dots:
    """Align the pair (fixing a 180-degree rotation; refusing a mismatch) and find the dots on the raw photo."""
    return dots_by_difference(raw_rgb, align_pair(raw_rgb, dotted_rgb, label).upright(dotted_rgb), scale)


def extraction_report(root: str) -> dict:
    """Dot counts against the official counts for a NOAA-sample folder: full-resolution dotted photos by colour,
    downsampled pairs by difference (refused pairs listed with the reason)."""
    from pathlib import Path

    root_path = Path(root)
    official = read_counts(root_path / "counts.csv")
    report: dict = {"fullres_colour": {}, "downsampled_pairs": {}}
    for path in sorted((root_path / "fullres-dotted").glob("*.jpg"), key=lambda p: int(p.stem)):
        report["fullres_colour"][path.stem] = dots_by_colour(read_rgb(path)).counts()
    small = root_path / "downsampled"
    for path in sorted((small / "TrainDotted").glob("*.jpg"), key=lambda p: int(p.stem)):
        raw = read_rgb(small / "Train" / path.name)
        try:
            report["downsampled_pairs"][path.stem] = dots_from_pair(raw, read_rgb(path), 0.25, path.stem).counts()
        except PairMismatchError as exc:
            report["downsampled_pairs"][path.stem] = str(exc)
    report["official"] = {k: v for k, v in official.items()}
    return report


def _print_table(title: str, found: dict, official: dict) -> None:
    print(title)
    print(f"{'id':>4}  " + "  ".join(f"{name[:14]:>14}" for name in SEA_LION_CLASSES))
    for photo_id, counts in found.items():
        if isinstance(counts, str):
            print(f"{photo_id:>4}  refused: {counts}")
            continue
        truth = official.get(photo_id, {})
        cells = [f"{counts[n]:>4}/{truth.get(n, '?'):>4} ({counts[n] - truth.get(n, 0):+4d})" for n in SEA_LION_CLASSES]
        print(f"{photo_id:>4}  " + "  ".join(f"{c:>14}" for c in cells))


def main(argv: list[str] | None = None) -> int:
    import argparse
    import json

    parser = argparse.ArgumentParser(prog="python -m training.dots", description="Dot extraction vs official counts")
    parser.add_argument("--data", required=True, help="NOAA sample folder (fullres-dotted/, downsampled/, counts.csv)")
    parser.add_argument("--json", help="also write the report here")
    args = parser.parse_args(argv)
    report = extraction_report(args.data)
    _print_table("full-resolution dotted photos, dots by colour: found/official (error)", report["fullres_colour"],
                 report["official"])  # fmt: skip
    _print_table("downsampled 4x pairs, dots by difference: found/official (error)", report["downsampled_pairs"],
                 report["official"])  # fmt: skip
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(report, handle, indent=2)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
