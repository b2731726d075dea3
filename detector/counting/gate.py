"""The tile gate: a cheap first pass that finds which tiles can hold animals, so the full pass skips empty ones.

Most tiles of a survey photo are water or bare rock. Before the full pass, the detector itself looks at a coarser
view of the photo (the image at the model's scale, resized by :attr:`GateSettings.coarse`) at a low confidence;
every box it finds, grown by a margin (about one adult male's length, so a pup beside a female is never cut off
and an animal on a seam keeps both its tiles), marks the full-pass tiles it touches. Only those tiles run. Then the
gate grows from the full pass's own detections: a skipped tile that a detection's grown box reaches runs too, until
none does. The coarse view misses animals at the edge of what it saw (a colony running on past its hits); the full
pass finds the first of them, and growing follows them, faint hits (at the gate's confidence) included. Measured on
the 17 full-resolution NOAA photos with v4 (``benchmarks.gate_recall``, docs/benchmarks.md): growing keeps more
photos within 1 % or one animal of the ungated counts and leaves fewer of the biologists' dots in skipped tiles
than the coarse pass alone, for more of the network's tiles. Each growing round is a short batch: it costs only its
tiles because OpenVINO exports are compiled for any batch (:class:`detector.counting.model.Detector`).

A photo enlarged to reach the model's scale (a downsampled copy) is not gated: it has no detail to spare, and its
coarse view misses isolated animals (the shipped example ``noaa_train_6.jpg``, enlarged 2x: 3 of 25 adult females
scored below 0.005 in the coarse view and 0.29-0.44 in the full pass).

The geometry here is pure (arrays in, arrays out); :meth:`detector.counting.model.Detector.count_prepared_many` runs the
coarse pass through the same network and batches as the full one.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from detector.counting.scale import ADULT_FEMALE_LENGTH_PX
from detector.errors import DetectorError


@dataclass(frozen=True)
class GateSettings:
    """How the coarse pass looks.

    ``coarse``: the coarse view's size relative to the image the full pass tiles (0.5: a quarter of its pixels, so
    about a quarter of its tiles). ``conf``: the confidence at which any class in the coarse view marks an animal
    (low: the gate must not lose what the full pass would count; a count with a lower threshold gates at that), also
    the confidence of the full-pass hits that grow the gate.
    ``margin_px``: grown around every coarse box, in pixels of a survey original (the full-resolution photo; about
    1.5 adult female lengths). ``overlap``: of the coarse view's tiles. ``max_enlargement``: photos resized by more
    than this to reach the model's scale are not gated.
    """

    coarse: float = 0.5
    conf: float = 0.015  # the highest of 0.03, 0.02, 0.015, 0.01 that keeps v4's counts (docs/benchmarks.md)
    margin_px: float = 1.5 * ADULT_FEMALE_LENGTH_PX
    overlap: float = 0.2
    max_enlargement: float = 1.0

    def __post_init__(self) -> None:
        if not 0 < self.coarse < 1:
            raise DetectorError(f"gate coarse factor must be between 0 and 1, got {self.coarse}.")
        if not 0 <= self.conf <= 1:
            raise DetectorError(f"gate conf must be between 0 and 1, got {self.conf}.")
        if self.margin_px < 0:
            raise DetectorError(f"gate margin_px must not be negative, got {self.margin_px}.")
        if not 0 <= self.overlap < 1:
            raise DetectorError(f"gate overlap must be at least 0 and below 1, got {self.overlap}.")
        if not self.max_enlargement > 0:
            raise DetectorError(f"gate max_enlargement must be positive, got {self.max_enlargement}.")


DEFAULT_GATE_SETTINGS = GateSettings()


def coarse_size(width: int, height: int, coarse: float) -> tuple[int, int]:
    """The coarse view's (width, height) for an image of ``width`` x ``height``."""
    return max(1, round(width * coarse)), max(1, round(height * coarse))


def tiles_touched(tiles: np.ndarray, boxes: np.ndarray, margin: float) -> np.ndarray:
    """Which ``tiles`` (K, 4 ``x1, y1, x2, y2``) overlap at least one of ``boxes`` (N, 4) grown by ``margin`` on
    every side: a (K,) bool mask (all False without boxes)."""
    tiles = np.asarray(tiles, dtype=np.float32).reshape(-1, 4)
    boxes = np.asarray(boxes, dtype=np.float32).reshape(-1, 4)
    if not len(boxes) or not len(tiles):
        return np.zeros(len(tiles), dtype=bool)
    grown = boxes + np.array([-margin, -margin, margin, margin], dtype=np.float32)
    # strict inequalities: a grown box that only touches a tile's edge does not reach into it
    overlap_x = (grown[None, :, 0] < tiles[:, None, 2]) & (grown[None, :, 2] > tiles[:, None, 0])
    overlap_y = (grown[None, :, 1] < tiles[:, None, 3]) & (grown[None, :, 3] > tiles[:, None, 1])
    return (overlap_x & overlap_y).any(axis=1)


def tiles_to_grow(tiles: np.ndarray, ran: np.ndarray, boxes: np.ndarray, margin: float) -> np.ndarray:
    """The tiles not yet run (``ran``: a (K,) bool mask over ``tiles``) that ``boxes`` found so far, grown by
    ``margin``, reach: a (K,) bool mask."""
    return ~np.asarray(ran, dtype=bool) & tiles_touched(tiles, boxes, margin)


def margin_in_work_pixels(settings: GateSettings, ground_scale: float) -> float:
    """The gate's margin in pixels of the image the model tiles (the photo at the model's ground scale)."""
    return settings.margin_px * ground_scale
