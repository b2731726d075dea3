"""The sliced count: prepare → tiles → gate and growing → seam merge → :class:`CountResult`, with the network as
a callback (as supervision's ``InferenceSlicer`` takes a model).

``predict`` runs one batch of BGR tiles and gives each tile's detections in tile pixels: a runtime's
(:mod:`detector.counting.backends`), or any function with that shape. A count's thresholds are worked out once
(:meth:`SlicedCount.thresholds`) and passed down explicitly: the count's per-class thresholds, and the gate's own
confidence for its coarse pass and growing.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from detector.counting.detections import Detections
from detector.counting.gate import DEFAULT_GATE_SETTINGS, GateSettings, TileGate
from detector.counting.images import ImageInput, greyscale, header_size, load_image, resize_to
from detector.counting.results import CountResult, ModelInfo
from detector.counting.scale import PhotoScale, choose_photo_scale, requested_photo_scale, scale_warnings
from detector.counting.slicing import photo_tiles
from detector.errors import DetectorError
from detector.settings import DEFAULT_CONF, CountOptions

# The work one photo may cost, checked before any of it is done: the photo as the model sees it (after rescaling)
# may have at most WORK_BUDGET_PIXELS (3x a 5616x3744 survey original at ground scale 1.0; the shipped model sees
# 5 MP of one), and the tiles sent through the network at most TILE_BUDGET_FACTOR times that in model-input pixels
# (overlaps and small tiles letterboxed up to the input size). About 30 s of CPU at the budget's edge.
WORK_BUDGET_PIXELS = 64_000_000
TILE_BUDGET_FACTOR = 4

# One batch of BGR tiles, the lowest confidence any class keeps, the NMS IoU → each tile's detections (tile pixels)
Predict = Callable[[Sequence[np.ndarray], float, float], list[Detections]]


@dataclass(frozen=True)
class Prepared:
    """A photo decoded and resized to the model's scale, ready for :meth:`SlicedCount.stream`."""

    work: np.ndarray  # RGB uint8 at the model's scale
    size: tuple[int, int]  # the photo's own (width, height)
    scale: PhotoScale
    factor: float  # work = photo resized by this
    tile_size: int
    source: str | None
    preprocess_ms: float


@dataclass(frozen=True)
class Thresholds:
    """A count's confidences, worked out once per count. ``count``: each class's (model order), what the result
    keeps. ``gate``: where the coarse pass marks animals and full-pass hits grow the gate (None: no gate)."""

    count: np.ndarray
    gate: float | None = None

    @property
    def full_pass(self) -> np.ndarray:
        """What the full pass keeps until the end: with the gate, every hit at the gate's confidence (faint hits
        grow the gate too; the count then keeps only its own thresholds)."""
        return self.count if self.gate is None else np.full(len(self.count), self.gate)


class SlicedCount:
    """Counts photos at the model's scale through ``predict``, described by ``model`` (classes, input size, ground
    scale, calibrated thresholds), on ``device``; ``gate``: how the tile gate's coarse pass looks."""

    def __init__(
        self, predict: Predict, model: ModelInfo, device: str, gate: GateSettings = DEFAULT_GATE_SETTINGS
    ) -> None:
        self.predict = predict
        self.model = model
        self.device = device
        self.gate_settings = gate

    def thresholds(self, options: CountOptions) -> Thresholds:
        """A count's thresholds: ``conf`` for every class when given; else ``class_conf`` or the version's
        calibrated per-class thresholds, else ``DEFAULT_CONF``. With the gate, its confidence: the gate's, never
        stricter than the count's own thresholds."""
        names = self.model.class_names
        if options.conf is not None:
            count = np.full(len(names), float(options.conf))
        else:
            per_class = dict(options.class_conf if options.class_conf is not None else self.model.class_conf)
            unknown = sorted(set(per_class) - set(names))
            if unknown:
                raise DetectorError(f"class_conf names unknown classes {unknown}; the model has {list(names)}.")
            count = np.array([float(per_class.get(name, DEFAULT_CONF)) for name in names])
            if ((count < 0) | (count > 1)).any():
                raise DetectorError(f"class_conf thresholds must be between 0 and 1, got {per_class}.")
        gate = min(self.gate_settings.conf, float(count.min())) if options.gate else None
        return Thresholds(count, gate)

    def tiles(self, width: int, height: int, tile_size: int, options: CountOptions) -> np.ndarray:
        """The tiles the full pass sees of an image at the model's scale."""
        return photo_tiles(width, height, tile_size, options.slicing, options.overlap)

    def prepare(self, image: ImageInput, options: CountOptions, *, source: str | None = None) -> Prepared:
        """Decode a photo at the model's scale (the CPU half of a count, free of the network: a survey run does it
        in other threads while the network counts the previous photo). Raises DetectorError for bad input."""
        self.thresholds(options)  # refuse bad thresholds before decoding
        tile_size = int(options.tile_size or self.model.imgsz)
        if source is None and isinstance(image, (str, os.PathLike)):
            source = Path(image).name
        started = time.perf_counter()
        # A file's size comes from its header, so the scale, the budget and the decode size are known before a
        # pixel is decoded: a JPEG the model sees smaller is decoded straight at (at least) that size.
        size = header_size(image, label=source)
        rgb = None if size else load_image(image, label=source)
        width, height = size or (rgb.shape[1], rgb.shape[0])
        try:
            reference = self.model.scale_reference
            requested = requested_photo_scale(
                options.photo_scale, options.reference_length, options.reference_class, reference
            )
            scale = choose_photo_scale(requested, width, height, reference)
        except ValueError as exc:
            raise DetectorError(f"{exc}.") from None
        factor = self.model.ground_scale / scale.value
        self._check_budget(source or "photo", (width, height), scale, factor, tile_size, options)
        if rgb is None:
            rgb = load_image(image, label=source, reduce=factor)
        work = resize_to(rgb, (max(1, round(width * factor)), max(1, round(height * factor))))
        if self.model.greyscale_input:  # a colour photo and its greyscale copy then count the same
            work = greyscale(work)
        return Prepared(work, (width, height), scale, factor, tile_size, source, (time.perf_counter() - started) * 1000)

    def stream(self, prepared: Sequence[Prepared], options: CountOptions) -> Iterator[CountResult]:
        """Count photos together, their tiles filling the network's batches across photo boundaries; each photo's
        result as soon as its last tile is through (its inference time is the time since the previous one)."""
        thresholds = self.thresholds(options)
        grids = [self.tiles(p.work.shape[1], p.work.shape[0], p.tile_size, options) for p in prepared]
        keep: list[np.ndarray | None] = [None] * len(grids)
        coarse_tiles = [0] * len(grids)
        started = time.perf_counter()
        gate = None if thresholds.gate is None else self.tile_gate(thresholds.gate, options)
        if gate is not None:
            keep, coarse_tiles = gate.coarse_pass(prepared, grids)
        gate_ms = (time.perf_counter() - started) * 1000
        all_coarse = max(1, sum(coarse_tiles))
        runs = [grid if mask is None else grid[mask] for grid, mask in zip(grids, keep, strict=True)]
        images = [(p.work, run) for p, run in zip(prepared, runs, strict=True)]
        last = time.perf_counter()
        for index, found in self.detect_stream(images, thresholds.full_pass, options):
            grid, ran, coarse = grids[index], keep[index], coarse_tiles[index]
            if gate is not None and ran is not None:
                found, ran = gate.grow(prepared[index].work, grid, ran, found)
            now = time.perf_counter()
            skipped = 0 if ran is None else int((~ran).sum())
            timings = {"gate": gate_ms * coarse / all_coarse, "inference": (now - last) * 1000}
            yield self._result(prepared[index], found.above(thresholds.count), (len(grid), skipped, coarse), timings,
                               thresholds.count)  # fmt: skip
            last = now

    def gated_tiles(self, prepared: Prepared, options: CountOptions) -> tuple[np.ndarray, np.ndarray]:
        """The photo's tiles and which of them a gated count runs (coarse pass, then growing)."""
        options = options.changed(gate=True)
        grid = self.tiles(prepared.work.shape[1], prepared.work.shape[0], prepared.tile_size, options)
        thresholds = self.thresholds(options)
        gate = self.tile_gate(thresholds.gate or 0.0, options)  # set: the options ask for the gate
        (ran,), _ = gate.coarse_pass([prepared], [grid])
        if ran is None:
            return grid, np.ones(len(grid), dtype=bool)
        found = self.detect(prepared.work, grid[ran], thresholds.full_pass, options)
        return grid, gate.grow(prepared.work, grid, ran, found)[1]

    def tile_gate(self, conf: float, options: CountOptions) -> TileGate:
        """A count's tile gate: its passes run the network at ``conf`` (the gate's confidence, from
        :meth:`thresholds`) with ``options``' IoU and batch size."""
        at_gate = np.full(len(self.model.class_names), conf)
        return TileGate(
            lambda images: [found for _, found in self.detect_stream(images, at_gate, options)],
            self.model.ground_scale,
            self.model.scale_reference,
            self.gate_settings,
        )

    def detect(self, work: np.ndarray, tiles: np.ndarray, conf: np.ndarray, options: CountOptions) -> Detections:
        """The detections of ``tiles`` of an image at the model's scale, each class held to its ``conf``, in that
        image's pixels, seam duplicates not yet merged."""
        return next(self.detect_stream([(work, tiles)], conf, options))[1]

    def detect_stream(
        self, images: Sequence[tuple[np.ndarray, np.ndarray]], conf: np.ndarray, options: CountOptions
    ) -> Iterator[tuple[int, Detections]]:
        """Several (image, tiles) pairs as one stream of tiles cut into batches of ``options.batch_size`` that run
        on across images: ``(index, detections)`` of each image, in order, once its last tile is done."""
        floor = float(conf.min())  # one predict call for every class; each is then held to its own threshold
        # ultralytics takes arrays in BGR order: one conversion per image, and each tile is then a view of it
        bgr = [cv2.cvtColor(np.ascontiguousarray(work), cv2.COLOR_RGB2BGR) for work, _ in images]
        stream = [(index, number, tile) for index, (_, tiles) in enumerate(images) for number, tile in enumerate(tiles)]
        sizes = [(work.shape[1], work.shape[0]) for work, _ in images]
        parts: list[list[Detections]] = [[] for _ in images]
        done = 0  # images given so far
        for start in range(0, len(stream), options.batch_size):
            chunk = stream[start : start + options.batch_size]
            crops = [bgr[index][y1:y2, x1:x2] for index, _, (x1, y1, x2, y2) in chunk]
            for (index, number, tile), found in zip(chunk, self.predict(crops, floor, options.iou), strict=True):
                kept = found.above(conf)
                if len(kept):
                    parts[index].append(kept.from_tile(tile, number, sizes[index]))
            finished = chunk[-1][0] + (chunk[-1][1] == len(images[chunk[-1][0]][1]) - 1)  # images now complete
            for index in range(done, finished):
                yield index, Detections.merge(parts[index])
            done = finished
        for index in range(done, len(images)):  # images without tiles
            yield index, Detections.merge(parts[index])

    def _check_budget(
        self, label: str, size: tuple[int, int], scale: PhotoScale, factor: float, tile_size: int,
        options: CountOptions,
    ) -> None:  # fmt: skip
        """Refuse, before doing it, work beyond :data:`WORK_BUDGET_PIXELS`; the message names the setting."""
        width, height = size
        work_w, work_h = max(1, round(width * factor)), max(1, round(height * factor))
        reference = self.model.scale_reference
        length = reference.describe(scale.value)
        setting = f"{length} (photo scale {scale.value:.3g}, {scale.source})" if reference.length_px else length
        larger = (
            f"a larger {reference.animals[:-1]} length (photo scale)"
            if reference.length_px
            else "a smaller photo scale"
        )
        if work_w * work_h > WORK_BUDGET_PIXELS:
            raise DetectorError(
                f"{label}: with {setting} the {width}×{height} photo becomes {work_w}×{work_h} px for the model "
                f"({work_w * work_h / 1e6:.0f} MP), over the {WORK_BUDGET_PIXELS / 1e6:.0f} MP one photo may use; "
                f"set {larger} — is the photo really that close up?"
            )
        tiles = len(self.tiles(work_w, work_h, tile_size, options))
        if tiles == 1:
            return
        imgsz = self.model.imgsz
        limit = TILE_BUDGET_FACTOR * WORK_BUDGET_PIXELS // imgsz**2  # every tile costs one model input
        if tiles > limit:
            raise DetectorError(
                f"{label}: {tiles} tiles of {tile_size} px at {setting}, over the {limit} one photo may use; "
                f"use a larger tile size (the model's input is {imgsz} px) or {larger}."
            )

    def _result(
        self, prepared: Prepared, found: Detections, tiles: tuple[int, int, int], network_ms: dict[str, float],
        conf: np.ndarray,
    ) -> CountResult:  # fmt: skip
        """Merge a photo's tile detections across seams and map them to the photo's own pixels. ``tiles``: the
        photo's tiles, those the gate skipped, and those the gate's coarse pass ran."""
        work_h, work_w = prepared.work.shape[:2]
        width, height = prepared.size
        timings = {"preprocess": prepared.preprocess_ms, **network_ms}
        started = time.perf_counter()
        resized = (work_w, work_h) != (width, height)
        found = found.merge_tiles().rescaled(prepared.factor if resized else 1, (width, height))
        timings["merge"] = (time.perf_counter() - started) * 1000
        timings["total"] = sum(timings.values())
        names = self.model.class_names
        return CountResult(
            xyxy=found.xyxy,
            class_id=found.class_id,
            confidence=found.confidence,
            class_names=names,
            image_size=(width, height),
            model=self.model,
            device=self.device,
            timings_ms=timings,
            tiles=tiles[0],
            tiles_skipped=tiles[1],
            gate_tiles=tiles[2],
            source=prepared.source,
            conf=dict(zip(names, conf.tolist(), strict=True)),
            photo_scale=prepared.scale.value,
            scale_source=prepared.scale.source,
            runtime=self.model.runtime,
            warnings=tuple(scale_warnings(prepared.scale, len(found), (width, height), self.model.scale_reference)),
        )
