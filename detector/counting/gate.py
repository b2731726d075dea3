"""The tile gate: a cheap first pass that finds which tiles can hold animals, so the full pass skips empty ones.

Most tiles of a survey photo are water or bare rock. Before the full pass, the detector itself looks at a coarser
view of the photo (the image at the model's scale, resized by :attr:`GateSettings.coarse`) at a low confidence;
every box it finds, grown by a margin (1.5 lengths of the model version's reference animal: for sea lions 1.5 adult
females, about one adult male's length, so a pup beside a female is never cut off and an animal on a seam keeps both
its tiles), marks the full-pass tiles it touches. Only those tiles run. Then the
gate grows from the full pass's own detections: a skipped tile that a detection's grown box reaches runs too, until
none does. The coarse view misses animals at the edge of what it saw (a colony running on past its hits); the full
pass finds the first of them, and growing follows them, faint hits (at the gate's confidence) included. Measured on
the 17 full-resolution NOAA photos with v4 (``benchmarks.gate_recall``, docs/benchmarks.md): growing keeps more
photos within 1 % or one animal of the ungated counts and leaves fewer of the biologists' dots in skipped tiles
than the coarse pass alone, for more of the network's tiles. Each growing round is a short batch: it costs only its
tiles because OpenVINO exports are compiled for any batch (:class:`detector.counting.backends.OpenVINORuntime`).

A photo enlarged to reach the model's scale (a downsampled copy) is not gated: it has no detail to spare, and its
coarse view misses isolated animals (the shipped example ``noaa_train_6.jpg``, enlarged 2x: 3 of 25 adult females
scored below 0.005 in the coarse view and 0.29-0.44 in the full pass).

The margin follows the version (:class:`~detector.classes.ScaleReference`): ``margin_lengths`` × its reference
class's length at photo scale 1 (sea lions: 1.5 × 80 = 120 px of a survey original, the margin v4's benchmarks were
measured with; elephant seals: 1.5 × a 100 px cow). A version that names no reference length (an unlisted weights
file of other classes) has no animal size to go by, and no sea lion's is assumed: each box is grown by
``margin_lengths`` of its own longer side, the size the model itself saw.

The geometry here is pure (arrays in, arrays out); :class:`TileGate` runs the two passes through a ``detect``
callback, the sliced count's own (:mod:`detector.counting.pipeline`): the coarse views of all photos share the
network's batches, as the full pass's tiles do.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Protocol

import numpy as np

from detector.counting.detections import Detections
from detector.counting.images import resize_to
from detector.counting.scale import ScaleReference
from detector.counting.slicing import photo_tiles
from detector.errors import DetectorError


@dataclass(frozen=True)
class GateSettings:
    """How the coarse pass looks.

    ``coarse``: the coarse view's size relative to the image the full pass tiles (0.5: a quarter of its pixels, so
    about a quarter of its tiles). ``conf``: the confidence at which any class in the coarse view marks an animal
    (low: the gate must not lose what the full pass would count; a count with a lower threshold gates at that), also
    the confidence of the full-pass hits that grow the gate.
    ``margin_lengths``: grown around every coarse box (and every full-pass hit that grows the gate), in lengths of
    the version's reference animal (sea lions: adult females, so 1.5 × 80 = 120 px of a survey original); a version
    without a reference length grows each box by that many of its own longer side. ``margin_px``: a fixed margin in
    pixels at photo scale 1 (the version's native resolution) instead; None: from ``margin_lengths``.
    ``overlap``: of the coarse view's tiles. ``max_enlargement``: photos resized by more than this to reach the
    model's scale are not gated.
    """

    coarse: float = 0.5
    conf: float = 0.015  # the highest of 0.03, 0.02, 0.015, 0.01 that keeps v4's counts (docs/benchmarks.md)
    margin_lengths: float = 1.5
    margin_px: float | None = None
    overlap: float = 0.2
    max_enlargement: float = 1.0

    def __post_init__(self) -> None:
        if not 0 < self.coarse < 1:
            raise DetectorError(f"gate coarse factor must be between 0 and 1, got {self.coarse}.")
        if not 0 <= self.conf <= 1:
            raise DetectorError(f"gate conf must be between 0 and 1, got {self.conf}.")
        if not self.margin_lengths >= 0:
            raise DetectorError(f"gate margin_lengths must not be negative, got {self.margin_lengths}.")
        if self.margin_px is not None and not self.margin_px >= 0:
            raise DetectorError(f"gate margin_px must not be negative, got {self.margin_px}.")
        if not 0 <= self.overlap < 1:
            raise DetectorError(f"gate overlap must be at least 0 and below 1, got {self.overlap}.")
        if not self.max_enlargement > 0:
            raise DetectorError(f"gate max_enlargement must be positive, got {self.max_enlargement}.")

    def margin_for(self, reference: ScaleReference) -> float | None:
        """The margin in pixels at photo scale 1 for a version measured by ``reference``: ``margin_px``, else
        ``margin_lengths`` of its reference class (sea lions: 120); None when the version names no reference length
        (each box is then grown by its own size: :meth:`TileGate.margins`)."""
        if self.margin_px is not None:
            return self.margin_px
        return None if reference.length_px is None else self.margin_lengths * reference.length_px
        if not 0 <= self.overlap < 1:
            raise DetectorError(f"gate overlap must be at least 0 and below 1, got {self.overlap}.")
        if not self.max_enlargement > 0:
            raise DetectorError(f"gate max_enlargement must be positive, got {self.max_enlargement}.")


DEFAULT_GATE_SETTINGS = GateSettings()


def coarse_size(width: int, height: int, coarse: float) -> tuple[int, int]:
    """The coarse view's (width, height) for an image of ``width`` x ``height``."""
    return max(1, round(width * coarse)), max(1, round(height * coarse))


def tiles_touched(tiles: np.ndarray, boxes: np.ndarray, margin: float | np.ndarray) -> np.ndarray:
    """Which ``tiles`` (K, 4 ``x1, y1, x2, y2``) overlap at least one of ``boxes`` (N, 4) grown by ``margin`` on
    every side (one number, or one per box: (N,)): a (K,) bool mask (all False without boxes)."""
    tiles = np.asarray(tiles, dtype=np.float32).reshape(-1, 4)
    boxes = np.asarray(boxes, dtype=np.float32).reshape(-1, 4)
    if not len(boxes) or not len(tiles):
        return np.zeros(len(tiles), dtype=bool)
    per_box = np.asarray(margin, dtype=np.float32).reshape(-1, 1)  # (1, 1) or (N, 1)
    grown = boxes + per_box * np.array([-1, -1, 1, 1], dtype=np.float32)
    # strict inequalities: a grown box that only touches a tile's edge does not reach into it
    overlap_x = (grown[None, :, 0] < tiles[:, None, 2]) & (grown[None, :, 2] > tiles[:, None, 0])
    overlap_y = (grown[None, :, 1] < tiles[:, None, 3]) & (grown[None, :, 3] > tiles[:, None, 1])
    return (overlap_x & overlap_y).any(axis=1)


def tiles_to_grow(tiles: np.ndarray, ran: np.ndarray, boxes: np.ndarray, margin: float | np.ndarray) -> np.ndarray:
    """The tiles not yet run (``ran``: a (K,) bool mask over ``tiles``) that ``boxes`` found so far, grown by
    ``margin``, reach: a (K,) bool mask."""
    return ~np.asarray(ran, dtype=bool) & tiles_touched(tiles, boxes, margin)


def margin_in_work_pixels(settings: GateSettings, ground_scale: float, reference: ScaleReference) -> float | None:
    """The gate's margin in pixels of the image the model tiles (the photo at the model's ground scale), for a
    version measured by ``reference``; None: the version names no reference length (each box's own size then)."""
    margin = settings.margin_for(reference)
    return None if margin is None else margin * ground_scale


# (image, tiles) pairs → each image's detections in its own pixels, at the gate's confidence
Detect = Callable[[Sequence[tuple[np.ndarray, np.ndarray]]], list[Detections]]


class GatedPhoto(Protocol):
    """What the gate needs of a photo at the model's scale (a :class:`detector.counting.pipeline.Prepared`)."""

    work: np.ndarray  # RGB at the model's scale
    factor: float  # how much the photo was resized to reach it
    tile_size: int


@dataclass(frozen=True)
class TileGate:
    """The gate's two passes for one count, through the count's network: ``detect`` runs (image, tiles) pairs at
    the gate's confidence; ``ground_scale`` is the model's and ``reference`` its version's scale reference (the
    margin is in lengths of its reference animal at photo scale 1: :meth:`GateSettings.margin_for`)."""

    detect: Detect
    ground_scale: float
    reference: ScaleReference
    settings: GateSettings = DEFAULT_GATE_SETTINGS

    @property
    def margin(self) -> float | None:
        """The margin in pixels of the image the model tiles; None: grown by each box's own size (:meth:`margins`)."""
        return margin_in_work_pixels(self.settings, self.ground_scale, self.reference)

    def margins(self, boxes: np.ndarray) -> float | np.ndarray:
        """How far each of ``boxes`` (N, 4, in the image the model tiles) is grown: the version's margin, else
        ``margin_lengths`` of each box's own longer side."""
        margin = self.margin
        if margin is not None:
            return margin
        boxes = np.asarray(boxes, dtype=np.float32).reshape(-1, 4)
        sides = np.maximum(boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1])
        return self.settings.margin_lengths * sides

    def coarse_pass(
        self, photos: Sequence[GatedPhoto], grids: Sequence[np.ndarray]
    ) -> tuple[list[np.ndarray | None], list[int]]:
        """For each photo, which of its ``grids`` tiles the full pass needs (None: all of them; a photo of one tile,
        one enlarged for the model, or one whose coarse view would cost as many tiles, is not gated), and how many
        tiles the coarse pass ran. The coarse views of all photos share the network's batches."""
        views: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        for index, (photo, grid) in enumerate(zip(photos, grids, strict=True)):
            size = coarse_size(photo.work.shape[1], photo.work.shape[0], self.settings.coarse)
            coarse_tiles = photo_tiles(size[0], size[1], photo.tile_size, "auto", self.settings.overlap)
            if len(grid) > 1 and len(coarse_tiles) < len(grid) and photo.factor <= self.settings.max_enlargement:
                views[index] = (resize_to(photo.work, size), coarse_tiles)
        keep: list[np.ndarray | None] = [None] * len(grids)
        counted = [0] * len(grids)
        if not views:
            return keep, counted
        for (index, (view, coarse_tiles)), hits in zip(views.items(), self.detect(list(views.values())), strict=True):
            work_h, work_w = photos[index].work.shape[:2]
            to_work = np.array([work_w / view.shape[1], work_h / view.shape[0]] * 2, dtype=np.float32)
            boxes = hits.xyxy * to_work
            keep[index] = tiles_touched(grids[index], boxes, self.margins(boxes))
            counted[index] = len(coarse_tiles)
        return keep, counted

    def grow(
        self, work: np.ndarray, grid: np.ndarray, ran: np.ndarray, found: Detections
    ) -> tuple[Detections, np.ndarray]:
        """The second half (:func:`tiles_to_grow`): run the skipped tiles of ``grid`` that the detections ``found``
        so far reach, until none does; all detections (tile ids stay distinct) and the tiles that ran."""
        ran = ran.copy()
        while (more := tiles_to_grow(grid, ran, found.xyxy, self.margins(found.xyxy))).any():
            (extra,) = self.detect([(work, grid[more])])
            first_id = int(ran.sum())  # tiles are numbered from 0 per call; the tiles already run hold 0..first_id-1
            found = Detections.merge([found, replace(extra, tile_id=extra.tile_id + first_id)])
            ran |= more
        return found, ran
