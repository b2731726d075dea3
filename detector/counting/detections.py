"""`Detections`: boxes as numpy columns, the container a count is built from (supervision's ``Detections`` is the
model: validated at construction, ``from_ultralytics``, ``merge``, boolean/index ``__getitem__``). Pure numpy."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from detector.counting.slicing import merge_tile_detections, scale_boxes, shift_boxes, truncated_by_tile


@dataclass(frozen=True)
class Detections:
    """N detections: ``xyxy`` (N, 4) float32, ``confidence`` (N,) float32, ``class_id`` (N,) int64, and where each
    was found: ``tile_id`` (N,) int64 (-1: not from a tile) and ``truncated`` (N,) bool (cut by an inner tile edge)."""

    xyxy: np.ndarray
    confidence: np.ndarray
    class_id: np.ndarray
    tile_id: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    truncated: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=bool))

    def __post_init__(self) -> None:
        xyxy = np.asarray(self.xyxy, dtype=np.float32).reshape(-1, 4)
        n = len(xyxy)
        columns = {
            "xyxy": xyxy,
            "confidence": np.asarray(self.confidence, dtype=np.float32).reshape(-1),
            "class_id": np.asarray(self.class_id, dtype=np.int64).reshape(-1),
            "tile_id": np.asarray(self.tile_id, dtype=np.int64).reshape(-1),
            "truncated": np.asarray(self.truncated, dtype=bool).reshape(-1),
        }
        if not len(columns["tile_id"]):
            columns["tile_id"] = np.full(n, -1, dtype=np.int64)
        if not len(columns["truncated"]):
            columns["truncated"] = np.zeros(n, dtype=bool)
        lengths = {name: len(value) for name, value in columns.items()}
        if len(set(lengths.values())) != 1:
            raise ValueError(f"Detections columns must have the same length, got {lengths}")
        for name, value in columns.items():
            object.__setattr__(self, name, value)

    @classmethod
    def empty(cls) -> Detections:
        return cls(np.zeros((0, 4)), np.zeros(0), np.zeros(0))

    @classmethod
    def from_ultralytics(cls, result: Any) -> Detections:
        """The boxes of one ultralytics ``Results`` (pixels of the image it saw)."""
        boxes = getattr(result, "boxes", None)
        data = boxes.data.cpu().numpy() if boxes is not None else np.zeros((0, 6))
        return cls(data[:, :4], data[:, 4], data[:, 5])

    @classmethod
    def merge(cls, parts: Sequence[Detections]) -> Detections:
        """All detections of ``parts``, in order (a concatenation; :meth:`merge_tiles` removes seam duplicates)."""
        parts = [part for part in parts if len(part)]
        if not parts:
            return cls.empty()
        return cls(*(np.concatenate([getattr(p, name) for p in parts]) for name in _COLUMNS))

    def __len__(self) -> int:
        return len(self.xyxy)

    def __getitem__(self, index: Any) -> Detections:
        """A boolean mask, an index array or a slice selects rows of every column alike."""
        if isinstance(index, (int, np.integer)):
            index = [index]
        return Detections(*(getattr(self, name)[index] for name in _COLUMNS))

    def above(self, thresholds: np.ndarray) -> Detections:
        """The detections at or above their own class's threshold (``thresholds`` indexed by class id)."""
        return self[self.confidence >= np.asarray(thresholds)[self.class_id]]

    def from_tile(self, tile: np.ndarray, tile_id: int, image_size: tuple[int, int]) -> Detections:
        """Detections found in ``tile`` (tile pixels) → image pixels, marked with the tile and its inner-edge cuts."""
        xyxy = shift_boxes(self.xyxy, tile[0], tile[1])
        cut = truncated_by_tile(xyxy, tile, image_size)
        return Detections(xyxy, self.confidence, self.class_id, np.full(len(self), tile_id), cut)

    def merge_tiles(self) -> Detections:
        """One detection per animal across tile seams (:func:`detector.counting.slicing.merge_tile_detections`)."""
        if len(np.unique(self.tile_id)) < 2:
            return self
        return self[merge_tile_detections(self.xyxy, self.confidence, self.class_id, self.tile_id, self.truncated)]

    def rescaled(self, factor: float, image_size: tuple[int, int]) -> Detections:
        """Boxes found on an image resized by ``factor`` → boxes on the original ``image_size`` (clipped to it)."""
        width, height = image_size
        xyxy = scale_boxes(self.xyxy, factor) if factor != 1 else self.xyxy
        xyxy = np.clip(xyxy, 0, [width, height, width, height])
        return Detections(xyxy, self.confidence, self.class_id, self.tile_id, self.truncated)


_COLUMNS = ("xyxy", "confidence", "class_id", "tile_id", "truncated")
